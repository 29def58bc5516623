import { describe, expect, it } from 'vitest';
import { RtoEstimator } from '../../../../src/stack/tcp/rto.js';

const S = 1_000_000;
const MS = 1000;

describe('RtoEstimator (RFC 6298)', () => {
  it('uses the initial RTO before any sample', () => {
    const e = new RtoEstimator(1 * S, 200 * MS, 120 * S);
    expect(e.rtoUs).toBe(1 * S);
    expect(e.srttUs).toBeNull();
  });

  it('initialises from the first sample: SRTT=R, RTTVAR=R/2, RTO=SRTT+4*RTTVAR', () => {
    const e = new RtoEstimator(1 * S, 0, 120 * S);
    e.sample(100 * MS);
    expect(e.srttUs).toBe(100 * MS);
    expect(e.rttvarUs).toBe(50 * MS);
    expect(e.rtoUs).toBe(300 * MS);
  });

  it('follows the known-answer sequence of (2.3) with RTTVAR updated from the old SRTT', () => {
    const e = new RtoEstimator(1 * S, 0, 120 * S);
    e.sample(100 * MS); // srtt 100, rttvar 50
    e.sample(200 * MS); // rttvar = 0.75*50 + 0.25*|100-200| = 62.5; srtt = 87.5+25 = 112.5
    expect(e.rttvarUs).toBe(62_500);
    expect(e.srttUs).toBe(112_500);
    expect(e.rtoUs).toBe(112_500 + 4 * 62_500);
    e.sample(112_500); // rttvar = 0.75*62.5 + 0 = 46.875; srtt unchanged
    expect(e.rttvarUs).toBe(46_875);
    expect(e.srttUs).toBe(112_500);
    expect(e.rtoUs).toBe(112_500 + 187_500);
  });

  it('uses the clock granularity G when 4*RTTVAR is smaller', () => {
    const e = new RtoEstimator(1 * S, 0, 120 * S, 10 * MS);
    e.sample(1 * MS); // rttvar 0.5 ms, 4*rttvar 2 ms < G
    expect(e.rtoUs).toBe(11 * MS);
    for (let i = 0; i < 50; i++) e.sample(1 * MS);
    expect(e.rtoUs).toBeCloseTo(11 * MS, -1);
    expect(e.rtoUs).toBeGreaterThanOrEqual(11 * MS);
  });

  it('clamps the computed RTO to the minimum and the maximum', () => {
    const e = new RtoEstimator(1 * S, 200 * MS, 2 * S);
    e.sample(10 * MS);
    expect(e.rtoUs).toBe(200 * MS);
    e.sample(10 * S);
    expect(e.rtoUs).toBe(2 * S);
  });

  it('doubles on each backoff, stops at the maximum, and resets', () => {
    const e = new RtoEstimator(1 * S, 200 * MS, 60 * S);
    e.backoff();
    expect(e.rtoUs).toBe(2 * S);
    e.backoff();
    expect(e.rtoUs).toBe(4 * S);
    for (let i = 0; i < 100; i++) e.backoff();
    expect(e.rtoUs).toBe(60 * S);
    e.resetBackoff();
    expect(e.rtoUs).toBe(1 * S);
  });

  it('drops the backoff when a new sample recomputes the RTO', () => {
    const e = new RtoEstimator(1 * S, 0, 60 * S);
    e.sample(100 * MS);
    e.backoff();
    e.backoff();
    expect(e.rtoUs).toBe(1200 * MS);
    e.sample(100 * MS);
    expect(e.rtoUs).toBe(100 * MS + 4 * 37_500);
  });

  it('re-initialises to 3 s after a SYN timeout when no sample exists (5.7)', () => {
    const e = new RtoEstimator(1 * S, 200 * MS, 60 * S);
    e.backoff();
    e.onHandshakeCompleteAfterSynTimeout();
    expect(e.rtoUs).toBe(3 * S);
  });

  it('restores from a serialised snapshot with the same RTO and backoff', () => {
    const e = new RtoEstimator(1 * S, 200 * MS, 60 * S);
    e.sample(150 * MS);
    e.sample(250 * MS);
    e.backoff();
    const r = RtoEstimator.restore(JSON.parse(JSON.stringify(e.snapshot())), 1 * S, 200 * MS, 60 * S);
    expect(r.rtoUs).toBe(e.rtoUs);
    expect(r.srttUs).toBe(e.srttUs);
    r.sample(200 * MS);
    e.sample(200 * MS);
    expect(r.rtoUs).toBe(e.rtoUs);
  });
});
