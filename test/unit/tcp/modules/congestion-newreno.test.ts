import { describe, expect, it } from 'vitest';
import {
  INITIAL_SSTHRESH,
  createCongestionController,
  restoreCongestionController,
} from '../../../../src/stack/tcp/congestion.js';

const MSS = 1000;
const BIG = 1_000_000; // a flight large enough never to count as application-limited

describe('newreno slow start', () => {
  it('starts at the initial window with an unbounded ssthresh', () => {
    const cc = createCongestionController('newreno', MSS, 10);
    expect(cc.name).toBe('newreno');
    expect(cc.cwnd).toBe(10 * MSS);
    expect(cc.ssthresh).toBe(INITIAL_SSTHRESH);
  });

  it('grows by every byte a stretch ACK acknowledges by default (no per-ACK limit, as Linux)', () => {
    const cc = createCongestionController('newreno', MSS, 10);
    cc.onAck(0, 500, 1000, BIG);
    expect(cc.cwnd).toBe(10 * MSS + 500);
    // A GRO receiver's ACK of a 45-segment super-segment: the window grows by all of it.
    cc.onAck(0, 45 * MSS, 1000, BIG);
    expect(cc.cwnd).toBe(55 * MSS + 500);
  });

  it('grows by at most L per ACK when a limit is configured (RFC 3465 L=2, the FreeBSD profile)', () => {
    const cc = createCongestionController('newreno', MSS, 10, 2);
    cc.onAck(0, MSS, 1000, BIG);
    expect(cc.cwnd).toBe(11 * MSS);
    cc.onAck(0, 500, 1000, BIG);
    expect(cc.cwnd).toBe(11 * MSS + 500);
    cc.onAck(0, 5 * MSS, 1000, BIG); // a stretch ACK is capped at L
    expect(cc.cwnd).toBe(13 * MSS + 500);
  });

  it('doubles the window over one round trip of stretch ACKs', () => {
    const cc = createCongestionController('cubic', MSS, 10);
    for (let i = 0; i < 2; i++) cc.onAck(0, 5 * MSS, null, BIG);
    expect(cc.cwnd).toBe(20 * MSS);
  });

  it('keeps a configured limit across a snapshot restore', () => {
    const cc = restoreCongestionController(createCongestionController('newreno', MSS, 10).snapshot(), MSS, 10, 2);
    cc.onAck(0, 5 * MSS, null, BIG);
    expect(cc.cwnd).toBe(12 * MSS);
  });

  it('doubles the window over one round trip of full-size ACKs', () => {
    const cc = createCongestionController('newreno', MSS, 4);
    for (let i = 0; i < 4; i++) cc.onAck(0, MSS, null, BIG);
    expect(cc.cwnd).toBe(8 * MSS);
  });

  it('does not grow while the sender uses less than half the window', () => {
    const cc = createCongestionController('newreno', MSS, 10);
    cc.onAck(0, MSS, 1000, 0);
    expect(cc.cwnd).toBe(10 * MSS);
  });
});

describe('newreno loss response', () => {
  it('sets ssthresh = max(FlightSize/2, 2*SMSS) and cwnd = ssthresh on fast retransmit', () => {
    const cc = createCongestionController('newreno', MSS, 10);
    cc.onEnterRecovery(0, 20 * MSS);
    expect(cc.ssthresh).toBe(10 * MSS);
    expect(cc.cwnd).toBe(10 * MSS);
    expect(cc.inRecovery).toBe(true);

    const small = createCongestionController('newreno', MSS, 10);
    small.onEnterRecovery(0, 3 * MSS);
    expect(small.ssthresh).toBe(2 * MSS);
  });

  it('does not grow cwnd on ACKs during recovery and deflates it on a partial ACK', () => {
    const cc = createCongestionController('newreno', MSS, 10);
    cc.onEnterRecovery(0, 20 * MSS);
    cc.inflate(3 * MSS);
    expect(cc.cwnd).toBe(13 * MSS);
    cc.onAck(0, 2 * MSS, 1000, BIG);
    expect(cc.cwnd).toBe(13 * MSS);
    cc.onPartialAck(0, 2 * MSS); // -2 SMSS + 1 SMSS
    expect(cc.cwnd).toBe(12 * MSS);
    cc.onPartialAck(0, 500); // less than SMSS: no add-back
    expect(cc.cwnd).toBe(11 * MSS + 500);
  });

  it('sets cwnd = ssthresh on the full ACK that ends recovery', () => {
    const cc = createCongestionController('newreno', MSS, 10);
    cc.onEnterRecovery(0, 20 * MSS);
    cc.inflate(5 * MSS);
    cc.onExitRecovery(0);
    expect(cc.cwnd).toBe(10 * MSS);
    expect(cc.inRecovery).toBe(false);
  });

  it('collapses to one segment on RTO and holds ssthresh on a repeated RTO', () => {
    const cc = createCongestionController('newreno', MSS, 10);
    cc.onRetransmitTimeout(0, 16 * MSS);
    expect(cc.cwnd).toBe(MSS);
    expect(cc.ssthresh).toBe(8 * MSS);
    cc.onRetransmitTimeout(0, 16 * MSS / 8); // backed-off timer fires again, no ACK between
    expect(cc.ssthresh).toBe(8 * MSS);
    cc.onAck(0, MSS, null, BIG);
    cc.onRetransmitTimeout(0, 6 * MSS); // a new loss episode reduces again
    expect(cc.ssthresh).toBe(3 * MSS);
  });

  it('uses congestion avoidance above ssthresh: one SMSS per cwnd of bytes acked', () => {
    const cc = createCongestionController('newreno', MSS, 10);
    cc.onEnterRecovery(0, 20 * MSS);
    cc.onExitRecovery(0); // cwnd = ssthresh = 10 SMSS
    for (let i = 0; i < 9; i++) cc.onAck(0, MSS, null, BIG);
    expect(cc.cwnd).toBe(10 * MSS);
    cc.onAck(0, MSS, null, BIG);
    expect(cc.cwnd).toBe(11 * MSS);
  });

  it('switches from slow start to avoidance at ssthresh within one ACK', () => {
    const cc = createCongestionController('newreno', MSS, 1);
    cc.onRetransmitTimeout(0, 6 * MSS); // ssthresh 3 SMSS, cwnd 1 SMSS
    cc.onAck(0, 2 * MSS, null, BIG);
    expect(cc.cwnd).toBe(3 * MSS);
    cc.onAck(0, 2 * MSS, null, BIG);
    expect(cc.cwnd).toBe(3 * MSS); // 2 of 3 SMSS counted
    cc.onAck(0, MSS, null, BIG);
    expect(cc.cwnd).toBe(4 * MSS);
  });

  it('restarts from min(IW, cwnd) after idle', () => {
    const cc = createCongestionController('newreno', MSS, 2);
    for (let i = 0; i < 4; i++) cc.onAck(0, MSS, null, BIG);
    expect(cc.cwnd).toBe(6 * MSS);
    cc.onIdleRestart?.(0);
    expect(cc.cwnd).toBe(2 * MSS);
  });

  it('round-trips through a snapshot', () => {
    const cc = createCongestionController('newreno', MSS, 10);
    cc.onEnterRecovery(0, 30 * MSS);
    cc.onAck(0, MSS, null, BIG);
    const snap = JSON.parse(JSON.stringify(cc.snapshot()));
    const back = restoreCongestionController(snap, MSS);
    expect(back.snapshot()).toEqual(cc.snapshot());
    expect(back.inRecovery).toBe(true);
  });
});
