import { describe, expect, it } from 'vitest';
import { coalescibleRun, GSO_MAX_PACKET, mergedLength, tcpPseudoHeaderSum, writeMerged } from '../../../src/tun/gso.js';
import { foldSum, onesSum, pseudoHeaderSum } from '../../../src/stack/wire/checksum.js';
import { emitTcpIpv4 } from '../../../src/stack/wire/tcp.js';
import { IPPROTO_TCP, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN, TCP_URG, type Ipv4Header, type TcpOptions } from '../../../src/stack/wire/types.js';

const SRC = 0xc6120064; // 198.18.0.100
const DST = 0xc612000a; // 198.18.0.10
const MSS = 1448;

interface SegSpec {
  seq: number;
  len: number;
  flags?: number;
  id?: number;
  options?: TcpOptions;
  ack?: number;
  window?: number;
  dst?: number;
}

const TS: TcpOptions = { timestamp: { tsval: 1000, tsecr: 2000 } };

function payload(seq: number, len: number): Uint8Array {
  const p = new Uint8Array(len);
  for (let i = 0; i < len; i++) p[i] = (seq + i) * 7;
  return p;
}

/** A data segment as the host emits it with checksum offload: partial checksum, DF, TTL 64. */
function seg(s: SegSpec): Uint8Array {
  const ip: Ipv4Header = { src: SRC, dst: s.dst ?? DST, protocol: IPPROTO_TCP, ttl: 64, tos: 0, id: s.id ?? s.seq & 0xffff, df: true };
  return emitTcpIpv4(
    ip,
    {
      srcPort: 80,
      dstPort: 40000,
      seq: s.seq >>> 0,
      ack: s.ack ?? 5000,
      flags: (s.flags ?? 0) | TCP_ACK,
      window: s.window ?? 1024,
      urgent: 0,
      options: s.options ?? TS,
      payload: payload(s.seq, s.len),
    },
    { checksumOffload: true },
  );
}

/** n full segments from seq, IDs counting up, then extras. */
function run(n: number, seq = 1, lastLen = MSS, lastFlags = 0): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const last = i === n - 1;
    out.push(seg({ seq: seq + i * MSS, len: last ? lastLen : MSS, id: 100 + i, flags: last ? lastFlags : 0 }));
  }
  return out;
}

/** Whole runs, as the TUN device walks them. */
function runs(packets: Uint8Array[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < packets.length; ) {
    const end = coalescibleRun(packets, i);
    out.push(end - i);
    i = end;
  }
  return out;
}

/**
 * What the kernel does with a super-packet (tcp_gso_segment): the first header on every segment,
 * sequence advanced by gso_size, IP ID by one, PSH/FIN only on the last, lengths and checksums
 * per segment. Checksums are left partial here, as the host emitted the originals.
 */
function segment(sup: Uint8Array, gsoSize: number): Uint8Array[] {
  const thl = (sup[32]! >>> 4) * 4;
  const hdr = 20 + thl;
  const body = sup.subarray(hdr);
  const out: Uint8Array[] = [];
  const seq0 = ((sup[24]! << 24) | (sup[25]! << 16) | (sup[26]! << 8) | sup[27]!) >>> 0;
  const id0 = (sup[4]! << 8) | sup[5]!;
  for (let off = 0, k = 0; off < body.length; off += gsoSize, k++) {
    const len = Math.min(gsoSize, body.length - off);
    const p = new Uint8Array(hdr + len);
    p.set(sup.subarray(0, hdr));
    p.set(body.subarray(off, off + len), hdr);
    p[2] = (hdr + len) >>> 8;
    p[3] = (hdr + len) & 0xff;
    const id = (id0 + k) & 0xffff;
    p[4] = id >>> 8;
    p[5] = id & 0xff;
    p[10] = p[11] = 0;
    const ipck = ~foldSum(onesSum(p, 0, 20)) & 0xffff;
    p[10] = ipck >>> 8;
    p[11] = ipck & 0xff;
    const seq = (seq0 + off) >>> 0;
    p[24] = seq >>> 24;
    p[25] = (seq >>> 16) & 0xff;
    p[26] = (seq >>> 8) & 0xff;
    p[27] = seq & 0xff;
    if (off + len < body.length) p[33] = p[33]! & ~(TCP_PSH | TCP_FIN);
    const ck = tcpPseudoHeaderSum(p, 0, thl + len);
    p[36] = ck >>> 8;
    p[37] = ck & 0xff;
    out.push(p);
  }
  return out;
}

function merge(packets: Uint8Array[], start: number, end: number): { sup: Uint8Array; gsoSize: number } {
  const buf = new Uint8Array(mergedLength(packets, start, end) + 3);
  const m = writeMerged(packets, start, end, buf, 3);
  expect(m.length).toBe(buf.length - 3);
  return { sup: buf.subarray(3), gsoSize: m.gsoSize };
}

describe('TSO coalescer', () => {
  it('merges contiguous full segments and a shorter last one, and the kernel would cut them back exactly', () => {
    const packets = run(5, 1, 700, TCP_PSH);
    expect(runs(packets)).toEqual([5]);
    const { sup, gsoSize } = merge(packets, 0, 5);
    expect(gsoSize).toBe(MSS);
    expect(sup.length).toBe(20 + 32 + 4 * MSS + 700);
    expect(sup[33]).toBe(TCP_ACK | TCP_PSH);
    // IPv4 header checksum valid, TCP checksum field = folded pseudo-header sum over the whole length.
    expect(foldSum(onesSum(sup, 0, 20))).toBe(0xffff);
    expect((sup[36]! << 8) | sup[37]!).toBe(foldSum(pseudoHeaderSum(SRC, DST, IPPROTO_TCP, sup.length - 20)));
    expect(segment(sup, gsoSize)).toEqual(packets);
  });

  it('puts FIN only on the last segment, and a FIN or PSH segment ends the run', () => {
    const packets = [...run(3, 1, MSS, TCP_FIN | TCP_PSH), ...run(2, 1 + 3 * MSS + 1)];
    expect(runs(packets)).toEqual([3, 2]);
    const { sup, gsoSize } = merge(packets, 0, 3);
    expect(sup[33]).toBe(TCP_ACK | TCP_FIN | TCP_PSH);
    const back = segment(sup, gsoSize);
    expect(back.map((p) => p[33])).toEqual([TCP_ACK, TCP_ACK, TCP_ACK | TCP_FIN | TCP_PSH]);
    expect(back).toEqual(packets.slice(0, 3));
  });

  it('splits at a sequence gap, an overlap (retransmission) and a short segment in the middle', () => {
    const a = run(2, 1);
    const gap = run(2, 1 + 2 * MSS + 100);
    expect(runs([...a, ...gap])).toEqual([2, 2]);
    const rexmit = run(2, 1);
    expect(runs([...a, ...rexmit])).toEqual([2, 2]);
    const short = [seg({ seq: 1, len: MSS }), seg({ seq: 1 + MSS, len: 500 }), seg({ seq: 1 + MSS + 500, len: 500 })];
    expect(runs(short)).toEqual([2, 1]);
    // A later segment longer than the first one cannot be cut at gso_size = the first's length.
    const growing = [seg({ seq: 1, len: 500 }), seg({ seq: 501, len: 600 })];
    expect(runs(growing)).toEqual([1, 1]);
  });

  it('splits when options, ACK, window, flags or addresses change', () => {
    const base = seg({ seq: 1, len: MSS });
    const next = (s: Partial<SegSpec>) => seg({ seq: 1 + MSS, len: MSS, ...s });
    expect(runs([base, next({})])).toEqual([2]);
    expect(runs([base, next({ options: { timestamp: { tsval: 1001, tsecr: 2000 } } })])).toEqual([1, 1]);
    expect(runs([base, next({ options: { ...TS, sack: [{ left: 9000, right: 9100 }] } })])).toEqual([1, 1]);
    expect(runs([base, next({ ack: 5001 })])).toEqual([1, 1]);
    expect(runs([base, next({ window: 1023 })])).toEqual([1, 1]);
    expect(runs([base, next({ flags: TCP_URG })])).toEqual([1, 1]);
    expect(runs([base, next({ dst: DST + 1 })])).toEqual([1, 1]);
  });

  it('leaves pure ACKs, SYNs and non-TCP packets alone', () => {
    const ack = seg({ seq: 1, len: 0 });
    const syn = seg({ seq: 1, len: MSS, flags: TCP_SYN });
    const icmp = Uint8Array.from([0x45, 0, 0, 28, 0, 1, 0x40, 0, 64, 1, 0, 0, 198, 18, 0, 100, 198, 18, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(runs([ack, ack, syn, seg({ seq: 1 + MSS, len: MSS }), icmp, icmp])).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('never makes a super-packet over 64 KiB: a long train becomes several', () => {
    const packets = run(100, 0xfffff000); // also crosses the sequence wrap
    const lengths = runs(packets);
    expect(lengths.reduce((a, b) => a + b, 0)).toBe(100);
    let start = 0;
    for (const n of lengths) {
      const len = mergedLength(packets, start, start + n);
      expect(len).toBeLessThanOrEqual(GSO_MAX_PACKET);
      const { sup, gsoSize } = merge(packets, start, start + n);
      expect(segment(sup, gsoSize)).toEqual(packets.slice(start, start + n));
      start += n;
    }
    // As many segments as fit: (65535 - 52) / 1448 = 45.
    expect(lengths[0]).toBe(45);
    expect(runs(packets.slice(0, 10))).toEqual([10]);
    expect(coalescibleRun(packets, 0, 52 + 3 * MSS)).toBe(3);
  });
});
