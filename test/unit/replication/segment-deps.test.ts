// Which log records each packet the primary sends depends on (5.1 rule 1), so that the output gate
// holds it for those and not for the whole log tail.

import { describe, expect, it } from 'vitest';
import { SegmentDeps } from '../../../src/replication/segment-deps.js';
import { emitTcpIpv4 } from '../../../src/stack/wire/tcp.js';
import { IPPROTO_TCP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type FourTuple } from '../../../src/stack/wire/types.js';

const TUPLE: FourTuple = { localAddr: 0xc6120064, localPort: 80, remoteAddr: 0xc6120001, remotePort: 40000 };
const ISS = 0xffff_ff00; // the output stream wraps 2^32 after 255 bytes
const IRS = 7000;

function packet(flags: number, seq: number, ack: number, len = 0, tuple = TUPLE): Uint8Array {
  return emitTcpIpv4(
    { src: tuple.localAddr, dst: tuple.remoteAddr, protocol: IPPROTO_TCP, ttl: 64, tos: 0, id: 1, df: true },
    { srcPort: tuple.localPort, dstPort: tuple.remotePort, seq: seq >>> 0, ack: ack >>> 0, flags, window: 1000, urgent: 0, options: {}, payload: new Uint8Array(len) },
  );
}

/** Output byte `off` (0 = the first after the SYN) as a sequence number. */
const out = (off: number): number => (ISS + 1 + off) >>> 0;
const inp = (off: number): number => IRS + 1 + off;

function logged(): SegmentDeps {
  const d = new SegmentDeps();
  d.opened(1, TUPLE, ISS, IRS, 10);
  d.input(1, 100, false, 11, 0); // client bytes 0-99
  d.output(1, 1000, false, 12, 0); // our bytes 0-999
  d.output(1, 500, false, 14, 0); // our bytes 1000-1499
  d.input(1, 50, true, 15, 0); // client bytes 100-149 and its FIN
  d.output(1, 0, true, 17, 0); // our FIN
  return d;
}

describe('segment dependencies', () => {
  it('a SYN-ACK depends on the open record', () => {
    expect(logged().lsnFor(packet(TCP_SYN | TCP_ACK, ISS, IRS + 1), 0, 99)).toBe(10);
  });

  it('data depends on the output record holding its last byte, across the 2^32 wrap', () => {
    const d = logged();
    expect(d.lsnFor(packet(TCP_ACK, out(0), inp(0), 1000), 0, 99)).toBe(12);
    expect(d.lsnFor(packet(TCP_ACK, out(900), inp(0), 101), 0, 99)).toBe(14);
    expect(d.lsnFor(packet(TCP_ACK, out(1400), inp(0), 100), 0, 99)).toBe(14);
  });

  it('an ACK number depends on the input record that brought RCV.NXT up to it; the FIN counts', () => {
    const d = logged();
    expect(d.lsnFor(packet(TCP_ACK, out(0), inp(0)), 0, 99)).toBe(10);
    expect(d.lsnFor(packet(TCP_ACK, out(0), inp(60)), 0, 99)).toBe(11);
    expect(d.lsnFor(packet(TCP_ACK, out(0), inp(100)), 0, 99)).toBe(11);
    expect(d.lsnFor(packet(TCP_ACK, out(0), inp(101)), 0, 99)).toBe(15);
    expect(d.lsnFor(packet(TCP_ACK, out(0), inp(151)), 0, 99)).toBe(15);
    // A segment of old data acknowledging new client bytes waits for the newer of the two.
    expect(d.lsnFor(packet(TCP_ACK, out(0), inp(151), 10), 0, 99)).toBe(15);
  });

  it('a FIN depends on the output record that logged it', () => {
    expect(logged().lsnFor(packet(TCP_ACK | TCP_FIN, out(1500), inp(151)), 0, 99)).toBe(17);
    expect(logged().lsnFor(packet(TCP_ACK | TCP_FIN, out(1400), inp(151), 100), 0, 99)).toBe(17);
  });

  it('records already acknowledged hold nothing back, newer ones still do', () => {
    const d = logged();
    // The answer is at most the acknowledged LSN: the packet leaves at once.
    expect(d.lsnFor(packet(TCP_ACK, out(0), inp(100), 1000), 12, 99)).toBeLessThanOrEqual(12);
    expect(d.lsnFor(packet(TCP_ACK, out(1000), inp(100), 400), 12, 99)).toBe(14);
    expect(d.lsnFor(packet(TCP_ACK, out(0), inp(100), 1000), 13, 99)).toBeLessThanOrEqual(13);
  });

  it('what it cannot place waits for the tail: a RST, bytes beyond the log, a fragment', () => {
    const d = logged();
    expect(d.lsnFor(packet(TCP_RST | TCP_ACK, out(0), inp(0)), 0, 99)).toBe(99);
    expect(d.lsnFor(packet(TCP_ACK, out(1600), inp(0), 10), 0, 99)).toBe(99);
    expect(d.lsnFor(packet(TCP_ACK, out(0), inp(200)), 0, 99)).toBe(99);
    const frag = packet(TCP_ACK, out(0), inp(0), 10);
    frag[6] = 0x20; // More Fragments
    expect(d.lsnFor(frag, 0, 99)).toBe(99);
  });

  it("acknowledged: reports how far each connection's acknowledged output reaches, once per move", () => {
    const d = logged();
    const moves: [number, number][] = [];
    const report = (acked: number): void => d.acknowledged(acked, (id, limit) => moves.push([id, limit]));
    report(11);
    expect(moves).toEqual([]);
    report(12);
    expect(moves).toEqual([[1, out(1000)]]);
    report(13);
    expect(moves).toEqual([[1, out(1000)]]);
    // The FIN counts one: the limit passes it.
    report(17);
    expect(moves).toEqual([[1, out(1000)], [1, out(1501)]]);
  });

  it('acknowledged: a move that lsnFor trimmed first is still reported', () => {
    const d = logged();
    // A packet placed after the log advanced trims the acknowledged marks on its way.
    expect(d.lsnFor(packet(TCP_ACK, out(0), inp(0), 1000), 14, 20)).toBeLessThanOrEqual(14);
    const moves: [number, number][] = [];
    d.acknowledged(14, (id, limit) => moves.push([id, limit]));
    expect(moves).toEqual([[1, out(1500)]]);
  });

  it('a connection the log does not hold depends on nothing', () => {
    const other = { ...TUPLE, remotePort: 40001 };
    expect(logged().lsnFor(packet(TCP_ACK, 5, 5, 100, other), 0, 99)).toBe(0);
  });

  it('after its close record, everything of the connection waits for that record, until it is acknowledged', () => {
    const d = logged();
    d.closed(1, 20, 0);
    expect(d.lsnFor(packet(TCP_ACK, out(1501), inp(151)), 0, 99)).toBe(20);
    expect(d.lsnFor(packet(TCP_ACK, out(1501), inp(151)), 20, 99)).toBeLessThanOrEqual(20);
    expect(d.lsnFor(packet(TCP_ACK, out(1501), inp(151)), 20, 99)).toBe(0);
    // A new connection on the same 4-tuple starts from its own open record.
    d.opened(2, TUPLE, 5000, 9000, 30);
    expect(d.lsnFor(packet(TCP_SYN | TCP_ACK, 5000, 9001), 20, 99)).toBe(30);
  });
});
