// The Internet checksum (RFC 1071), used by IPv4, TCP and ICMP.
//
// RFC 1071 section 1: "Adjacent octets to be checksummed are paired to form 16-bit integers, and
// the 1's complement sum of these 16-bit integers is formed." and (2)(B) "the sum may be computed
// ... deferring the carries": we add words into a plain JavaScript number (exact up to 2^53) and
// fold the carries once at the end, which is what makes the loop cheap. A range of up to 2^37
// bytes cannot overflow the accumulator, far beyond any packet.

import type { Ipv4Addr } from './types.js';

/** Below this many bytes the word-at-a-time path costs more (a view allocation) than it saves. */
const WIDE_MIN_BYTES = 64;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swap16(x: number): number {
  return ((x & 0xff) << 8) | (x >>> 8);
}

/**
 * The unfolded sum of the 16-bit big-endian words in bytes[start, end), added to `initial`.
 * The word pairing starts at `start`; an odd trailing byte is padded with a zero octet on its
 * right (RFC 1071 section 4.1: "Add left-over byte, if any").
 */
export function onesSum(bytes: Uint8Array, start = 0, end = bytes.length, initial = 0): number {
  if (end - start < WIDE_MIN_BYTES) return sumBytes(bytes, start, end, initial);
  // Long ranges are summed 32 bits at a time through a Uint32Array over the aligned middle, about
  // twice as fast as byte pairs. RFC 1071 2(A)-(B) make this exact: a 32-bit word is
  // hi16 * 2^16 + lo16 and 2^16 = 1 in one's complement arithmetic, so adding 32-bit words adds
  // their 16-bit halves; and the sum is byte-order independent, so a little-endian read just
  // yields the byte-swapped sum, swapped back after folding.
  const misalign = (bytes.byteOffset + start) & 3;
  const headLen = misalign === 0 ? 0 : 4 - misalign;
  const head = sumBytes(bytes, start, start + headLen, initial);
  const from = start + headLen;
  const words = (end - from) >>> 2;
  const view = new Uint32Array(bytes.buffer, bytes.byteOffset + from, words);
  let wide = 0;
  let k = 0;
  const words4 = words - 3;
  for (; k < words4; k += 4) wide += view[k]! + view[k + 1]! + view[k + 2]! + view[k + 3]!;
  for (; k < words; k++) wide += view[k]!;
  let mid = foldSum(wide);
  if (LITTLE_ENDIAN) mid = swap16(mid);
  // After an odd-length head the middle's word pairing is shifted by one byte relative to
  // `start`: swapping its folded sum realigns it (RFC 1071 2(B) again). Same for the tail.
  if (headLen & 1) mid = swap16(mid);
  const tailFrom = from + words * 4;
  let tail = foldSum(sumBytes(bytes, tailFrom, end, 0));
  if (headLen & 1) tail = swap16(tail);
  return head + mid + tail;
}

function sumBytes(bytes: Uint8Array, start: number, end: number, initial: number): number {
  let sum = initial;
  let i = start;
  // Eight bytes per turn: fewer loop checks, and each term stays a small integer.
  const end8 = end - 7;
  while (i < end8) {
    sum +=
      ((bytes[i]! << 8) | bytes[i + 1]!) +
      ((bytes[i + 2]! << 8) | bytes[i + 3]!) +
      ((bytes[i + 4]! << 8) | bytes[i + 5]!) +
      ((bytes[i + 6]! << 8) | bytes[i + 7]!);
    i += 8;
  }
  const end2 = end - 1;
  while (i < end2) {
    sum += (bytes[i]! << 8) | bytes[i + 1]!;
    i += 2;
  }
  if (i < end) sum += bytes[i]! << 8;
  return sum;
}

/**
 * Folds an unfolded sum to 16 bits with end-around carry. Folding is the same as reducing modulo
 * 0xffff except that a non-zero multiple of 0xffff folds to 0xffff (one's complement "-0").
 */
export function foldSum(sum: number): number {
  if (sum === 0) return 0;
  return ((sum - 1) % 0xffff) + 1;
}

/** The value for a checksum field: the one's complement of the folded sum. */
export function finishChecksum(sum: number): number {
  return ~foldSum(sum) & 0xffff;
}

/** The checksum of bytes[start, end), ready to store in a header field. */
export function internetChecksum(bytes: Uint8Array, start = 0, end = bytes.length, initial = 0): number {
  return finishChecksum(onesSum(bytes, start, end, initial));
}

/**
 * The unfolded sum of the IPv4 pseudo-header (RFC 9293 section 3.1: source address, destination
 * address, zero, PTCL, TCP Length), to start the TCP (or UDP) checksum with.
 */
export function pseudoHeaderSum(src: Ipv4Addr, dst: Ipv4Addr, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}

/**
 * True when bytes[start, end), which includes its own checksum field, sums to all ones: RFC 1071
 * section 1 (3): "To check a checksum, the 1's complement sum is computed over the same set of
 * octets, including the checksum field. If the result is all 1 bits (-0 in 1's complement
 * arithmetic), the check succeeds."
 */
export function verifyChecksum(bytes: Uint8Array, start = 0, end = bytes.length, initial = 0): boolean {
  return foldSum(onesSum(bytes, start, end, initial)) === 0xffff;
}
