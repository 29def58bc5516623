import { describe, expect, it } from 'vitest';
import { MS, established, out, plainConfig, seg, testEnv } from './harness.js';

// ESTABLISHED with ISS 1000, IRS 5000: RCV.NXT 5001, SND.NXT 1001, RCV.WND 65535.
describe('RFC 5961 in ESTABLISHED', () => {
  const cases: [string, number, string[], string][] = [
    ['RST exactly at RCV.NXT resets', 5001, [], 'CLOSED'],
    ['RST inside the window gets a challenge ACK', 5002, ['. 1001:1001(0) ack 5001 win 65535'], 'ESTABLISHED'],
    ['RST at the right edge - 1 gets a challenge ACK', 5001 + 65534, ['. 1001:1001(0) ack 5001 win 65535'], 'ESTABLISHED'],
    ['RST at the right edge is dropped', 5001 + 65535, [], 'ESTABLISHED'],
    ['RST left of the window is dropped', 5000, [], 'ESTABLISHED'],
  ];
  for (const [name, seq, want, state] of cases) {
    it(`established: ${name}`, () => {
      const c = established();
      c.onSegment(20 * MS, seg('R', seq, 0));
      expect(out(c)).toEqual(want);
      expect(c.state).toBe(state);
    });
  }

  it('established: SYN in window gets a challenge ACK and the connection stays', () => {
    const c = established();
    c.onSegment(20 * MS, seg('S', 5001, 0));
    expect(out(c)).toEqual(['. 1001:1001(0) ack 5001 win 65535']);
    expect(c.state).toBe('ESTABLISHED');
  });

  it('established: SYN outside the window also gets a challenge ACK', () => {
    const c = established();
    c.onSegment(20 * MS, seg('S', 900_000, 0));
    expect(out(c)).toEqual(['. 1001:1001(0) ack 5001 win 65535']);
  });

  it('established: ACK beyond SND.NXT is answered with an ACK and dropped (data not accepted)', () => {
    const c = established();
    c.onSegment(20 * MS, seg('.', 5001, 2000, { data: 10 }));
    expect(out(c)).toEqual(['. 1001:1001(0) ack 5001 win 65535']);
    expect(c.readableLength).toBe(0);
  });

  it('established: ACK older than SND.UNA - MAX.SND.WND is answered and dropped', () => {
    const c = established();
    c.onSegment(20 * MS, seg('.', 5001, (1001 - 70000) >>> 0, { data: 10 }));
    expect(out(c)).toEqual(['. 1001:1001(0) ack 5001 win 65535']);
    expect(c.readableLength).toBe(0);
  });

  it('established: old but acceptable ACK (within MAX.SND.WND) still delivers data', () => {
    const c = established();
    c.onSegment(20 * MS, seg('.', 5001, 900, { data: 10 }));
    expect(c.readableLength).toBe(10);
  });

  it('established: challenge ACKs stop when the host-wide budget is spent', () => {
    const env = testEnv();
    env.challengeBudget = 2;
    const c = established(plainConfig(), env);
    for (let i = 0; i < 5; i++) c.onSegment(20 * MS + i, seg('R', 5002 + i, 0));
    expect(out(c).length).toBe(2);
    expect(env.challengeAcks).toBe(2);
  });
});

describe('RST in the other synchronized states', () => {
  it('fin-wait-1: exact RST resets with ECONNRESET', () => {
    const c = established();
    c.shutdown(20 * MS);
    c.takeOutput();
    c.onSegment(30 * MS, seg('R', 5001, 0));
    expect(c.state).toBe('CLOSED');
    expect(c.takeEvents()).toEqual([{ type: 'error', code: 'ECONNRESET' }, { type: 'closed' }]);
  });

  it('close-wait: in-window RST gets a challenge ACK', () => {
    const c = established();
    c.onSegment(20 * MS, seg('F.', 5001, 1001));
    c.takeOutput();
    c.onSegment(30 * MS, seg('R', 5010, 0));
    expect(out(c)).toEqual(['. 1001:1001(0) ack 5002 win 65535']);
    expect(c.state).toBe('CLOSE-WAIT');
  });

  it('time-wait: RST is ignored (RFC 1337)', () => {
    const c = established();
    c.shutdown(20 * MS);
    c.onSegment(30 * MS, seg('F.', 5001, 1002));
    c.takeOutput();
    expect(c.state).toBe('TIME-WAIT');
    c.onSegment(40 * MS, seg('R', 5002, 0));
    expect(c.state).toBe('TIME-WAIT');
    expect(out(c)).toEqual([]);
  });

  it('last-ack: exact RST closes', () => {
    const c = established();
    c.onSegment(20 * MS, seg('F.', 5001, 1001));
    c.close(25 * MS);
    c.takeOutput();
    expect(c.state).toBe('LAST-ACK');
    c.onSegment(30 * MS, seg('R', 5002, 0));
    expect(c.state).toBe('CLOSED');
  });
});

describe('SYN+FIN', () => {
  it('established: SYN+FIN gets a challenge ACK by default and is dropped silently with dropSynFin', () => {
    const a = established();
    a.onSegment(20 * MS, seg('SF', 5001, 0));
    expect(out(a)).toEqual(['. 1001:1001(0) ack 5001 win 65535']);
    const b = established(plainConfig({ dropSynFin: true }));
    b.onSegment(20 * MS, seg('SF', 5001, 0));
    expect(out(b)).toEqual([]);
    expect(b.state).toBe('ESTABLISHED');
  });
});
