// The Internet checksum (RFC 1071), used by IPv4, TCP and ICMP.
//
// RFC 1071 section 1: "Adjacent octets to be checksummed are paired to form 16-bit integers, and
// the 1's complement sum of these 16-bit integers is formed." and (2)(B) "the sum may be computed
// ... deferring the carries": we add words into a plain JavaScript number (exact up to 2^53) and
// fold the carries once at the end, which is what makes the loop cheap. A range of up to 2^37
// bytes cannot overflow the accumulator, far beyond any packet.

import type { Ipv4Addr } from './types.js';

/**
 * The unfolded sum of the 16-bit big-endian words in bytes[start, end), added to `initial`.
 * The word pairing starts at `start`; an odd trailing byte is padded with a zero octet on its
 * right (RFC 1071 section 4.1: "Add left-over byte, if any").
 */
export function onesSum(bytes: Uint8Array, start = 0, end = bytes.length, initial = 0): number {
  let sum = initial;
  let i = start;
  // Eight bytes per turn: fewer loop checks, and each term stays a small integer so V8 keeps
  // the arithmetic in registers until the addition into the double accumulator.
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
