// IPv4 (RFC 791): parse a packet in place, write a header into a caller's buffer.
//
// Layout (RFC 791 section 3.1), byte offsets:
//   0 version(4) IHL(4) | 1 TOS | 2-3 total length | 4-5 identification | 6-7 flags(3) offset(13)
//   8 TTL | 9 protocol | 10-11 header checksum | 12-15 source | 16-19 destination | 20.. options

import { onesSum, foldSum, finishChecksum } from './checksum.js';
import { wireError, type WireError } from './errors.js';
import type { Ipv4Addr, Ipv4Header } from './types.js';

export const IPV4_HEADER_LEN = 20;
export const IPV4_MAX_PACKET = 65535;

const FLAG_DF = 0x4000;
const FLAG_MF = 0x2000;
const OFFSET_MASK = 0x1fff;

/** An IPv4 packet as parsed: the header, the payload as a view into the input, fragment fields. */
export interface Ipv4Packet {
  header: Ipv4Header;
  /** Bytes after the header up to the total length (a subarray of the input, not a copy). */
  payload: Uint8Array;
  /** IHL * 4: 20 plus any options, which are skipped. */
  headerLength: number;
  /** Fragment offset in bytes (the 13-bit field times 8). */
  fragmentOffset: number;
  moreFragments: boolean;
}

export interface Ipv4ParseOptions {
  /** false when the link already validated the header checksum (e.g. virtio-net DATA_VALID). */
  verifyChecksum?: boolean;
}

export const IPV4_ERRORS = {
  truncated: wireError('ip.truncated'),
  badVersion: wireError('ip.bad-version'),
  badIhl: wireError('ip.bad-ihl'),
  badLength: wireError('ip.bad-length'),
  badChecksum: wireError('ip.bad-checksum'),
  badFragment: wireError('ip.bad-fragment'),
} as const;

export function readAddr(b: Uint8Array, at: number): Ipv4Addr {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

export function writeAddr(b: Uint8Array, at: number, a: Ipv4Addr): void {
  b[at] = a >>> 24;
  b[at + 1] = (a >>> 16) & 0xff;
  b[at + 2] = (a >>> 8) & 0xff;
  b[at + 3] = a & 0xff;
}

/**
 * Parses an IPv4 packet. Never throws: every malformed input gives a WireError.
 * A buffer longer than the total length (link padding, e.g. Ethernet minimum frames) is trimmed;
 * a shorter one is `ip.truncated`.
 */
export function parseIpv4(bytes: Uint8Array, opts?: Ipv4ParseOptions): Ipv4Packet | WireError {
  const len = bytes.length;
  if (len < IPV4_HEADER_LEN) return IPV4_ERRORS.truncated;
  const vihl = bytes[0]!;
  if (vihl >>> 4 !== 4) return IPV4_ERRORS.badVersion;
  // RFC 791: "the minimum value for a correct header is 5".
  const headerLength = (vihl & 0x0f) * 4;
  if (headerLength < IPV4_HEADER_LEN) return IPV4_ERRORS.badIhl;
  if (headerLength > len) return IPV4_ERRORS.truncated;
  const totalLength = (bytes[2]! << 8) | bytes[3]!;
  if (totalLength < headerLength) return IPV4_ERRORS.badLength;
  if (totalLength > len) return IPV4_ERRORS.truncated;
  if (opts?.verifyChecksum !== false && foldSum(onesSum(bytes, 0, headerLength)) !== 0xffff) {
    return IPV4_ERRORS.badChecksum;
  }
  const fragField = (bytes[6]! << 8) | bytes[7]!;
  const fragmentOffset = (fragField & OFFSET_MASK) * 8;
  // A fragment that would end past the largest possible datagram cannot be reassembled
  // (the "ping of death"); refuse it here so no later stage has to think about it.
  if (fragmentOffset + (totalLength - headerLength) > IPV4_MAX_PACKET - IPV4_HEADER_LEN) {
    return IPV4_ERRORS.badFragment;
  }
  return {
    header: {
      src: readAddr(bytes, 12),
      dst: readAddr(bytes, 16),
      protocol: bytes[9]!,
      ttl: bytes[8]!,
      tos: bytes[1]!,
      id: (bytes[4]! << 8) | bytes[5]!,
      df: (fragField & FLAG_DF) !== 0,
    },
    payload: bytes.subarray(headerLength, totalLength),
    headerLength,
    fragmentOffset,
    moreFragments: (fragField & FLAG_MF) !== 0,
  };
}

/** Fragment fields for writeIpv4Header; omitted means an unfragmented packet. */
export interface Ipv4FragmentFields {
  /** In bytes; must be a multiple of 8. */
  fragmentOffset: number;
  moreFragments: boolean;
}

/**
 * Writes a 20-byte IPv4 header (no options) with its checksum at buf[at]. `totalLength` counts
 * the header and the payload that the caller writes after it.
 */
export function writeIpv4Header(
  buf: Uint8Array,
  at: number,
  h: Ipv4Header,
  totalLength: number,
  frag?: Ipv4FragmentFields,
  protocol: number = h.protocol,
): void {
  if (totalLength > IPV4_MAX_PACKET || totalLength < IPV4_HEADER_LEN) {
    throw new RangeError(`IPv4 total length ${totalLength} out of range`);
  }
  let fragField = h.df ? FLAG_DF : 0;
  if (frag) {
    fragField |= (frag.fragmentOffset >>> 3) & OFFSET_MASK;
    if (frag.moreFragments) fragField |= FLAG_MF;
  }
  buf[at] = 0x45;
  buf[at + 1] = h.tos & 0xff;
  buf[at + 2] = totalLength >>> 8;
  buf[at + 3] = totalLength & 0xff;
  buf[at + 4] = (h.id >>> 8) & 0xff;
  buf[at + 5] = h.id & 0xff;
  buf[at + 6] = fragField >>> 8;
  buf[at + 7] = fragField & 0xff;
  buf[at + 8] = h.ttl & 0xff;
  buf[at + 9] = protocol & 0xff;
  buf[at + 10] = 0;
  buf[at + 11] = 0;
  writeAddr(buf, at + 12, h.src);
  writeAddr(buf, at + 16, h.dst);
  const ck = finishChecksum(onesSum(buf, at, at + IPV4_HEADER_LEN));
  buf[at + 10] = ck >>> 8;
  buf[at + 11] = ck & 0xff;
}

/** One allocation: a 20-byte header followed by a copy of `payload`. */
export function emitIpv4(h: Ipv4Header, payload: Uint8Array, frag?: Ipv4FragmentFields): Uint8Array {
  const total = IPV4_HEADER_LEN + payload.length;
  const buf = new Uint8Array(total);
  writeIpv4Header(buf, 0, h, total, frag);
  buf.set(payload, IPV4_HEADER_LEN);
  return buf;
}

/**
 * Splits a datagram (header fields plus payload) into packets that fit `mtu`, per RFC 791
 * section 3.2 ("the data is divided at an 8-octet boundary"). Returns one packet when it fits.
 * Throws when the header has DF set and the payload does not fit: the caller must send an ICMP
 * frag-needed (or lower its MSS) instead.
 */
export function fragmentIpv4(h: Ipv4Header, payload: Uint8Array, mtu: number): Uint8Array[] {
  if (IPV4_HEADER_LEN + payload.length <= mtu) return [emitIpv4(h, payload)];
  if (h.df) throw new RangeError('datagram with DF set does not fit the MTU');
  const chunk = (mtu - IPV4_HEADER_LEN) & ~7;
  if (chunk <= 0) throw new RangeError(`MTU ${mtu} too small to fragment`);
  const out: Uint8Array[] = [];
  for (let off = 0; off < payload.length; off += chunk) {
    const end = Math.min(off + chunk, payload.length);
    out.push(emitIpv4(h, payload.subarray(off, end), { fragmentOffset: off, moreFragments: end < payload.length }));
  }
  return out;
}
