// Builders, mutators and an independent oracle for the stack-level fuzz test (fuzz-stack.test.ts).
// Packets are built byte by byte here, not with the wire module's emitters, and checksums are
// computed by a plain byte-pair loop, so that a bug in the code under test cannot hide itself by
// agreeing with its own helpers.

import { createPrng, type Prng } from '../../../src/tun/prng.js';

export { createPrng, type Prng };

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** Seed for a fuzz run: FUZZ_SEED in the environment replays one, otherwise the given default. */
export function fuzzSeed(dflt: number): number {
  const s = process.env['FUZZ_SEED'];
  return s !== undefined && s !== '' ? Number(s) >>> 0 : dflt;
}

export function hex(p: Uint8Array, max = 2048): string {
  let s = '';
  const n = Math.min(p.length, max);
  for (let i = 0; i < n; i++) s += p[i]!.toString(16).padStart(2, '0');
  return n < p.length ? `${s}... (${p.length} bytes)` : s;
}

export function pick<T>(r: Prng, xs: readonly T[]): T {
  return xs[r.int(xs.length)]!;
}

export function randomBytes(r: Prng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 4) {
    const x = r.next();
    b[i] = x & 0xff;
    if (i + 1 < n) b[i + 1] = (x >>> 8) & 0xff;
    if (i + 2 < n) b[i + 2] = (x >>> 16) & 0xff;
    if (i + 3 < n) b[i + 3] = x >>> 24;
  }
  return b;
}

/** RFC 1122 3.2.1.3 sources that do not name one host: 0/8, 127/8, 224/4 and 240/4. */
export function isMartian(a: number): boolean {
  const top = a >>> 24;
  return top === 0 || top === 127 || top >= 224;
}

/** A random unicast source address that is not in `avoid`. */
export function randomSource(r: Prng, avoid: ReadonlySet<number>): number {
  for (;;) {
    const a = r.next() >>> 0;
    if (!isMartian(a) && !avoid.has(a)) return a;
  }
}

// ---- checksums (independent of src/stack/wire/checksum.ts) ----

function sum16(b: Uint8Array, start: number, end: number, initial = 0): number {
  let s = initial;
  let i = start;
  for (; i + 1 < end; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (i < end) s += b[i]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

function checksumOf(b: Uint8Array, start: number, end: number, initial = 0): number {
  return ~sum16(b, start, end, initial) & 0xffff;
}

function pseudo(src: number, dst: number, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}

function checksumOk(b: Uint8Array, start: number, end: number, initial = 0): boolean {
  return sum16(b, start, end, initial) === 0xffff;
}

export function read16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

export function read32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function write16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

function write32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

// ---- builders ----

export interface RawIp {
  src: number;
  dst: number;
  protocol: number;
  id?: number;
  ttl?: number;
  tos?: number;
  df?: boolean;
  mf?: boolean;
  /** Fragment offset in bytes (multiple of 8 for a well-formed fragment). */
  offset?: number;
  /** IP options (padded to 4 bytes with zeros, i.e. EOL). */
  options?: Uint8Array;
}

/** An IPv4 packet with a correct header checksum around `payload` (copied). */
export function rawIpv4(h: RawIp, payload: Uint8Array): Uint8Array {
  const optLen = h.options ? (h.options.length + 3) & ~3 : 0;
  const ihl = 20 + optLen;
  const total = ihl + payload.length;
  const b = new Uint8Array(total);
  b[0] = 0x40 | (ihl >>> 2);
  b[1] = h.tos ?? 0;
  write16(b, 2, total);
  write16(b, 4, h.id ?? 0);
  const frag = (h.df ? 0x4000 : 0) | (h.mf ? 0x2000 : 0) | (((h.offset ?? 0) >>> 3) & 0x1fff);
  write16(b, 6, frag);
  b[8] = h.ttl ?? 64;
  b[9] = h.protocol;
  write32(b, 12, h.src);
  write32(b, 16, h.dst);
  if (h.options) b.set(h.options, 20);
  write16(b, 10, checksumOf(b, 0, ihl));
  b.set(payload, ihl);
  return b;
}

export interface RawTcp {
  src: number;
  dst: number;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack?: number;
  flags: number;
  window?: number;
  urgent?: number;
  /** Raw option bytes, padded with zeros (EOL) to a multiple of 4. */
  options?: Uint8Array;
  payload?: Uint8Array;
  id?: number;
}

/** TCP in IPv4 with correct checksums. */
export function rawTcpPacket(t: RawTcp): Uint8Array {
  const optLen = t.options ? (t.options.length + 3) & ~3 : 0;
  const hl = 20 + optLen;
  const payload = t.payload ?? new Uint8Array(0);
  const seg = new Uint8Array(hl + payload.length);
  write16(seg, 0, t.srcPort);
  write16(seg, 2, t.dstPort);
  write32(seg, 4, t.seq >>> 0);
  write32(seg, 8, (t.ack ?? 0) >>> 0);
  seg[12] = (hl >>> 2) << 4;
  seg[13] = t.flags & 0xff;
  write16(seg, 14, t.window ?? 65535);
  write16(seg, 18, t.urgent ?? 0);
  if (t.options) seg.set(t.options, 20);
  seg.set(payload, hl);
  write16(seg, 16, checksumOf(seg, 0, seg.length, pseudo(t.src, t.dst, IPPROTO_TCP, seg.length)));
  return rawIpv4({ src: t.src, dst: t.dst, protocol: IPPROTO_TCP, id: t.id ?? 1, df: true }, seg);
}

/** An ICMP message (type, code, 4 bytes of "rest", body) in IPv4, with correct checksums. */
export function rawIcmpPacket(src: number, dst: number, type: number, code: number, rest: number, body: Uint8Array, id = 7): Uint8Array {
  const m = new Uint8Array(8 + body.length);
  m[0] = type;
  m[1] = code;
  write32(m, 4, rest >>> 0);
  m.set(body, 8);
  write16(m, 2, checksumOf(m, 0, m.length));
  return rawIpv4({ src, dst, protocol: IPPROTO_ICMP, id }, m);
}

/**
 * Recomputes the IPv4 header checksum and, for an unfragmented TCP or ICMP packet whose lengths
 * are consistent, the transport checksum: a mutated packet then gets past the checksum checks and
 * reaches the layers behind them. Lengths that make a checksum impossible are left alone.
 */
export function fixChecksums(b: Uint8Array): void {
  if (b.length < 20 || b[0]! >>> 4 !== 4) return;
  const ihl = (b[0]! & 0x0f) * 4;
  if (ihl < 20 || ihl > b.length) return;
  const total = read16(b, 2);
  const frag = read16(b, 6);
  if (total >= ihl && total <= b.length && (frag & 0x3fff) === 0) {
    const p = b.subarray(ihl, total);
    const src = read32(b, 12);
    const dst = read32(b, 16);
    if (b[9] === IPPROTO_TCP && p.length >= 18) {
      write16(p, 16, 0);
      write16(p, 16, checksumOf(p, 0, p.length, pseudo(src, dst, IPPROTO_TCP, p.length)));
    } else if (b[9] === IPPROTO_ICMP && p.length >= 4) {
      write16(p, 2, 0);
      write16(p, 2, checksumOf(p, 0, p.length));
    }
  }
  write16(b, 10, 0);
  write16(b, 10, checksumOf(b, 0, ihl));
}

/** Makes the IPv4 header checksum wrong (if the header is long enough to have one). */
export function breakIpChecksum(b: Uint8Array): void {
  if (b.length < 12) return;
  fixChecksums(b);
  // Adding 1 to the field changes the one's complement sum by one: never back to all ones
  // (a change by 0xffff, e.g. 0x0000 <-> 0xffff, would be invisible).
  const v = read16(b, 10);
  write16(b, 10, v === 0xfffe ? 0x0001 : (v + 1) & 0xffff);
}

/** Makes the transport checksum wrong, keeping the IP header checksum right. */
export function breakTransportChecksum(b: Uint8Array): void {
  fixChecksums(b);
  if (b.length < 20) return;
  const ihl = (b[0]! & 0x0f) * 4;
  const at = b[9] === IPPROTO_TCP ? ihl + 16 : ihl + 2;
  if (at + 2 > b.length) return;
  const v = read16(b, at);
  write16(b, at, v === 0xfffe ? 0x0001 : (v + 1) & 0xffff);
}

// ---- mutators ----

export type Mutation = 'bitflip' | 'truncate' | 'extend' | 'total-length' | 'ihl' | 'data-offset' | 'byte' | 'flags' | 'options';

export const MUTATIONS: readonly Mutation[] = ['bitflip', 'truncate', 'extend', 'total-length', 'ihl', 'data-offset', 'byte', 'flags', 'options'];

/** Applies one mutation; returns the (possibly new) packet. */
export function mutate(r: Prng, p: Uint8Array, m: Mutation): Uint8Array {
  const b = new Uint8Array(p);
  const ihl = b.length > 0 ? (b[0]! & 0x0f) * 4 : 20;
  switch (m) {
    case 'bitflip': {
      const n = 1 + r.int(4);
      for (let i = 0; i < n && b.length > 0; i++) b[r.int(b.length)]! ^= 1 << r.int(8);
      return b;
    }
    case 'byte':
      if (b.length > 0) b[r.int(b.length)] = r.int(256);
      return b;
    case 'truncate':
      return b.subarray(0, r.int(b.length + 1));
    case 'extend': {
      // Link padding after the total length: must be ignored.
      const out = new Uint8Array(b.length + 1 + r.int(40));
      out.set(b);
      return out;
    }
    case 'total-length':
      if (b.length >= 4) write16(b, 2, pick(r, [0, 1, 19, 20, ihl - 1, ihl, b.length - 1, b.length + 1, 0xffff, r.int(0x10000)]));
      return b;
    case 'ihl':
      if (b.length >= 1) b[0] = (b[0]! & 0xf0) | r.int(16);
      return b;
    case 'data-offset':
      if (b.length > ihl + 12) b[ihl + 12] = (r.int(16) << 4) | (b[ihl + 12]! & 0x0f);
      return b;
    case 'flags':
      if (b.length > ihl + 13) b[ihl + 13] = r.int(256);
      return b;
    case 'options': {
      // Replace the TCP header's option area (or add one) with garbage options.
      if (b.length < ihl + 20) return b;
      const tcp = b.subarray(ihl);
      const oldHl = (tcp[12]! >>> 4) * 4;
      const opts = garbageOptions(r);
      const hl = 20 + opts.length;
      const rest = oldHl <= tcp.length ? tcp.subarray(Math.max(20, oldHl)) : new Uint8Array(0);
      const out = new Uint8Array(ihl + hl + rest.length);
      out.set(b.subarray(0, ihl + 20));
      out.set(opts, ihl + 20);
      out.set(rest, ihl + hl);
      out[ihl + 12] = ((hl >>> 2) << 4) | (out[ihl + 12]! & 0x0f);
      write16(out, 2, out.length);
      return out;
    }
  }
}

/**
 * An option area (multiple of 4 bytes, at most 40) holding some valid options and at least one
 * broken one: length 0, 1 or 255, an option running past the header, wrong fixed lengths,
 * a kind without room for its length byte.
 */
export function garbageOptions(r: Prng): Uint8Array {
  const parts: number[] = [];
  const valid: number[][] = [
    [2, 4, 0x05, 0xb4],
    [3, 3, 7],
    [4, 2],
    [8, 10, 1, 2, 3, 4, 5, 6, 7, 8],
    [1],
    [5, 10, 0, 0, 0, 1, 0, 0, 0, 9],
  ];
  const broken: number[][] = [
    [2, 0],
    [3, 1],
    [8, 255],
    [2, 3, 1],
    [3, 4, 7, 7],
    [5, 3, 1],
    [8, 9, 1, 2, 3, 4, 5, 6, 7],
    [0xfe, 0],
    [0xfe, 1],
    [30, 40],
  ];
  const n = r.int(3);
  for (let i = 0; i < n; i++) parts.push(...pick(r, valid));
  parts.push(...pick(r, broken));
  if (r.chance(50)) parts.push(...pick(r, valid));
  let len = Math.min(parts.length, 40);
  // Sometimes end the area on a lone kind byte: an option whose length byte is missing.
  if (r.chance(20) && len < 40) {
    len = (len + 3) & ~3;
    const out = new Uint8Array(Math.min(40, len === parts.length ? len + 4 : len));
    out.set(parts.slice(0, out.length));
    out.fill(1, Math.min(parts.length, out.length));
    out[out.length - 1] = pick(r, [2, 3, 8, 5, 30]);
    return out;
  }
  const out = new Uint8Array((len + 3) & ~3);
  out.set(parts.slice(0, len));
  return out;
}

/** A view of `p` at an odd byte offset inside a larger buffer (word-at-a-time code must cope). */
export function misaligned(r: Prng, p: Uint8Array): Uint8Array {
  const pad = 1 + 2 * r.int(4);
  const big = new Uint8Array(pad + p.length + 3);
  big.set(p, pad);
  return big.subarray(pad, pad + p.length);
}

// ---- the oracle ----

/** Drop counters the oracle can name; `tcp.rx`, `frag.received` and `icmp.ok` mean "went on". */
export type Expected =
  | 'ip.truncated'
  | 'ip.bad-version'
  | 'ip.bad-ihl'
  | 'ip.bad-length'
  | 'ip.bad-checksum'
  | 'ip.bad-fragment'
  | 'ip.not-ours'
  | 'ip.bad-source'
  | 'ip.unknown-protocol'
  | 'frag.received'
  | 'tcp.truncated'
  | 'tcp.bad-data-offset'
  | 'tcp.bad-checksum'
  | 'tcp.rx'
  | 'icmp.truncated'
  | 'icmp.bad-checksum'
  | 'icmp.bad-quote'
  | 'icmp.ok';

export const DROP_COUNTERS: readonly Expected[] = [
  'ip.truncated',
  'ip.bad-version',
  'ip.bad-ihl',
  'ip.bad-length',
  'ip.bad-checksum',
  'ip.bad-fragment',
  'ip.not-ours',
  'ip.bad-source',
  'ip.unknown-protocol',
  'tcp.truncated',
  'tcp.bad-data-offset',
  'tcp.bad-checksum',
  'icmp.truncated',
  'icmp.bad-checksum',
  'icmp.bad-quote',
];

/**
 * What a host answering for `local` must do with packet `p`, from RFC 791 / 9293 / 792 and the
 * host's documented checks, in the order the host documents: the counter that names the drop,
 * or how far the packet gets.
 */
export function expectedFate(p: Uint8Array, local: ReadonlySet<number>): Expected {
  const len = p.length;
  if (len < 20) return 'ip.truncated';
  if (p[0]! >>> 4 !== 4) return 'ip.bad-version';
  const ihl = (p[0]! & 0x0f) * 4;
  if (ihl < 20) return 'ip.bad-ihl';
  if (ihl > len) return 'ip.truncated';
  const total = read16(p, 2);
  if (total < ihl) return 'ip.bad-length';
  if (total > len) return 'ip.truncated';
  if (!checksumOk(p, 0, ihl)) return 'ip.bad-checksum';
  const frag = read16(p, 6);
  const offset = (frag & 0x1fff) * 8;
  const mf = (frag & 0x2000) !== 0;
  if (offset + (total - ihl) > 65535 - 20) return 'ip.bad-fragment';
  if (!local.has(read32(p, 16))) return 'ip.not-ours';
  if (isMartian(read32(p, 12))) return 'ip.bad-source';
  if (mf || offset !== 0) return 'frag.received';
  const body = p.subarray(ihl, total);
  switch (p[9]) {
    case IPPROTO_TCP: {
      if (body.length < 20) return 'tcp.truncated';
      const hl = (body[12]! >>> 4) * 4;
      if (hl < 20 || hl > body.length) return 'tcp.bad-data-offset';
      if (!checksumOk(body, 0, body.length, pseudo(read32(p, 12), read32(p, 16), IPPROTO_TCP, body.length))) return 'tcp.bad-checksum';
      return 'tcp.rx';
    }
    case IPPROTO_ICMP: {
      if (body.length < 8) return 'icmp.truncated';
      if (!checksumOk(body, 0, body.length)) return 'icmp.bad-checksum';
      const type = body[0]!;
      if (type === 3 || type === 11 || type === 12) {
        const q = body.subarray(8);
        if (q.length < 20) return 'icmp.bad-quote';
        const qihl = (q[0]! & 0x0f) * 4;
        if (q[0]! >>> 4 !== 4 || qihl < 20 || q.length < qihl + 8) return 'icmp.bad-quote';
      }
      return 'icmp.ok';
    }
    default:
      return 'ip.unknown-protocol';
  }
}

/** The payload of a datagram put back together from its fragments (any order); null if incomplete. */
export function reassemble(packets: readonly Uint8Array[]): Uint8Array | null {
  const parts = packets.map((p) => {
    const ihl = (p[0]! & 0x0f) * 4;
    const frag = read16(p, 6);
    return { offset: (frag & 0x1fff) * 8, mf: (frag & 0x2000) !== 0, data: p.subarray(ihl, read16(p, 2)) };
  });
  parts.sort((a, b) => a.offset - b.offset);
  let at = 0;
  for (const f of parts) {
    if (f.offset !== at) return null;
    at += f.data.length;
  }
  if (parts.length === 0 || parts[parts.length - 1]!.mf) return null;
  const out = new Uint8Array(at);
  for (const f of parts) out.set(f.data, f.offset);
  return out;
}

/** Counter deltas between two snapshots (only names that changed). */
export function counterDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const v = (after[k] ?? 0) - (before[k] ?? 0);
    if (v !== 0) d[k] = v;
  }
  return d;
}

/**
 * Checks that the counters moved as `expected` says for one packet; returns a description of the
 * mismatch or null. A drop is counted exactly once under its name and nothing went further; a
 * packet that went on bumped its stage counter (`tcp.rx`, `frag.received`) or some ICMP counter.
 */
export function checkFate(expected: Expected, d: Record<string, number>): string | null {
  if ((d['ip.rx'] ?? 0) !== 1) return `ip.rx moved by ${d['ip.rx'] ?? 0}`;
  const dropsMoved = DROP_COUNTERS.filter((k) => (d[k] ?? 0) !== 0);
  if (expected === 'icmp.ok') {
    if (dropsMoved.length > 0) return `expected the ICMP message to be handled, got ${dropsMoved.join(',')}`;
    if (!Object.keys(d).some((k) => k.startsWith('icmp.'))) return 'no icmp.* counter moved';
    return null;
  }
  if (expected === 'tcp.rx' || expected === 'frag.received') {
    if ((d[expected] ?? 0) !== 1) return `expected ${expected} +1, got ${JSON.stringify(d)}`;
    // A reassembled datagram goes on to the next layers, which may count their own drops.
    if (expected === 'tcp.rx' && dropsMoved.length > 0) return `tcp.rx and also ${dropsMoved.join(',')}`;
    return null;
  }
  if ((d[expected] ?? 0) !== 1) return `expected ${expected} +1, got ${JSON.stringify(d)}`;
  const others = dropsMoved.filter((k) => k !== expected);
  if (others.length > 0) return `${expected} and also ${others.join(',')}`;
  if ((d['tcp.rx'] ?? 0) !== 0) return `${expected} but tcp.rx moved`;
  return null;
}

// ---- reading what a host sends ----

export interface OutPacket {
  /** The packet as sent. */
  raw: Uint8Array;
  src: number;
  dst: number;
  protocol: number;
  /** TCP fields when protocol is TCP. */
  tcp?: { srcPort: number; dstPort: number; seq: number; ack: number; flags: number; window: number; payloadLength: number };
  /** ICMP type/code when protocol is ICMP. */
  icmp?: { type: number; code: number; body: Uint8Array };
}

/**
 * Checks one packet a host emitted with the independent code above: a well-formed IPv4 packet no
 * larger than `mtu`, correct header and transport checksums, sane lengths. Throws with the hex.
 */
export function checkOutPacket(p: Uint8Array, mtu: number, local: ReadonlySet<number>): OutPacket {
  const fail = (why: string): never => {
    throw new Error(`host emitted a bad packet (${why}): ${hex(p)}`);
  };
  if (p.length < 20 || p.length > mtu) fail(`length ${p.length}`);
  if (p[0]! >>> 4 !== 4) fail('version');
  const ihl = (p[0]! & 0x0f) * 4;
  if (ihl < 20 || ihl > p.length) fail('IHL');
  if (read16(p, 2) !== p.length) fail('total length');
  if (!checksumOk(p, 0, ihl)) fail('IP checksum');
  const src = read32(p, 12);
  const dst = read32(p, 16);
  if (!local.has(src)) fail('source is not ours');
  if (isMartian(dst)) fail('sent to a martian address');
  const frag = read16(p, 6);
  const body = p.subarray(ihl);
  const out: OutPacket = { raw: p, src, dst, protocol: p[9]! };
  if ((frag & 0x3fff) !== 0) return out;
  if (p[9] === IPPROTO_TCP) {
    if (body.length < 20) fail('TCP truncated');
    const hl = (body[12]! >>> 4) * 4;
    if (hl < 20 || hl > body.length) fail('TCP data offset');
    if (!checksumOk(body, 0, body.length, pseudo(src, dst, IPPROTO_TCP, body.length))) fail('TCP checksum');
    out.tcp = {
      srcPort: read16(body, 0),
      dstPort: read16(body, 2),
      seq: read32(body, 4),
      ack: read32(body, 8),
      flags: body[13]!,
      window: read16(body, 14),
      payloadLength: body.length - hl,
    };
  } else if (p[9] === IPPROTO_ICMP) {
    if (body.length < 8) fail('ICMP truncated');
    if (!checksumOk(body, 0, body.length)) fail('ICMP checksum');
    out.icmp = { type: body[0]!, code: body[1]!, body };
  }
  return out;
}
