// TCP segmentation offload, the sending half: runs of consecutive data segments of one connection
// are merged into one TCP/IPv4 super-packet (up to 65535 bytes) that the kernel cuts up again
// (virtio-net GSO_TCPV4). On a TUN the cost is per write() -- the kernel forwards each packet inside
// our system call -- so one write for up to 44 segments is the whole point.
//
// What the kernel does with a super-packet (tcp_gso_segment, inet_gso_segment) decides what may be
// merged: every segment gets the first one's IP and TCP header with the sequence number advanced by
// gso_size per segment, IP ID advanced by one, FIN and PSH only on the last segment, CWR only on
// the first, and checksums recomputed. So a run is packets that differ only in exactly those
// fields: same addresses, TOS, TTL, DF, ports, ACK number, window, option bytes (the timestamp is
// identical within one batch), payload of exactly gso_size except the last, contiguous sequence
// numbers, plain ACK flags (PSH/FIN only on the last). Anything else (a SYN, RST, URG, ECE/CWR, a
// pure ACK, a SACK block on one segment, IP options, fragments) travels alone.
//
// Packets are parsed as bytes here rather than as TcpSegment objects: the coalescer sits between
// the host's output and the link, and must not change a single byte of what Linux would put on the
// wire after segmentation.

/** The largest IPv4 packet, so the largest super-packet. */
export const GSO_MAX_PACKET = 65535;

const IP_HDR = 20;
const TCP_ACK = 0x10;
const TCP_PSH = 0x08;
const TCP_FIN = 0x01;
const IPPROTO_TCP = 6;

/** TCP header length of an unfragmented, option-less IPv4 TCP packet, or 0 if it is not one. */
function tcpHeaderLen(p: Uint8Array): number {
  const len = p.length;
  if (len < IP_HDR + 20 || p[0] !== 0x45 || p[9] !== IPPROTO_TCP) return 0;
  // Fragment offset and MF zero (DF and the reserved bit may be anything, compared below).
  if ((p[6]! & 0x3f) !== 0 || p[7] !== 0) return 0;
  if (((p[2]! << 8) | p[3]!) !== len) return 0;
  const thl = (p[32]! >>> 4) * 4;
  if (thl < 20 || IP_HDR + thl > len) return 0;
  return thl;
}

function read32(p: Uint8Array, at: number): number {
  return ((p[at]! << 24) | (p[at + 1]! << 16) | (p[at + 2]! << 8) | p[at + 3]!) >>> 0;
}

/** May packet p follow `first` in a run (header fields the kernel copies are all equal)? */
function sameHeaders(first: Uint8Array, p: Uint8Array, thl: number): boolean {
  // IP: TOS (1), flags byte (6), TTL (8), addresses (12-19). Total length, ID and checksum differ.
  if (p[1] !== first[1] || p[6] !== first[6] || p[8] !== first[8]) return false;
  for (let i = 12; i < 20; i++) if (p[i] !== first[i]) return false;
  // TCP: ports (20-23), ACK (28-31), data offset (32), window (34-35), options (40..).
  for (let i = 20; i < 24; i++) if (p[i] !== first[i]) return false;
  for (let i = 28; i < 33; i++) if (p[i] !== first[i]) return false;
  if (p[34] !== first[34] || p[35] !== first[35]) return false;
  const end = IP_HDR + thl;
  for (let i = IP_HDR + 20; i < end; i++) if (p[i] !== first[i]) return false;
  return true;
}

/**
 * The end (exclusive) of the run of packets that starts at `start` and can be sent as one
 * super-packet of at most `maxLength` bytes; `start + 1` when packets[start] merges with nothing.
 */
export function coalescibleRun(packets: readonly Uint8Array[], start: number, maxLength = GSO_MAX_PACKET): number {
  const first = packets[start]!;
  const thl = tcpHeaderLen(first);
  if (thl === 0) return start + 1;
  const gsoSize = first.length - IP_HDR - thl;
  // Only plain data segments: ACK, maybe PSH/FIN, nothing else; a PSH/FIN segment ends a run.
  let flags = first[33]!;
  if (gsoSize <= 0 || (flags & ~(TCP_PSH | TCP_FIN)) !== TCP_ACK) return start + 1;
  let total = first.length;
  let nextSeq = (read32(first, 24) + gsoSize) >>> 0;
  let lastLen = gsoSize;
  let i = start + 1;
  while (i < packets.length && (flags & (TCP_PSH | TCP_FIN)) === 0 && lastLen === gsoSize) {
    const p = packets[i]!;
    if (tcpHeaderLen(p) !== thl) break;
    const len = p.length - IP_HDR - thl;
    if (len <= 0 || len > gsoSize || total + len > maxLength) break;
    const f = p[33]!;
    if ((f & ~(TCP_PSH | TCP_FIN)) !== TCP_ACK) break;
    if (read32(p, 24) !== nextSeq || !sameHeaders(first, p, thl)) break;
    total += len;
    nextSeq = (nextSeq + len) >>> 0;
    lastLen = len;
    flags = f;
    i++;
  }
  return i;
}

/** The length the packets[start, end) run takes merged: one set of headers plus every payload. */
export function mergedLength(packets: readonly Uint8Array[], start: number, end: number): number {
  const first = packets[start]!;
  const hdr = IP_HDR + (first[32]! >>> 4) * 4;
  let total = first.length;
  for (let i = start + 1; i < end; i++) total += packets[i]!.length - hdr;
  return total;
}

/** Internet checksum of a 20-byte IPv4 header at buf[at] (its checksum field zeroed first). */
function ipHeaderChecksum(buf: Uint8Array, at: number): number {
  let sum = 0;
  for (let i = 0; i < IP_HDR; i += 2) sum += (buf[at + i]! << 8) | buf[at + i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * Writes the run packets[start, end) (as found by coalescibleRun) merged into one TCP/IPv4
 * super-packet at buf[at]: the first packet's headers with the total length, the last packet's
 * PSH/FIN, a fresh IP header checksum, and in the TCP checksum field the folded pseudo-header sum
 * over the whole TCP length, for the kernel to finish per segment (it adjusts the length part, as
 * tcp_gso_segment does for Linux's own TSO packets). Returns the super-packet's length and the
 * segment payload size (gso_size).
 */
export function writeMerged(
  packets: readonly Uint8Array[],
  start: number,
  end: number,
  buf: Uint8Array,
  at: number,
): { length: number; gsoSize: number; tcpHeaderLen: number } {
  const first = packets[start]!;
  const thl = (first[32]! >>> 4) * 4;
  const hdr = IP_HDR + thl;
  buf.set(first, at);
  let off = at + first.length;
  for (let i = start + 1; i < end; i++) {
    const p = packets[i]!;
    buf.set(p.subarray(hdr), off);
    off += p.length - hdr;
  }
  const total = off - at;
  buf[at + 2] = total >>> 8;
  buf[at + 3] = total & 0xff;
  buf[at + 10] = 0;
  buf[at + 11] = 0;
  const ipck = ipHeaderChecksum(buf, at);
  buf[at + 10] = ipck >>> 8;
  buf[at + 11] = ipck & 0xff;
  buf[at + 33] = first[33]! | (packets[end - 1]![33]! & (TCP_PSH | TCP_FIN));
  const ck = tcpPseudoHeaderSum(buf, at, total - IP_HDR);
  buf[at + 36] = ck >>> 8;
  buf[at + 37] = ck & 0xff;
  return { length: total, gsoSize: first.length - hdr, tcpHeaderLen: thl };
}

/** The folded (not complemented) pseudo-header sum of the IPv4 TCP packet at buf[at]. */
export function tcpPseudoHeaderSum(buf: Uint8Array, at: number, tcpLength: number): number {
  let sum = IPPROTO_TCP + tcpLength;
  for (let i = 12; i < 20; i += 2) sum += (buf[at + i]! << 8) | buf[at + i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}
