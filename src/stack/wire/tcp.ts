// TCP segments (RFC 9293 section 3.1) and their options: parse in place, emit into one buffer.
//
// Layout, byte offsets: 0-1 source port | 2-3 destination port | 4-7 sequence | 8-11 ack |
// 12 data offset(4) reserved(4) | 13 flags (CWR ECE URG ACK PSH RST SYN FIN) | 14-15 window |
// 16-17 checksum | 18-19 urgent pointer | 20.. options, then data.

import { onesSum, foldSum, pseudoHeaderSum } from './checksum.js';
import { wireError, type WireError } from './errors.js';
import { IPV4_HEADER_LEN, writeIpv4Header } from './ipv4.js';
import { IPPROTO_TCP, TCP_SYN, type Ipv4Addr, type Ipv4Header, type SackBlock, type TcpOptions, type TcpSegment } from './types.js';

export const TCP_HEADER_LEN = 20;
/** Options fit in 40 bytes: the 4-bit data offset counts at most 15 words. */
export const TCP_MAX_OPTIONS_LEN = 40;

const OPT_EOL = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;
const OPT_WSCALE = 3;
const OPT_SACK_PERMITTED = 4;
const OPT_SACK = 5;
const OPT_TIMESTAMP = 8;

const LEN_MSS = 4;
const LEN_WSCALE = 3;
const LEN_SACK_PERMITTED = 2;
const LEN_TIMESTAMP = 10;
const LEN_SACK_BLOCK = 8;

/** RFC 7323 section 2.3: "the TCP ... MUST use 14 instead of the specified value". */
const MAX_WSCALE = 14;

export const TCP_ERRORS = {
  truncated: wireError('tcp.truncated'),
  badOffset: wireError('tcp.bad-data-offset'),
  badChecksum: wireError('tcp.bad-checksum'),
} as const;

/**
 * Parses a TCP segment (the IPv4 payload). `src`/`dst` are the IPv4 addresses, for the
 * pseudo-header; pass verifyChecksum=false when the link already validated it. Never throws.
 * The payload is a subarray of `bytes`: copy it if the buffer will be reused.
 */
export function parseTcp(bytes: Uint8Array, src: Ipv4Addr, dst: Ipv4Addr, verifyChecksum: boolean): TcpSegment | WireError {
  const len = bytes.length;
  if (len < TCP_HEADER_LEN) return TCP_ERRORS.truncated;
  const headerLength = (bytes[12]! >>> 4) * 4;
  // RFC 9293 3.1: Data Offset is "The number of 32-bit words in the TCP header"; a header is at
  // least 5 words and cannot extend past the segment.
  if (headerLength < TCP_HEADER_LEN || headerLength > len) return TCP_ERRORS.badOffset;
  if (verifyChecksum && foldSum(onesSum(bytes, 0, len, pseudoHeaderSum(src, dst, IPPROTO_TCP, len))) !== 0xffff) {
    return TCP_ERRORS.badChecksum;
  }
  const options: TcpOptions = {};
  if (headerLength > TCP_HEADER_LEN) parseTcpOptions(bytes, TCP_HEADER_LEN, headerLength, options);
  return {
    srcPort: (bytes[0]! << 8) | bytes[1]!,
    dstPort: (bytes[2]! << 8) | bytes[3]!,
    seq: ((bytes[4]! << 24) | (bytes[5]! << 16) | (bytes[6]! << 8) | bytes[7]!) >>> 0,
    ack: ((bytes[8]! << 24) | (bytes[9]! << 16) | (bytes[10]! << 8) | bytes[11]!) >>> 0,
    flags: bytes[13]!,
    window: (bytes[14]! << 8) | bytes[15]!,
    urgent: (bytes[18]! << 8) | bytes[19]!,
    options,
    payload: bytes.subarray(headerLength),
  };
}

function read32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/**
 * Reads the options in b[start, end) into `out`. Never throws.
 *
 * RFC 9293 section 3.1: "A TCP implementation MUST be able to receive a TCP Option in any segment
 * (MUST-4). A TCP implementation MUST (MUST-5) ignore without error any TCP Option it does not
 * implement, assuming that the option has a length field." -- unknown kinds are skipped by their
 * length.
 *
 * "TCP implementations MUST be prepared to handle an illegal option length (e.g., zero); a
 * suggested procedure is to reset the connection and log the error cause (MUST-7)." -- we do not
 * take the suggestion. A length below 2 or running past the header makes the rest of the option
 * area unreadable, so parsing stops there; the options read before it are kept and the segment is
 * still delivered (it must pass the sequence checks like any other). Resetting would hand anyone
 * able to garble one option a way to kill connections. A known option with the wrong fixed length
 * (MSS not 4, WS not 3, SACK-permitted not 2, TS not 10, SACK not 2+8n) is ignored and skipped by
 * its length. Linux (tcp_parse_options) and FreeBSD (tcp_dooptions) behave the same way. In every
 * case `out.malformed` is set so the host can count it.
 */
export function parseTcpOptions(b: Uint8Array, start: number, end: number, out: TcpOptions): void {
  let i = start;
  while (i < end) {
    const kind = b[i]!;
    if (kind === OPT_EOL) return;
    if (kind === OPT_NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) {
      out.malformed = true;
      return;
    }
    const olen = b[i + 1]!;
    if (olen < 2 || i + olen > end) {
      out.malformed = true;
      return;
    }
    switch (kind) {
      case OPT_MSS:
        if (olen === LEN_MSS) out.mss = (b[i + 2]! << 8) | b[i + 3]!;
        else out.malformed = true;
        break;
      case OPT_WSCALE:
        if (olen === LEN_WSCALE) out.wscale = Math.min(b[i + 2]!, MAX_WSCALE);
        else out.malformed = true;
        break;
      case OPT_SACK_PERMITTED:
        if (olen === LEN_SACK_PERMITTED) out.sackPermitted = true;
        else out.malformed = true;
        break;
      case OPT_TIMESTAMP:
        if (olen === LEN_TIMESTAMP) out.timestamp = { tsval: read32(b, i + 2), tsecr: read32(b, i + 6) };
        else out.malformed = true;
        break;
      case OPT_SACK: {
        // RFC 2018 section 3: "Length: Variable" -- 2 plus 8 per block; 40 bytes hold at most 4.
        const n = (olen - 2) / LEN_SACK_BLOCK;
        if (n >= 1 && n <= 4 && Number.isInteger(n)) {
          const blocks: SackBlock[] = [];
          for (let k = 0, at = i + 2; k < n; k++, at += LEN_SACK_BLOCK) {
            blocks.push({ left: read32(b, at), right: read32(b, at + 4) });
          }
          out.sack = blocks;
        } else {
          out.malformed = true;
        }
        break;
      }
      default:
        break;
    }
    i += olen;
  }
}

type Layout = 'linux' | 'freebsd';

/**
 * Lays the options out, writing them at buf[at] when buf is given, and returns their length,
 * padded to a multiple of 4. One function computes both so that the size a sender plans for is
 * exactly the size emitted.
 *
 * SACK blocks beyond what fits in the 40-byte option space are left out (the first blocks are
 * kept: RFC 2018 section 4 asks the first block to be the most recent one).
 */
function layoutOptions(o: TcpOptions, flags: number, buf: Uint8Array | null, at: number): number {
  const layout: Layout = o.layout ?? 'linux';
  return layout === 'freebsd' && (flags & TCP_SYN) !== 0
    ? layoutFreebsd(o, buf, at)
    : layoutLinux(o, buf, at);
}

function putNop(buf: Uint8Array | null, at: number, n: number): number {
  if (buf) for (let k = 0; k < n; k++) buf[at + k] = OPT_NOP;
  return n;
}

function putMss(buf: Uint8Array | null, at: number, mss: number): number {
  if (buf) {
    buf[at] = OPT_MSS;
    buf[at + 1] = LEN_MSS;
    buf[at + 2] = (mss >>> 8) & 0xff;
    buf[at + 3] = mss & 0xff;
  }
  return LEN_MSS;
}

function putWscale(buf: Uint8Array | null, at: number, shift: number): number {
  if (buf) {
    buf[at] = OPT_WSCALE;
    buf[at + 1] = LEN_WSCALE;
    buf[at + 2] = shift & 0xff;
  }
  return LEN_WSCALE;
}

function putSackPermitted(buf: Uint8Array | null, at: number): number {
  if (buf) {
    buf[at] = OPT_SACK_PERMITTED;
    buf[at + 1] = LEN_SACK_PERMITTED;
  }
  return LEN_SACK_PERMITTED;
}

function put32(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v >>> 24;
  buf[at + 1] = (v >>> 16) & 0xff;
  buf[at + 2] = (v >>> 8) & 0xff;
  buf[at + 3] = v & 0xff;
}

function putTimestamp(buf: Uint8Array | null, at: number, tsval: number, tsecr: number): number {
  if (buf) {
    buf[at] = OPT_TIMESTAMP;
    buf[at + 1] = LEN_TIMESTAMP;
    put32(buf, at + 2, tsval);
    put32(buf, at + 6, tsecr);
  }
  return LEN_TIMESTAMP;
}

/** Writes up to `room` bytes of SACK option; returns its length (0 when not even one block fits). */
function putSack(buf: Uint8Array | null, at: number, blocks: SackBlock[], room: number): number {
  const n = Math.min(blocks.length, 4, Math.floor((room - 2) / LEN_SACK_BLOCK));
  if (n <= 0) return 0;
  const len = 2 + n * LEN_SACK_BLOCK;
  if (buf) {
    buf[at] = OPT_SACK;
    buf[at + 1] = len;
    for (let k = 0; k < n; k++) {
      put32(buf, at + 2 + k * LEN_SACK_BLOCK, blocks[k]!.left);
      put32(buf, at + 6 + k * LEN_SACK_BLOCK, blocks[k]!.right);
    }
  }
  return len;
}

/** Pads with EOL (zero) bytes to a multiple of 4, RFC 9293 3.1: "The TCP header padding is
 * used to ensure that the TCP header ends ... on a 32-bit boundary. The padding is composed of
 * zeros." */
function padEol(buf: Uint8Array | null, at: number, len: number): number {
  let n = len;
  while (n % 4 !== 0) {
    if (buf) buf[at + n] = OPT_EOL;
    n++;
  }
  return n;
}

/**
 * Linux's layout (tcp_options_write): SYNs carry `mss,sackOK,TS,nop,wscale` (with `nop,nop,TS`
 * when SACK is off, `nop,nop,sackOK` when timestamps are off); other segments `nop,nop,TS` then
 * `nop,nop,sack`. Every option is aligned on its own so no trailing padding is ever needed.
 */
function layoutLinux(o: TcpOptions, buf: Uint8Array | null, at: number): number {
  let n = 0;
  if (o.mss !== undefined) n += putMss(buf, at + n, o.mss);
  if (o.timestamp) {
    if (o.sackPermitted) n += putSackPermitted(buf, at + n);
    else n += putNop(buf, at + n, 2);
    n += putTimestamp(buf, at + n, o.timestamp.tsval, o.timestamp.tsecr);
  } else if (o.sackPermitted) {
    n += putNop(buf, at + n, 2);
    n += putSackPermitted(buf, at + n);
  }
  if (o.wscale !== undefined) {
    n += putNop(buf, at + n, 1);
    n += putWscale(buf, at + n, o.wscale);
  }
  if (o.sack && o.sack.length > 0 && TCP_MAX_OPTIONS_LEN - n >= 2 + 2 + LEN_SACK_BLOCK) {
    n += putNop(buf, at + n, 2);
    n += putSack(buf, at + n, o.sack, TCP_MAX_OPTIONS_LEN - n);
  }
  return padEol(buf, at, n);
}

/**
 * FreeBSD's layout (tcp_addoptions), which the conformance scripts expect byte for byte. Options
 * go in the order MSS, window scale, SACK-permitted, timestamps, SACK, each preceded by just
 * enough NOPs for its alignment rule, and the list is closed with EOL padding. This yields
 * `mss,nop,wscale,sackOK,TS`, `mss,nop,wscale,nop,nop,TS` without SACK, `mss,sackOK,eol,eol`
 * without window scale and timestamps; and `nop,nop,TS,nop,nop,sack` on other segments, the
 * same bytes as the Linux layout there.
 */
function layoutFreebsd(o: TcpOptions, buf: Uint8Array | null, at: number): number {
  let n = 0;
  if (o.mss !== undefined) {
    while (n % 4 !== 0) n += putNop(buf, at + n, 1);
    n += putMss(buf, at + n, o.mss);
  }
  if (o.wscale !== undefined) {
    while (n === 0 || n % 2 !== 1) n += putNop(buf, at + n, 1);
    n += putWscale(buf, at + n, o.wscale);
  }
  if (o.sackPermitted) {
    while (n % 2 !== 0) n += putNop(buf, at + n, 1);
    n += putSackPermitted(buf, at + n);
  }
  if (o.timestamp) {
    while (n === 0 || n % 4 !== 2) n += putNop(buf, at + n, 1);
    n += putTimestamp(buf, at + n, o.timestamp.tsval, o.timestamp.tsecr);
  }
  if (o.sack && o.sack.length > 0) {
    let pad = 0;
    while ((n + pad === 0 || (n + pad) % 4 !== 2)) pad++;
    if (TCP_MAX_OPTIONS_LEN - n - pad >= 2 + LEN_SACK_BLOCK) {
      n += putNop(buf, at + n, pad);
      n += putSack(buf, at + n, o.sack, TCP_MAX_OPTIONS_LEN - n);
    }
  }
  return padEol(buf, at, n);
}

/**
 * Bytes of options (padding included) that `options` take on a segment with these flags. A
 * sender sizes its payload as `effective MSS - tcpOptionsLength(...)`.
 */
export function tcpOptionsLength(options: TcpOptions, flags: number): number {
  return layoutOptions(options, flags, null, 0);
}

/** TCP header plus options plus payload. */
export function tcpSegmentLength(seg: TcpSegment): number {
  return TCP_HEADER_LEN + tcpOptionsLength(seg.options, seg.flags) + seg.payload.length;
}

export interface TcpEmitOptions {
  /**
   * Leave the checksum to the link (virtio-net NEEDS_CSUM / Linux CHECKSUM_PARTIAL): the field
   * holds the folded pseudo-header sum, not complemented, and the payload is not summed.
   */
  checksumOffload?: boolean;
}

/**
 * Writes the whole segment (header, options, payload, checksum) at buf[at]; returns its length.
 * The buffer must have room for tcpSegmentLength(seg) bytes.
 */
export function writeTcp(
  buf: Uint8Array,
  at: number,
  seg: TcpSegment,
  src: Ipv4Addr,
  dst: Ipv4Addr,
  opts?: TcpEmitOptions,
): number {
  const optLen = layoutOptions(seg.options, seg.flags, buf, at + TCP_HEADER_LEN);
  const headerLength = TCP_HEADER_LEN + optLen;
  const len = headerLength + seg.payload.length;
  buf[at] = (seg.srcPort >>> 8) & 0xff;
  buf[at + 1] = seg.srcPort & 0xff;
  buf[at + 2] = (seg.dstPort >>> 8) & 0xff;
  buf[at + 3] = seg.dstPort & 0xff;
  put32(buf, at + 4, seg.seq);
  put32(buf, at + 8, seg.ack);
  buf[at + 12] = (headerLength / 4) << 4;
  buf[at + 13] = seg.flags & 0xff;
  buf[at + 14] = (seg.window >>> 8) & 0xff;
  buf[at + 15] = seg.window & 0xff;
  buf[at + 16] = 0;
  buf[at + 17] = 0;
  buf[at + 18] = (seg.urgent >>> 8) & 0xff;
  buf[at + 19] = seg.urgent & 0xff;
  if (seg.payload.length > 0) buf.set(seg.payload, at + headerLength);
  const pseudo = pseudoHeaderSum(src, dst, IPPROTO_TCP, len);
  const ck = opts?.checksumOffload ? foldSum(pseudo) : ~foldSum(onesSum(buf, at, at + len, pseudo)) & 0xffff;
  buf[at + 16] = ck >>> 8;
  buf[at + 17] = ck & 0xff;
  return len;
}

/** The TCP segment alone (no IP header), in a new buffer. */
export function emitTcp(seg: TcpSegment, src: Ipv4Addr, dst: Ipv4Addr, opts?: TcpEmitOptions): Uint8Array {
  const buf = new Uint8Array(tcpSegmentLength(seg));
  writeTcp(buf, 0, seg, src, dst, opts);
  return buf;
}

/** Total IPv4 packet length for this segment. */
export function tcpIpv4PacketLength(seg: TcpSegment): number {
  return IPV4_HEADER_LEN + tcpSegmentLength(seg);
}

/**
 * Writes IPv4 header + TCP segment at buf[at] (e.g. after a virtio-net header); returns the
 * packet length. The IP protocol field is always TCP, whatever `ip.protocol` says.
 */
export function writeTcpIpv4(buf: Uint8Array, at: number, ip: Ipv4Header, seg: TcpSegment, opts?: TcpEmitOptions): number {
  const tcpLen = writeTcp(buf, at + IPV4_HEADER_LEN, seg, ip.src, ip.dst, opts);
  const total = IPV4_HEADER_LEN + tcpLen;
  writeIpv4Header(buf, at, ip, total, undefined, IPPROTO_TCP);
  return total;
}

/** A complete IPv4 packet carrying `seg`, both checksums filled in: one allocation. */
export function emitTcpIpv4(ip: Ipv4Header, seg: TcpSegment, opts?: TcpEmitOptions): Uint8Array {
  const buf = new Uint8Array(tcpIpv4PacketLength(seg));
  writeTcpIpv4(buf, 0, ip, seg, opts);
  return buf;
}
