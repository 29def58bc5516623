// ICMP for IPv4 (RFC 792): echo, and the errors a TCP host acts on (destination unreachable,
// including fragmentation-needed with the next-hop MTU of RFC 1191, time exceeded, parameter
// problem). Errors carry a parsed view of the quoted packet so the host can find the connection.

import { onesSum, foldSum, finishChecksum } from './checksum.js';
import { wireError, type WireError } from './errors.js';
import { IPV4_HEADER_LEN, readAddr, writeIpv4Header } from './ipv4.js';
import { IPPROTO_ICMP, type Ipv4Header } from './types.js';

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAMETER_PROBLEM = 12;

/** Destination-unreachable codes (RFC 792, RFC 1122 3.2.2.1, RFC 1812 5.2.7.1). */
export const ICMP_UNREACH_NET = 0;
export const ICMP_UNREACH_HOST = 1;
export const ICMP_UNREACH_PROTOCOL = 2;
export const ICMP_UNREACH_PORT = 3;
export const ICMP_UNREACH_FRAG_NEEDED = 4;
export const ICMP_UNREACH_ADMIN_PROHIBITED = 13;

/** Time-exceeded codes. */
export const ICMP_TIME_EXCEEDED_TTL = 0;
export const ICMP_TIME_EXCEEDED_REASSEMBLY = 1;

const ICMP_HEADER_LEN = 8;
/** RFC 792: the error carries "Internet Header + 64 bits of Original Data Datagram". */
const QUOTED_TRANSPORT_LEN = 8;
/**
 * RFC 1812 4.3.2.3: "the ICMP datagram SHOULD contain as much of the original datagram as
 * possible without the length of the ICMP datagram exceeding 576 bytes."
 */
const ICMP_ERROR_MAX_PACKET = 576;

/** The packet an ICMP error quotes: its IP header and the first 8 bytes of its transport header. */
export interface IcmpQuote {
  header: Ipv4Header;
  /** Fragment offset (bytes) of the quoted packet: a non-zero offset quotes no transport header. */
  fragmentOffset: number;
  /** Bytes 0-1 of the quoted transport header: the TCP/UDP source port. */
  srcPort: number;
  /** Bytes 2-3: the destination port. */
  dstPort: number;
  /** Bytes 4-7: the TCP sequence number (meaningless for other protocols). */
  seq: number;
  /** All quoted bytes, from the quoted IP header on (a view into the input). */
  bytes: Uint8Array;
}

export type IcmpMessage =
  | { kind: 'echo-request' | 'echo-reply'; id: number; sequence: number; data: Uint8Array }
  | {
      kind: 'dest-unreachable';
      code: number;
      /** RFC 1191 next-hop MTU for code 4 (0 from routers that predate it); 0 otherwise. */
      mtu: number;
      quote: IcmpQuote;
    }
  | { kind: 'time-exceeded'; code: number; quote: IcmpQuote }
  | { kind: 'parameter-problem'; code: number; pointer: number; quote: IcmpQuote }
  /** Any other type: `rest` is bytes 4-7 of the header, `data` what follows. */
  | { kind: 'other'; type: number; code: number; rest: number; data: Uint8Array };

export const ICMP_ERRORS = {
  truncated: wireError('icmp.truncated'),
  badChecksum: wireError('icmp.bad-checksum'),
  badQuote: wireError('icmp.bad-quote'),
} as const;

/**
 * Reads the quoted packet of an error message. The quoted total length is not checked against the
 * bytes present (the quote is a prefix by design), nor its checksum (a router may have changed
 * the TTL before quoting it: RFC 1812 4.3.2.3).
 */
function parseQuote(b: Uint8Array): IcmpQuote | WireError {
  if (b.length < IPV4_HEADER_LEN) return ICMP_ERRORS.badQuote;
  const vihl = b[0]!;
  const headerLength = (vihl & 0x0f) * 4;
  if (vihl >>> 4 !== 4 || headerLength < IPV4_HEADER_LEN) return ICMP_ERRORS.badQuote;
  if (b.length < headerLength + QUOTED_TRANSPORT_LEN) return ICMP_ERRORS.badQuote;
  const fragField = (b[6]! << 8) | b[7]!;
  const t = headerLength;
  return {
    header: {
      src: readAddr(b, 12),
      dst: readAddr(b, 16),
      protocol: b[9]!,
      ttl: b[8]!,
      tos: b[1]!,
      id: (b[4]! << 8) | b[5]!,
      df: (fragField & 0x4000) !== 0,
    },
    fragmentOffset: (fragField & 0x1fff) * 8,
    srcPort: (b[t]! << 8) | b[t + 1]!,
    dstPort: (b[t + 2]! << 8) | b[t + 3]!,
    seq: readAddr(b, t + 4),
    bytes: b,
  };
}

/** Parses an ICMP message (the IPv4 payload). Never throws. */
export function parseIcmp(bytes: Uint8Array, verifyChecksum: boolean): IcmpMessage | WireError {
  const len = bytes.length;
  if (len < ICMP_HEADER_LEN) return ICMP_ERRORS.truncated;
  if (verifyChecksum && foldSum(onesSum(bytes, 0, len)) !== 0xffff) return ICMP_ERRORS.badChecksum;
  const type = bytes[0]!;
  const code = bytes[1]!;
  const body = bytes.subarray(ICMP_HEADER_LEN);
  switch (type) {
    case ICMP_ECHO_REQUEST:
    case ICMP_ECHO_REPLY:
      return {
        kind: type === ICMP_ECHO_REQUEST ? 'echo-request' : 'echo-reply',
        id: (bytes[4]! << 8) | bytes[5]!,
        sequence: (bytes[6]! << 8) | bytes[7]!,
        data: body,
      };
    case ICMP_DEST_UNREACHABLE: {
      const quote = parseQuote(body);
      if ('error' in quote) return quote;
      // RFC 1191 section 4: "The Next-Hop MTU field is carried in the low-order 16 bits of the
      // ICMP header field that is unused in the current specification".
      const mtu = code === ICMP_UNREACH_FRAG_NEEDED ? (bytes[6]! << 8) | bytes[7]! : 0;
      return { kind: 'dest-unreachable', code, mtu, quote };
    }
    case ICMP_TIME_EXCEEDED: {
      const quote = parseQuote(body);
      if ('error' in quote) return quote;
      return { kind: 'time-exceeded', code, quote };
    }
    case ICMP_PARAMETER_PROBLEM: {
      const quote = parseQuote(body);
      if ('error' in quote) return quote;
      return { kind: 'parameter-problem', code, pointer: bytes[4]!, quote };
    }
    default:
      return { kind: 'other', type, code, rest: readAddr(bytes, 4), data: body };
  }
}

function bodyOf(msg: IcmpMessage): Uint8Array {
  switch (msg.kind) {
    case 'echo-request':
    case 'echo-reply':
    case 'other':
      return msg.data;
    default:
      return msg.quote.bytes;
  }
}

/** Length of the ICMP message (header + body) writeIcmp produces. */
export function icmpMessageLength(msg: IcmpMessage): number {
  return ICMP_HEADER_LEN + bodyOf(msg).length;
}

/** Writes the message with its checksum at buf[at]; returns its length. */
export function writeIcmp(buf: Uint8Array, at: number, msg: IcmpMessage): number {
  let type: number;
  let code = 0;
  let rest = 0;
  switch (msg.kind) {
    case 'echo-request':
    case 'echo-reply':
      type = msg.kind === 'echo-request' ? ICMP_ECHO_REQUEST : ICMP_ECHO_REPLY;
      rest = (((msg.id & 0xffff) << 16) | (msg.sequence & 0xffff)) >>> 0;
      break;
    case 'dest-unreachable':
      type = ICMP_DEST_UNREACHABLE;
      code = msg.code;
      rest = msg.code === ICMP_UNREACH_FRAG_NEEDED ? msg.mtu & 0xffff : 0;
      break;
    case 'time-exceeded':
      type = ICMP_TIME_EXCEEDED;
      code = msg.code;
      break;
    case 'parameter-problem':
      type = ICMP_PARAMETER_PROBLEM;
      code = msg.code;
      rest = ((msg.pointer & 0xff) << 24) >>> 0;
      break;
    case 'other':
      type = msg.type;
      code = msg.code;
      rest = msg.rest >>> 0;
      break;
  }
  const body = bodyOf(msg);
  const len = ICMP_HEADER_LEN + body.length;
  buf[at] = type & 0xff;
  buf[at + 1] = code & 0xff;
  buf[at + 2] = 0;
  buf[at + 3] = 0;
  buf[at + 4] = rest >>> 24;
  buf[at + 5] = (rest >>> 16) & 0xff;
  buf[at + 6] = (rest >>> 8) & 0xff;
  buf[at + 7] = rest & 0xff;
  buf.set(body, at + ICMP_HEADER_LEN);
  const ck = finishChecksum(onesSum(buf, at, at + len));
  buf[at + 2] = ck >>> 8;
  buf[at + 3] = ck & 0xff;
  return len;
}

/** The message alone (no IP header). */
export function emitIcmp(msg: IcmpMessage): Uint8Array {
  const buf = new Uint8Array(icmpMessageLength(msg));
  writeIcmp(buf, 0, msg);
  return buf;
}

/** IPv4 header + ICMP message in one allocation; the protocol field is always ICMP. */
export function emitIcmpIpv4(ip: Ipv4Header, msg: IcmpMessage): Uint8Array {
  const total = IPV4_HEADER_LEN + icmpMessageLength(msg);
  const buf = new Uint8Array(total);
  writeIcmp(buf, IPV4_HEADER_LEN, msg);
  writeIpv4Header(buf, 0, ip, total, undefined, IPPROTO_ICMP);
  return buf;
}

function isMulticastOrReserved(a: number): boolean {
  // 224.0.0.0/4 multicast and 240.0.0.0/4 class E (which includes 255.255.255.255).
  return a >>> 28 >= 0xe;
}

/**
 * Whether an ICMP error may be sent about `packet` (a whole IPv4 packet), per RFC 1122 3.2.2:
 * "An ICMP error message MUST NOT be sent as the result of receiving: * an ICMP error message, or
 * * a datagram destined to an IP broadcast or IP multicast address, or * a datagram sent as a
 * link-layer broadcast, or * a non-initial fragment, or * a datagram whose source address does
 * not define a single host -- e.g., a zero address, a loopback address, a broadcast address, a
 * multicast address, or a Class E address." (A TUN link has no link-layer broadcast, and subnet
 * broadcasts are the caller's to know.) Never throws; false for anything unparseable.
 */
export function icmpErrorPermitted(packet: Uint8Array): boolean {
  if (packet.length < IPV4_HEADER_LEN || packet[0]! >>> 4 !== 4) return false;
  const headerLength = (packet[0]! & 0x0f) * 4;
  if (headerLength < IPV4_HEADER_LEN || headerLength > packet.length) return false;
  if ((((packet[6]! << 8) | packet[7]!) & 0x1fff) !== 0) return false;
  const src = readAddr(packet, 12);
  const dst = readAddr(packet, 16);
  if (isMulticastOrReserved(dst)) return false;
  if (src === 0 || isMulticastOrReserved(src) || src >>> 24 === 127) return false;
  if (packet[9] === IPPROTO_ICMP) {
    // Only informational messages (echo and the like) may be answered with an error; an
    // unreadable ICMP header is treated as an error message, to be safe.
    if (packet.length < headerLength + 1) return false;
    const type = packet[headerLength]!;
    const isQuery = type === ICMP_ECHO_REQUEST || type === ICMP_ECHO_REPLY || type === 13 || type === 14;
    if (!isQuery) return false;
  }
  return true;
}

export type IcmpErrorSpec =
  | { kind: 'dest-unreachable'; code: number; mtu?: number }
  | { kind: 'time-exceeded'; code: number }
  | { kind: 'parameter-problem'; code: number; pointer: number };

/**
 * An IPv4 packet carrying an ICMP error about `offending` (a whole IPv4 packet, header first),
 * quoting as much of it as fits in 576 bytes. `ip` is the header of the error itself (src: our
 * address, dst: the offending packet's source). Check icmpErrorPermitted first.
 */
export function emitIcmpError(ip: Ipv4Header, spec: IcmpErrorSpec, offending: Uint8Array): Uint8Array {
  // The quoted datagram is limited to its own total length, so link padding is not echoed back.
  let quoteLen = offending.length;
  if (offending.length >= 4) quoteLen = Math.min(quoteLen, Math.max((offending[2]! << 8) | offending[3]!, 0));
  quoteLen = Math.min(quoteLen, ICMP_ERROR_MAX_PACKET - IPV4_HEADER_LEN - ICMP_HEADER_LEN);
  const bytes = offending.subarray(0, quoteLen);
  // Only `bytes` is written; the parsed fields of the quote are not needed to emit.
  const quote: IcmpQuote = { header: ip, fragmentOffset: 0, srcPort: 0, dstPort: 0, seq: 0, bytes };
  let msg: IcmpMessage;
  switch (spec.kind) {
    case 'dest-unreachable':
      msg = { kind: 'dest-unreachable', code: spec.code, mtu: spec.mtu ?? 0, quote };
      break;
    case 'time-exceeded':
      msg = { kind: 'time-exceeded', code: spec.code, quote };
      break;
    case 'parameter-problem':
      msg = { kind: 'parameter-problem', code: spec.code, pointer: spec.pointer, quote };
      break;
  }
  return emitIcmpIpv4(ip, msg);
}
