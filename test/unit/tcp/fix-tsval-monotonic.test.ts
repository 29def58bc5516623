// A connection's TSvals never go back. RFC 7323 section 5.2 (PAWS) "assumes that every received
// TCP segment (including data and ACK segments) contains a timestamp SEG.TSval whose values are
// monotonically non-decreasing in time", and a receiver discards a segment whose TSval is below
// its TS.Recent (section 5.3, R1) -- a Linux peer counts it as PAWSEstab and drops it.
//
// The core stamps segments from the time of the input being processed. If a user call is handed
// a later time than an input processed after it (a write at t+2 ms, then a segment or timer
// stamped with an earlier batch time t+1 ms), the clock alone would give a TSval one tick lower
// than one already sent; the connection keeps the largest TSval it sent and never goes below it.

import { describe, expect, it } from 'vitest';
import { type Connection, createActiveConnection, createPassiveConnection } from '../../../src/stack/tcp/connection.js';
import { seqLt } from '../../../src/stack/wire/seq.js';
import type { TcpSegment } from '../../../src/stack/wire/types.js';
import { MS, TUPLE, plainConfig, seg, testEnv } from './harness.js';

/** ESTABLISHED with timestamps (TSval = now in ms): ISS 1000, IRS 5000. */
function tsConnection(): { c: Connection; ts: () => { timestamp: { tsval: number; tsecr: number } } } {
  let peer = 100;
  const ts = () => ({ timestamp: { tsval: peer++, tsecr: 0 } });
  const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0, { options: { mss: 1460, ...ts() } }), plainConfig({ timestamps: true, delayedAckUs: 40 * MS }), testEnv(), 1000);
  c.takeOutput();
  c.onSegment(10 * MS, seg('.', 5001, 1001, { options: ts() }));
  c.takeOutput();
  expect(c.state).toBe('ESTABLISHED');
  expect(c.v.tsEnabled).toBe(true);
  return { c, ts };
}

function tsvals(segs: TcpSegment[]): number[] {
  return segs.map((s) => {
    expect(s.options.timestamp).toBeDefined();
    return s.options.timestamp!.tsval;
  });
}

function expectNonDecreasing(all: number[]): void {
  for (let i = 1; i < all.length; i++) expect(seqLt(all[i]!, all[i - 1]!), `TSval ${all[i]} after ${all[i - 1]} (${all.join(' ')})`).toBe(false);
}

describe('ESTABLISHED with timestamps: outgoing TSvals are non-decreasing (RFC 7323 5.2)', () => {
  it('segment at t, write at t+2 ms, then a segment stamped t+1 ms: its ACK carries no lower TSval', () => {
    const { c, ts } = tsConnection();
    const t = 1000 * MS;
    const all: number[] = [];
    // Data at t: one segment, the ACK is delayed.
    c.onSegment(t, seg('.', 5001, 1001, { data: 100, options: ts() }));
    all.push(...tsvals(c.takeOutput()));
    // The application answers at t+2 ms: data out, TSval t+2.
    expect(c.write(t + 2 * MS, new Uint8Array(50))).toBe(50);
    all.push(...tsvals(c.takeOutput()));
    expect(all.length).toBeGreaterThan(0);
    // A segment of the batch read at t+1 ms: data that must be acknowledged at once (2nd segment).
    c.onSegment(t + 1 * MS, seg('.', 5101, 1001, { data: 100, options: ts() }));
    c.onSegment(t + 1 * MS, seg('.', 5201, 1001, { data: 100, options: ts() }));
    const acks = c.takeOutput();
    expect(acks.length).toBeGreaterThan(0);
    all.push(...tsvals(acks));
    expectNonDecreasing(all);
    expect(all[all.length - 1]).toBe(1002);
  });

  it('write at t+2 ms, then a timer run stamped t+1 ms (delayed ACK): the ACK carries no lower TSval', () => {
    const { c, ts } = tsConnection();
    const t = 1000 * MS;
    c.onSegment(t, seg('.', 5001, 1001, { data: 100, options: ts() }));
    expect(c.takeOutput()).toEqual([]);
    c.write(t + 2 * MS, new Uint8Array(50));
    const sent = tsvals(c.takeOutput());
    expect(sent).toEqual([1002]);
    // The pure ACK for the next segment is delayed; its timer runs with a stale t+1 ms.
    c.onSegment(t + 1 * MS, seg('.', 5101, 1051, { data: 100, options: ts() }));
    c.v.delAckDeadline = t + 1 * MS;
    c.onTimer(t + 1 * MS);
    const after = tsvals(c.takeOutput());
    expectNonDecreasing([...sent, ...after]);
  });

  it('SYN-SENT: a SYN retransmitted with an earlier time than the first SYN keeps its TSval', () => {
    const c = createActiveConnection(5 * MS, TUPLE, plainConfig({ timestamps: true }), testEnv());
    const first = tsvals(c.takeOutput());
    expect(first).toEqual([5]);
    c.v.rtxDeadline = 4 * MS;
    c.onTimer(4 * MS);
    const again = tsvals(c.takeOutput());
    expect(again.length).toBe(1);
    expectNonDecreasing([...first, ...again]);
  });
});
