// RACK-TLP (RFC 8985) on a SACK connection, played at exact virtual times. The connection is
// passive with ISS 1000, SRTT 10 ms from the handshake, MSS 1460 without timestamps; data
// segment i (from 0) covers [1001 + i*1460, 1001 + (i+1)*1460).

import { describe as group, expect, it } from 'vitest';
import { createPassiveConnection, type Connection } from '../../../src/stack/tcp/connection.js';
import { lossCountersOf } from '../../../src/stack/tcp/rack.js';
import type { SackBlock } from '../../../src/stack/wire/types.js';
import { MS, TUPLE, bytes, describe, plainConfig, seg, testEnv } from './harness.js';

const SEG = 1460;
const at = (i: number): number => 1001 + i * SEG;
const data = (i: number): string => `. ${at(i)}:${at(i + 1)}(${SEG}) ack 5001 win 65535`;

function sackConn(): Connection {
  const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0, { options: { mss: 1460, sackPermitted: true } }), plainConfig({ sack: true }), testEnv(), 1000);
  c.takeOutput();
  c.onSegment(10 * MS, seg('.', 5001, 1001));
  c.takeOutput();
  c.takeEvents();
  return c;
}

function ack(c: Connection, t: number, cum: number, sack: SackBlock[] = []): string[] {
  c.onSegment(t, seg('.', 5001, cum, { options: sack.length > 0 ? { sack } : {} }));
  return c.takeOutput().map((s) => describe(s).replace(/^P/, ''));
}

/** Payload segments among the output, as "start:end". */
function dataOf(lines: string[]): string[] {
  return lines.filter((l) => !l.includes('(0)')).map((l) => l.split(' ')[1]!.replace(/\(.*/, ''));
}

group('RACK: time-based loss detection (RFC 8985 section 6)', () => {
  it('SACK recovery, retransmission lost again: RACK marks it lost when data sent after it is SACKed, and resends it without waiting for the RTO', () => {
    const c = sackConn();
    c.write(100 * MS, bytes(20 * SEG));
    expect(c.takeOutput()).toHaveLength(10); // IW10
    // Segment 0 is lost; 1..3 are SACKed at 110 ms: RFC 6675 IsLost(0) -> fast retransmit.
    const fr = ack(c, 110 * MS, at(0), [{ left: at(1), right: at(4) }]);
    expect(dataOf(fr)[0]).toBe(`${at(0)}:${at(1)}`);
    expect(c.vars.inRecovery).toBe(true);
    // The rest of the flight is SACKed, and recovery sends new data after the retransmission.
    const more = ack(c, 111 * MS, at(0), [{ left: at(1), right: at(10) }]);
    const fresh = dataOf(more);
    expect(fresh.length).toBeGreaterThan(0);
    expect(fresh.every((r) => Number(r.split(':')[0]) >= at(10))).toBe(true);
    // The retransmission of 0 (sent at 110 ms) is lost too. At 121 ms the new data sent at 111 ms
    // is SACKed: it was sent after the retransmission, so 0 is lost again (reo_wnd is 0 in recovery).
    const rtoBefore = c.vars.rtxDeadline;
    const re = ack(c, 121 * MS, at(0), [{ left: at(1), right: at(11) }]);
    expect(dataOf(re)[0]).toBe(`${at(0)}:${at(1)}`);
    expect(rtoBefore).toBeGreaterThan(121 * MS); // the RTO had not fired and was not needed
    expect(lossCountersOf(c)).toMatchObject({ rto: 0 });
    expect(lossCountersOf(c).rackLost).toBeGreaterThanOrEqual(1);
    // The second retransmission arrives: everything up to SND.MAX is acknowledged.
    const top = c.vars.sndMax;
    ack(c, 131 * MS, top);
    expect(c.vars.inRecovery).toBe(false);
    expect(c.vars.sndUna).toBe(top);
  });

  it('recovery entered by SACK, cwnd 5 segments: the fast retransmission counts once in the pipe, so four new segments follow it', () => {
    const c = sackConn();
    c.write(100 * MS, bytes(20 * SEG));
    c.takeOutput();
    // 0 lost, 1..9 SACKed: FlightSize 10 segments, ssthresh = cwnd = 5 (RFC 5681 equation 4).
    const out = dataOf(ack(c, 110 * MS, at(0), [{ left: at(1), right: at(10) }]));
    expect(c.congestionHint().cwnd).toBe(5 * SEG);
    expect(out).toEqual([`${at(0)}:${at(1)}`, ...[10, 11, 12, 13].map((i) => `${at(i)}:${at(i + 1)}`)]);
  });

  it('ESTABLISHED, one segment SACKed out of order inside the reordering window (min_RTT/4): nothing is marked lost and the hole is filled by the late original', () => {
    const c = sackConn();
    c.write(100 * MS, bytes(4 * SEG));
    c.takeOutput();
    // 1 arrives before 0 (reordered): min_RTT = 10 ms, reo_wnd = 2.5 ms, so 0 is not lost before 112.5 ms.
    const out = ack(c, 110 * MS, at(0), [{ left: at(1), right: at(2) }]);
    expect(dataOf(out)).toEqual([]);
    expect(c.vars.rackDeadline).toBe(112_500);
    // 0 arrives at 111 ms (before the reorder timer): acknowledged with everything, no retransmission.
    const late = ack(c, 111 * MS, at(4));
    expect(dataOf(late)).toEqual([]);
    expect(c.vars.inRecovery).toBe(false);
    expect(c.vars.rackDeadline ?? null).toBeNull();
    expect(lossCountersOf(c)).toMatchObject({ rackLost: 0, rto: 0, tlp: 0 });
  });

  it('ESTABLISHED, the reorder timer expires with the hole still open: the segment is marked lost at exactly xmit + RACK.rtt + reo_wnd and retransmitted', () => {
    const c = sackConn();
    c.write(100 * MS, bytes(4 * SEG));
    c.takeOutput();
    ack(c, 110 * MS, at(0), [{ left: at(1), right: at(2) }]);
    expect(c.nextDeadline()).toBe(112_500);
    c.onTimer(112_500);
    const out = c.takeOutput().map(describe);
    expect(dataOf(out)).toEqual([`${at(0)}:${at(1)}`]);
    expect(c.vars.inRecovery).toBe(true);
    expect(lossCountersOf(c)).toMatchObject({ rackLost: 1, rto: 0 });
  });

  it('ESTABLISHED, a D-SACK reports a spurious retransmission: the reordering window doubles (RFC 8985 6.2 step 4)', () => {
    const c = sackConn();
    c.write(100 * MS, bytes(8 * SEG));
    c.takeOutput();
    ack(c, 110 * MS, at(0), [{ left: at(1), right: at(2) }]);
    c.onTimer(112_500); // 0 marked lost and retransmitted: it was only late
    c.takeOutput();
    // The original and the retransmission both arrive: the peer reports the second as a D-SACK.
    ack(c, 113 * MS, at(8), [{ left: at(0), right: at(1) }]);
    expect(c.vars.inRecovery).toBe(false);
    // Next flight: with the multiplier at 2 the window is min_RTT/2 = 5 ms.
    c.write(200 * MS, bytes(4 * SEG));
    c.takeOutput();
    ack(c, 210 * MS, at(8), [{ left: at(9), right: at(10) }]);
    expect(c.vars.rackDeadline).toBe(215 * MS);
  });
});

group('TLP: tail loss probe (RFC 8985 section 7)', () => {
  it('ESTABLISHED, the last two segments of a flight lost: the PTO fires at ACK time + 2*SRTT, the probe resends the last segment, its SACK lets RACK repair the other, no RTO', () => {
    const c = sackConn();
    c.write(100 * MS, bytes(10 * SEG));
    c.takeOutput();
    // 0..7 acknowledged at 110 ms; 8 and 9 lost. SRTT 10 ms: PTO = 20 ms after the ACK.
    expect(ack(c, 110 * MS, at(8))).toEqual([]);
    expect(c.nextDeadline()).toBe(130 * MS);
    c.onTimer(130 * MS);
    expect(c.takeOutput().map((s) => describe(s).replace(/^P/, ''))).toEqual([data(9)]);
    expect(lossCountersOf(c).tlp).toBe(1);
    // RFC 8985 7.3: after the probe the RTO is re-armed (130 ms + 200 ms minimum RTO).
    expect(c.vars.rtxDeadline).toBe(330 * MS);
    // The probe is SACKed at 140 ms: 8, sent at 100 ms, is lost by RACK and resent at once.
    const rep = ack(c, 140 * MS, at(8), [{ left: at(9), right: at(10) }]);
    expect(dataOf(rep)).toEqual([`${at(8)}:${at(9)}`]);
    ack(c, 150 * MS, at(10));
    expect(c.vars.sndUna).toBe(at(10));
    expect(lossCountersOf(c)).toMatchObject({ rto: 0, tlp: 1, rackLost: 1 });
  });

  it('ESTABLISHED, new data waiting beyond cwnd when the PTO fires: the probe is one new segment, not a retransmission', () => {
    const c = sackConn();
    c.write(100 * MS, bytes(30 * SEG));
    expect(c.takeOutput()).toHaveLength(10);
    c.onTimer(120 * MS); // no ACK at all: PTO = 100 ms + 2*SRTT
    expect(c.takeOutput().map((s) => describe(s).replace(/^P/, ''))).toEqual([data(10)]);
    expect(lossCountersOf(c).tlp).toBe(1);
  });

  it('SACK disabled: no probe, the RTO stays the only timer (NewReno path unchanged)', () => {
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0, { options: { mss: 1460 } }), plainConfig(), testEnv(), 1000);
    c.takeOutput();
    c.onSegment(10 * MS, seg('.', 5001, 1001));
    c.write(100 * MS, bytes(10 * SEG));
    c.takeOutput();
    ack(c, 110 * MS, at(8));
    expect(c.nextDeadline()).toBe(310 * MS);
    expect(c.vars.tlpDeadline ?? null).toBeNull();
  });
});
