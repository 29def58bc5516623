// The runner's own IPv4/TCP/ICMP codec. It is deliberately independent of src/stack/wire: the
// scripts fix the exact option bytes (order, NOP and EOL padding), which a semantic parser throws
// away, and an independent encoder also cross-checks the stack's wire code.

import type { Ipv4Addr } from '../stack/wire/types.js';

export type RawTcpOption =
  | { kind: 'nop' }
  | { kind: 'eol' }
  | { kind: 'mss'; value: number }
  | { kind: 'wscale'; value: number }
  | { kind: 'sackOK' }
  | { kind: 'sack'; blocks: Array<{ left: number; right: number }> }
  | { kind: 'TS'; val: number; ecr: number }
  | { kind: 'unknown'; type: number; data: Uint8Array };

export interface RawTcp {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** The 8 flag bits (CWR ECE URG ACK PSH RST SYN FIN). */
  flags: number;
  window: number;
  urgent: number;
  options: RawTcpOption[];
  payload: Uint8Array;
  checksumOk: boolean;
}

export interface RawIcmp {
  type: number;
  code: number;
}

export interface RawPacket {
  src: Ipv4Addr;
  dst: Ipv4Addr;
  protocol: number;
  /** The two ECN bits of the TOS byte. */
  ecn: number;
  ttl: number;
  /** IP header length in bytes: 20 unless the packet carries IP options. */
  ipHeaderLength: number;
  ipChecksumOk: boolean;
  tcp?: RawTcp;
  icmp?: RawIcmp;
}

export const FLAG = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 } as const;

function internetChecksum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length % 2 === 1) sum += bytes[bytes.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function pseudoHeaderSum(src: Ipv4Addr, dst: Ipv4Addr, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}

export function encodeTcpOptions(options: readonly RawTcpOption[]): Uint8Array {
  const out: number[] = [];
  for (const o of options) {
    switch (o.kind) {
      case 'nop':
        out.push(1);
        break;
      case 'eol':
        out.push(0);
        break;
      case 'mss':
        out.push(2, 4, (o.value >>> 8) & 255, o.value & 255);
        break;
      case 'wscale':
        out.push(3, 3, o.value & 255);
        break;
      case 'sackOK':
        out.push(4, 2);
        break;
      case 'sack':
        out.push(5, 2 + 8 * o.blocks.length);
        for (const b of o.blocks) out.push(...be32(b.left), ...be32(b.right));
        break;
      case 'TS':
        out.push(8, 10, ...be32(o.val), ...be32(o.ecr));
        break;
      case 'unknown':
        out.push(o.type, 2 + o.data.length, ...o.data);
        break;
    }
  }
  // A script's option list need not end on a 4-byte boundary; the header length must.
  while (out.length % 4 !== 0) out.push(0);
  return Uint8Array.from(out);
}

function be32(v: number): number[] {
  return [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
}

function writeIpv4Header(
  buf: Uint8Array,
  p: { src: Ipv4Addr; dst: Ipv4Addr; protocol: number; totalLength: number; ecn: number; ttl: number },
): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  dv.setUint8(0, 0x45);
  dv.setUint8(1, p.ecn & 3);
  dv.setUint16(2, p.totalLength);
  dv.setUint16(4, 0);
  dv.setUint16(6, 0x4000); // DF
  dv.setUint8(8, p.ttl);
  dv.setUint8(9, p.protocol);
  dv.setUint16(10, 0);
  dv.setUint32(12, p.src >>> 0);
  dv.setUint32(16, p.dst >>> 0);
  dv.setUint16(10, ~internetChecksum(buf.subarray(0, 20)) & 0xffff);
}

export interface TcpPacketFields {
  src: Ipv4Addr;
  dst: Ipv4Addr;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  options: readonly RawTcpOption[];
  payload: Uint8Array;
  ecn?: number;
}

export function encodeTcpPacket(f: TcpPacketFields): Uint8Array {
  const opts = encodeTcpOptions(f.options);
  const tcpLen = 20 + opts.length + f.payload.length;
  const buf = new Uint8Array(20 + tcpLen);
  writeIpv4Header(buf, { src: f.src, dst: f.dst, protocol: 6, totalLength: buf.length, ecn: f.ecn ?? 0, ttl: 64 });
  const tcp = buf.subarray(20);
  const dv = new DataView(tcp.buffer, tcp.byteOffset, tcp.byteLength);
  dv.setUint16(0, f.srcPort);
  dv.setUint16(2, f.dstPort);
  dv.setUint32(4, f.seq >>> 0);
  dv.setUint32(8, f.ack >>> 0);
  dv.setUint8(12, ((20 + opts.length) / 4) << 4);
  dv.setUint8(13, f.flags & 0xff);
  dv.setUint16(14, f.window & 0xffff);
  tcp.set(opts, 20);
  tcp.set(f.payload, 20 + opts.length);
  const sum = internetChecksum(tcp, pseudoHeaderSum(f.src, f.dst, 6, tcpLen));
  dv.setUint16(16, ~sum & 0xffff);
  return buf;
}

export interface IcmpErrorFields {
  src: Ipv4Addr;
  dst: Ipv4Addr;
  type: number;
  code: number;
  /** Next-hop MTU for fragmentation needed (type 3 code 4). */
  mtu?: number;
  /** The quoted datagram: our own TCP segment as it went out (local -> remote). */
  quoted: { src: Ipv4Addr; dst: Ipv4Addr; srcPort: number; dstPort: number; seq: number };
}

/** An ICMP error quoting the IP header and the first 8 bytes of a TCP segment (RFC 792). */
export function encodeIcmpError(f: IcmpErrorFields): Uint8Array {
  const quotedTcp = new Uint8Array(8);
  const qdv = new DataView(quotedTcp.buffer);
  qdv.setUint16(0, f.quoted.srcPort);
  qdv.setUint16(2, f.quoted.dstPort);
  qdv.setUint32(4, f.quoted.seq >>> 0);
  const icmpLen = 8 + 20 + quotedTcp.length;
  const buf = new Uint8Array(20 + icmpLen);
  writeIpv4Header(buf, { src: f.src, dst: f.dst, protocol: 1, totalLength: buf.length, ecn: 0, ttl: 64 });
  const icmp = buf.subarray(20);
  const dv = new DataView(icmp.buffer, icmp.byteOffset, icmp.byteLength);
  dv.setUint8(0, f.type);
  dv.setUint8(1, f.code);
  if (f.mtu !== undefined) dv.setUint16(6, f.mtu);
  // The quoted header claims the original length: 20 bytes of IP and a 20-byte TCP header.
  writeIpv4Header(icmp.subarray(8, 28), {
    src: f.quoted.src,
    dst: f.quoted.dst,
    protocol: 6,
    totalLength: 40,
    ecn: 0,
    ttl: 64,
  });
  icmp.set(quotedTcp, 28);
  dv.setUint16(2, ~internetChecksum(icmp) & 0xffff);
  return buf;
}

export class DecodeError extends Error {}

/** Decodes an IPv4 packet the stack emitted. Throws DecodeError on malformed input. */
export function decodePacket(bytes: Uint8Array): RawPacket {
  if (bytes.length < 20) throw new DecodeError(`packet of ${bytes.length} bytes is shorter than an IPv4 header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const vihl = dv.getUint8(0);
  if (vihl >> 4 !== 4) throw new DecodeError(`IP version ${vihl >> 4}`);
  const ihl = (vihl & 15) * 4;
  const total = dv.getUint16(2);
  if (ihl < 20 || total < ihl || total > bytes.length) throw new DecodeError(`bad IP lengths (ihl ${ihl}, total ${total})`);
  const pkt: RawPacket = {
    src: dv.getUint32(12),
    dst: dv.getUint32(16),
    protocol: dv.getUint8(9),
    ecn: dv.getUint8(1) & 3,
    ttl: dv.getUint8(8),
    ipHeaderLength: ihl,
    ipChecksumOk: internetChecksum(bytes.subarray(0, ihl)) === 0xffff,
  };
  const body = bytes.subarray(ihl, total);
  if (pkt.protocol === 6) pkt.tcp = decodeTcp(body, pkt.src, pkt.dst);
  else if (pkt.protocol === 1 && body.length >= 4) pkt.icmp = { type: body[0]!, code: body[1]! };
  return pkt;
}

function decodeTcp(seg: Uint8Array, src: Ipv4Addr, dst: Ipv4Addr): RawTcp {
  if (seg.length < 20) throw new DecodeError(`TCP segment of ${seg.length} bytes`);
  const dv = new DataView(seg.buffer, seg.byteOffset, seg.byteLength);
  const doff = (dv.getUint8(12) >> 4) * 4;
  if (doff < 20 || doff > seg.length) throw new DecodeError(`bad TCP data offset ${doff}`);
  return {
    srcPort: dv.getUint16(0),
    dstPort: dv.getUint16(2),
    seq: dv.getUint32(4),
    ack: dv.getUint32(8),
    flags: dv.getUint8(13),
    window: dv.getUint16(14),
    urgent: dv.getUint16(18),
    options: decodeTcpOptions(seg.subarray(20, doff)),
    payload: seg.subarray(doff),
    checksumOk: internetChecksum(seg, pseudoHeaderSum(src, dst, 6, seg.length)) === 0xffff,
  };
}

/** Every option byte is kept, NOP and EOL included; bytes after an EOL are reported as EOLs. */
export function decodeTcpOptions(b: Uint8Array): RawTcpOption[] {
  const out: RawTcpOption[] = [];
  let i = 0;
  while (i < b.length) {
    const kind = b[i]!;
    if (kind === 0) {
      out.push({ kind: 'eol' });
      i++;
      continue;
    }
    if (kind === 1) {
      out.push({ kind: 'nop' });
      i++;
      continue;
    }
    const len = b[i + 1];
    if (len === undefined || len < 2 || i + len > b.length) throw new DecodeError(`bad length of TCP option ${kind}`);
    const d = b.subarray(i + 2, i + len);
    const u32 = (o: number): number => ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
    if (kind === 2 && len === 4) out.push({ kind: 'mss', value: (d[0]! << 8) | d[1]! });
    else if (kind === 3 && len === 3) out.push({ kind: 'wscale', value: d[0]! });
    else if (kind === 4 && len === 2) out.push({ kind: 'sackOK' });
    else if (kind === 5 && (len - 2) % 8 === 0) {
      const blocks: Array<{ left: number; right: number }> = [];
      for (let o = 0; o < d.length; o += 8) blocks.push({ left: u32(o), right: u32(o + 4) });
      out.push({ kind: 'sack', blocks });
    } else if (kind === 8 && len === 10) out.push({ kind: 'TS', val: u32(0), ecr: u32(4) });
    else out.push({ kind: 'unknown', type: kind, data: d.slice() });
    i += len;
  }
  return out;
}
