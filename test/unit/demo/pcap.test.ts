// The pcap reader, on captures made by tcpdump in a lab (fixtures/: a 5000-byte HTTP download from
// python's http.server to curl, captured on the client's veth with -s 96, and on `-i any` as Linux
// cooked v1 and v2 with nanosecond stamps) and on synthetic bytes for the other byte order, RAW and
// VLAN frames and damaged files.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  LINKTYPE_ETHERNET,
  LINKTYPE_LINUX_SLL,
  LINKTYPE_LINUX_SLL2,
  LINKTYPE_RAW,
  parsePcap,
  readPcapFile,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  type TcpEvent,
} from '../../../src/demo/pcap.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const CLIENT = '198.18.0.10';
const SERVER = '198.18.0.1';
// From `tcpdump -n -r fixtures/ethernet.pcap`.
const CLIENT_ISN = 1115164962;
const SERVER_ISN = 307370595;

/** The download as tcpdump printed it: direction, flags, relative seq, payload length. */
const EXPECTED: Array<[string, number, number, number]> = [
  ['c>s', TCP_SYN, 0, 0],
  ['s>c', TCP_SYN | TCP_ACK, 0, 0],
  ['c>s', TCP_ACK, 1, 0],
  ['c>s', TCP_PSH | TCP_ACK, 1, 79],
  ['s>c', TCP_ACK, 1, 0],
  ['s>c', TCP_PSH | TCP_ACK, 1, 202],
  ['c>s', TCP_ACK, 80, 0],
  ['s>c', TCP_PSH | TCP_ACK, 203, 5000],
  ['c>s', TCP_ACK, 80, 0],
  ['c>s', TCP_FIN | TCP_ACK, 80, 0],
  ['s>c', TCP_FIN | TCP_ACK, 5203, 0],
  ['c>s', TCP_ACK, 81, 0],
];

function summary(events: TcpEvent[]): Array<[string, number, number, number]> {
  return events.map((e) => {
    const fromClient = e.src === CLIENT;
    const isn = fromClient ? CLIENT_ISN : SERVER_ISN;
    return [fromClient ? 'c>s' : 's>c', e.flags, (e.seq - isn) >>> 0, e.payloadLength];
  });
}

describe('reading tcpdump captures made in a lab', () => {
  it.each([
    ['ethernet.pcap', LINKTYPE_ETHERNET, false],
    ['sll.pcap', LINKTYPE_LINUX_SLL, false],
    ['sll2-nano.pcap', LINKTYPE_LINUX_SLL2, true],
  ])('%s: every TCP segment of the download, in order, with flags, sequence numbers and lengths', (file, linkType, nano) => {
    const r = readPcapFile(join(fixtures, file));
    expect(r.ok).toBe(true);
    expect(r.truncated).toBe(false);
    expect(r.linkType).toBe(linkType);
    expect(r.nanosecond).toBe(nano);
    expect(r.snapLength).toBe(96);
    expect(summary(r.tcp)).toEqual(EXPECTED);
    for (const e of r.tcp) {
      expect([e.src, e.dst].sort()).toEqual([CLIENT, SERVER].sort());
      expect(e.src === CLIENT ? e.dstPort : e.srcPort).toBe(80);
    }
  });

  it('takes the payload length from the IP header, not from the 96-byte snap length', () => {
    const r = readPcapFile(join(fixtures, 'ethernet.pcap'));
    const big = r.tcp.find((e) => e.payloadLength === 5000);
    expect(big).toBeDefined();
    expect(big!.window).toBe(64);
  });

  it('reads the ACK numbers and windows the client sent', () => {
    const r = readPcapFile(join(fixtures, 'ethernet.pcap'));
    const lastAck = r.tcp.at(-1)!;
    expect((lastAck.ack - SERVER_ISN) >>> 0).toBe(5204);
    expect(lastAck.window).toBe(73);
    expect(r.tcp[0]!.window).toBe(64240);
  });

  it('decodes the ARP exchange on the Ethernet capture and skips nothing else', () => {
    const r = readPcapFile(join(fixtures, 'ethernet.pcap'));
    expect(r.arp.map((a) => [a.op, a.senderIp, a.targetIp])).toEqual([
      [1, CLIENT, SERVER],
      [2, SERVER, CLIENT],
    ]);
    expect(r.arp[1]!.senderMac).toBe('ae:62:d8:7b:da:1a');
    expect(r.records).toBe(14);
    expect(r.skipped).toBe(0);
  });

  it('gives the same times to the microsecond in µs and ns files of the same packets', () => {
    const us = readPcapFile(join(fixtures, 'sll.pcap')).tcp;
    const ns = readPcapFile(join(fixtures, 'sll2-nano.pcap')).tcp;
    // Two captures of the same packets, taken by two tcpdump processes: stamps differ by a few µs.
    for (let i = 0; i < us.length; i++) expect(Math.abs(us[i]!.timeUs - ns[i]!.timeUs)).toBeLessThan(50);
    // 2026-11-28 15:20:56 UTC, as tcpdump printed it.
    expect(new Date(us[0]!.timeUs / 1000).toISOString()).toBe('2026-11-28T15:20:56.530Z');
    expect(us[0]!.timeUs % 1_000_000).toBe(530548);
  });

  it('never throws on a capture cut at any byte, and keeps every packet before the cut', () => {
    const whole = readFileSync(join(fixtures, 'ethernet.pcap'));
    const full = parsePcap(whole).tcp.length;
    // Where records end: a cut exactly there is a shorter but whole file.
    const boundaries = new Set<number>();
    for (let off = 24; off <= whole.length; off += 16 + whole.readUInt32LE(off + 8)) {
      boundaries.add(off);
      if (off === whole.length) break;
    }
    let previous = 0;
    for (let n = 0; n < whole.length; n++) {
      const r = parsePcap(whole.subarray(0, n));
      expect(r.truncated, `cut at ${n}`).toBe(!boundaries.has(n));
      expect(r.tcp.length).toBeGreaterThanOrEqual(previous);
      previous = r.tcp.length;
    }
    expect(previous).toBe(full - 1);
  });
});

// --- synthetic files ---------------------------------------------------------------------------

interface Frame {
  sec: number;
  frac: number;
  bytes: Uint8Array;
  origLen?: number;
}

function pcapFile(opts: { littleEndian: boolean; nano: boolean; linkType: number; frames: Frame[] }): Uint8Array {
  const le = opts.littleEndian;
  const size = 24 + opts.frames.reduce((n, f) => n + 16 + f.bytes.length, 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, opts.nano ? 0xa1b23c4d : 0xa1b2c3d4, le);
  v.setUint16(4, 2, le);
  v.setUint16(6, 4, le);
  v.setUint32(16, 65535, le);
  v.setUint32(20, opts.linkType, le);
  let off = 24;
  for (const f of opts.frames) {
    v.setUint32(off, f.sec, le);
    v.setUint32(off + 4, f.frac, le);
    v.setUint32(off + 8, f.bytes.length, le);
    v.setUint32(off + 12, f.origLen ?? f.bytes.length, le);
    out.set(f.bytes, off + 16);
    off += 16 + f.bytes.length;
  }
  return out;
}

/** An IPv4/TCP packet (no options) with `payload` bytes, checksums left at zero. */
function ipTcp(p: { src: number[]; dst: number[]; sport: number; dport: number; seq: number; ack: number; flags: number; window: number; payload: number; totalLength?: number }): Uint8Array {
  const b = new Uint8Array(40 + p.payload);
  const v = new DataView(b.buffer);
  b[0] = 0x45;
  v.setUint16(2, p.totalLength ?? b.length);
  b[8] = 64;
  b[9] = 6;
  b.set(p.src, 12);
  b.set(p.dst, 16);
  v.setUint16(20, p.sport);
  v.setUint16(22, p.dport);
  v.setUint32(24, p.seq);
  v.setUint32(28, p.ack);
  b[32] = 5 << 4;
  b[33] = p.flags;
  v.setUint16(34, p.window);
  return b;
}

function ether(type: number, payload: Uint8Array, vlan = false): Uint8Array {
  const head = vlan ? 18 : 14;
  const b = new Uint8Array(head + payload.length);
  b.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
  if (vlan) {
    b.set([0x81, 0x00, 0x00, 0x07], 12);
  }
  b[head - 2] = type >> 8;
  b[head - 1] = type & 0xff;
  b.set(payload, head);
  return b;
}

const seg = { src: [198, 18, 0, 100], dst: [198, 18, 0, 10], sport: 80, dport: 40000, seq: 0xfffffff0, ack: 12345, flags: TCP_ACK | TCP_PSH, window: 502, payload: 100 };

describe('reading synthetic pcap bytes', () => {
  it.each([
    [true, false],
    [false, false],
    [true, true],
    [false, true],
  ])('little-endian %s, nanosecond %s: same event, same time', (littleEndian, nano) => {
    const bytes = pcapFile({
      littleEndian,
      nano,
      linkType: LINKTYPE_RAW,
      frames: [{ sec: 1_800_000_000, frac: nano ? 123_456_789 : 123_456, bytes: ipTcp(seg) }],
    });
    const r = parsePcap(bytes);
    expect(r.ok).toBe(true);
    expect(r.littleEndian).toBe(littleEndian);
    expect(r.nanosecond).toBe(nano);
    expect(r.tcp).toEqual([
      { timeUs: 1_800_000_000_123_456, src: '198.18.0.100', srcPort: 80, dst: '198.18.0.10', dstPort: 40000, flags: TCP_ACK | TCP_PSH, seq: 0xfffffff0, ack: 12345, payloadLength: 100, window: 502 },
    ]);
  });

  it('follows 802.1Q tags on Ethernet', () => {
    const r = parsePcap(pcapFile({ littleEndian: true, nano: false, linkType: LINKTYPE_ETHERNET, frames: [{ sec: 1, frac: 0, bytes: ether(0x0800, ipTcp(seg), true) }] }));
    expect(r.tcp.map((e) => e.seq)).toEqual([0xfffffff0]);
  });

  it('uses the frame length for a super-packet captured with IP total length 0', () => {
    const pkt = ipTcp({ ...seg, payload: 0, totalLength: 0, flags: TCP_ACK });
    const r = parsePcap(pcapFile({ littleEndian: true, nano: false, linkType: LINKTYPE_RAW, frames: [{ sec: 1, frac: 0, bytes: pkt, origLen: 40 + 65000 }] }));
    expect(r.tcp[0]!.payloadLength).toBe(65000);
  });

  it('counts a RST like any other segment and skips non-TCP packets', () => {
    const udp = ipTcp(seg);
    udp[9] = 17;
    const rst = ipTcp({ ...seg, flags: TCP_RST, payload: 0 });
    const r = parsePcap(pcapFile({ littleEndian: true, nano: false, linkType: LINKTYPE_ETHERNET, frames: [
      { sec: 1, frac: 0, bytes: ether(0x0800, udp) },
      { sec: 1, frac: 1, bytes: ether(0x86dd, new Uint8Array(40)) },
      { sec: 1, frac: 2, bytes: ether(0x0800, rst) },
    ] }));
    expect(r.records).toBe(3);
    expect(r.skipped).toBe(2);
    expect(r.tcp.map((e) => e.flags)).toEqual([TCP_RST]);
  });

  it('stops at a record whose length field is absurd, keeping what came before', () => {
    const bytes = pcapFile({ littleEndian: true, nano: false, linkType: LINKTYPE_RAW, frames: [
      { sec: 1, frac: 0, bytes: ipTcp(seg) },
      { sec: 2, frac: 0, bytes: ipTcp(seg) },
    ] });
    new DataView(bytes.buffer).setUint32(24 + 16 + 140 + 8, 0x7fffffff, true);
    const r = parsePcap(bytes);
    expect(r.tcp).toHaveLength(1);
    expect(r.truncated).toBe(true);
    expect(r.problem).toMatch(/corrupt/);
  });

  it('refuses pcapng and random bytes with a reason instead of an exception', () => {
    const ng = new Uint8Array(64);
    ng.set([0x0a, 0x0d, 0x0d, 0x0a]);
    expect(parsePcap(ng)).toMatchObject({ ok: false, problem: expect.stringMatching(/pcapng/) });
    expect(parsePcap(new Uint8Array(64).fill(7))).toMatchObject({ ok: false, problem: expect.stringMatching(/not a pcap/) });
    expect(parsePcap(new Uint8Array(3))).toMatchObject({ ok: false, truncated: true });
  });
});
