// Data segments are sized by the options they carry. RFC 6691 section 2: "the sender MUST reduce
// the TCP data length to account for any IP or TCP options that it is including in the packets
// that it sends" (likewise RFC 9293 3.7.1), so header + options + payload never exceeds MSS + 20,
// the MTU less the 20-byte IP header. A segment that also reports SACK blocks (RFC 2018) is
// smaller by their 4 + 8n bytes; every other one stays full-sized.

import { describe, expect, it } from 'vitest';
import type { TcpConfig } from '../../../src/stack/tcp/api.js';
import { type Connection, createPassiveConnection } from '../../../src/stack/tcp/connection.js';
import { TCP_HEADER_LEN, tcpSegmentLength } from '../../../src/stack/wire/tcp.js';
import type { SackBlock, TcpOptions, TcpSegment } from '../../../src/stack/wire/types.js';
import { MS, TUPLE, bytes, plainConfig, seg, testEnv } from './harness.js';

const MSS = 1460; // an MTU of 1500
const MTU_LESS_IP = MSS + TCP_HEADER_LEN;

/** ESTABLISHED with SACK (and timestamps when asked): ISS 1000, IRS 5000. */
function sackConnection(timestamps: boolean, over: Partial<TcpConfig> = {}): { c: Connection; opts: () => TcpOptions } {
  let tsval = 100;
  // The peer's timestamps only grow, so PAWS (RFC 7323 5) accepts every segment.
  const opts = (): TcpOptions => (timestamps ? { timestamp: { tsval: tsval++, tsecr: 0 } } : {});
  const cfg = plainConfig({ sack: true, timestamps, mss: MSS, ...over });
  const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0, { options: { mss: MSS, sackPermitted: true, ...opts() } }), cfg, testEnv(), 1000);
  c.takeOutput();
  c.onSegment(10 * MS, seg('.', 5001, 1001, { options: opts() }));
  c.takeOutput();
  expect(c.state).toBe('ESTABLISHED');
  expect(c.v.sackEnabled).toBe(true);
  expect(c.v.tsEnabled).toBe(timestamps);
  return { c, opts };
}

/** Out-of-order data from the peer: one 100-byte segment per hole, leaving 5001..5101 missing. */
function receiveOutOfOrder(c: Connection, opts: () => TcpOptions, pieces: number): void {
  for (let i = 0; i < pieces; i++) c.onSegment((20 + i) * MS, seg('.', 5101 + 200 * i, 1001, { data: 100, options: opts() }));
  c.takeOutput();
  expect(c.v.rcvNxt).toBe(5001);
}

const size = (s: TcpSegment): number => tcpSegmentLength(s);
const blocks = (s: TcpSegment): SackBlock[] => s.options.sack ?? [];

describe('ESTABLISHED, large write while holding out-of-order data', () => {
  it('with timestamps and three SACK blocks (40 option bytes): full segments are exactly MTU - 20 and carry all three blocks', () => {
    const { c, opts } = sackConnection(true);
    receiveOutOfOrder(c, opts, 3);
    c.write(30 * MS, bytes(6000, 1001));
    const data = c.takeOutput().filter((s) => s.payload.length > 0);
    expect(data.length).toBeGreaterThanOrEqual(4);
    for (const s of data) {
      expect(size(s)).toBeLessThanOrEqual(MTU_LESS_IP);
      // RFC 2018 4: "as many distinct SACK blocks as possible"; with timestamps that is three.
      expect(blocks(s)).toHaveLength(3);
    }
    // 1460 - 12 (timestamps) - 28 (SACK, 3 blocks) = 1420 bytes of payload: still full-sized.
    expect(data.slice(0, -1).map((s) => s.payload.length)).toEqual(data.slice(0, -1).map(() => 1420));
    expect(data.slice(0, -1).map(size)).toEqual(data.slice(0, -1).map(() => MTU_LESS_IP));
  });

  it('without timestamps and four SACK blocks (36 option bytes): 1424-byte payloads, four blocks, within MTU - 20', () => {
    const { c, opts } = sackConnection(false);
    receiveOutOfOrder(c, opts, 4);
    c.write(30 * MS, bytes(6000, 1001));
    const data = c.takeOutput().filter((s) => s.payload.length > 0);
    expect(data.length).toBeGreaterThanOrEqual(4);
    for (const s of data) {
      expect(size(s)).toBeLessThanOrEqual(MTU_LESS_IP);
      expect(blocks(s)).toHaveLength(4);
    }
    expect(data[0]!.payload.length).toBe(1424);
  });

  it('the hole is filled: the SACK blocks are gone and segments are full-sized again (1448 with timestamps)', () => {
    const { c, opts } = sackConnection(true);
    receiveOutOfOrder(c, opts, 1);
    c.onSegment(25 * MS, seg('.', 5001, 1001, { data: 100, options: opts() }));
    c.takeOutput();
    expect(c.v.rcvNxt).toBe(5201);
    c.write(30 * MS, bytes(3000, 1001));
    const data = c.takeOutput().filter((s) => s.payload.length > 0);
    expect(data.map((s) => s.payload.length)).toEqual([1448, 1448]);
    for (const s of data) expect(s.options.sack).toBeUndefined();
  });

  it('a D-SACK block reported once: the segment carrying it is 8 bytes smaller, the next ones are sized for the one block they carry', () => {
    const { c, opts } = sackConnection(true);
    receiveOutOfOrder(c, opts, 1); // block 5101..5201, hole 5001..5101
    c.setNoDelay(true);
    c.write(30 * MS, bytes(30000, 1001)); // the initial window goes out, the rest waits for cwnd
    c.takeOutput();
    const sndMax = c.v.sndMax;
    // The peer resends 5101..5201, already queued: a duplicate, reported by a D-SACK block first
    // (RFC 2883 4). Its ACK covers all we sent, so the same flush sends new data.
    c.onSegment(40 * MS, seg('.', 5101, sndMax, { data: 100, options: opts() }));
    const data = c.takeOutput().filter((s) => s.payload.length > 0);
    expect(data.length).toBeGreaterThanOrEqual(3);
    for (const s of data) expect(size(s)).toBeLessThanOrEqual(MTU_LESS_IP);
    // 1460 - 12 - (4 + 2 * 8) = 1428 with the D-SACK block, 1460 - 12 - (4 + 8) = 1436 after it.
    expect(blocks(data[0]!)).toEqual([{ left: 5101, right: 5201 }, { left: 5101, right: 5201 }]);
    expect(data[0]!.payload.length).toBe(1428);
    for (const s of data.slice(1, -1)) {
      expect(blocks(s)).toEqual([{ left: 5101, right: 5201 }]);
      expect(s.payload.length).toBe(1436);
    }
    expect(c.pendingDsack).toBeNull();
  });
});

describe('ESTABLISHED, retransmissions while holding out-of-order data', () => {
  it('third duplicate ACK: the fast retransmission keeps our SACK block and fits MTU - 20', () => {
    const { c, opts } = sackConnection(true);
    receiveOutOfOrder(c, opts, 1); // our receiver reports 5101..5201
    c.write(30 * MS, bytes(6000, 1001));
    const first = c.takeOutput().filter((s) => s.payload.length > 0);
    const head = first[0]!;
    // The peer lost our first segment and SACKs the second, three times.
    const second = first[1]!;
    const peerSack = { sack: [{ left: second.seq, right: second.seq + second.payload.length }] };
    for (let i = 0; i < 3; i++) c.onSegment((40 + i) * MS, seg('.', 5001, 1001, { options: { ...opts(), ...peerSack } }));
    const rtx = c.takeOutput().filter((s) => s.payload.length > 0 && s.seq === head.seq);
    expect(rtx.length).toBe(1);
    expect(size(rtx[0]!)).toBeLessThanOrEqual(MTU_LESS_IP);
    expect(blocks(rtx[0]!)).toEqual([{ left: 5101, right: 5201 }]);
    expect(rtx[0]!.payload.length).toBe(1436);
  });

  it('RTO with the window open: the retransmission keeps our SACK block and fits MTU - 20', () => {
    const { c, opts } = sackConnection(true);
    receiveOutOfOrder(c, opts, 2);
    c.write(30 * MS, bytes(6000, 1001));
    c.takeOutput();
    c.onTimer(c.v.rtxDeadline!);
    const rtx = c.takeOutput().filter((s) => s.payload.length > 0);
    expect(rtx[0]!.seq).toBe(1001);
    // 1460 - 12 - (4 + 2 * 8) = 1428 bytes; the loss window's remainder follows.
    expect(rtx[0]!.payload.length).toBe(1428);
    for (const s of rtx) {
      expect(size(s)).toBeLessThanOrEqual(MTU_LESS_IP);
      expect(blocks(s)).toHaveLength(2);
    }
  });
});
