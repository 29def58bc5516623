// Sequence-number arithmetic modulo 2^32 (RFC 9293 section 3.4). Every comparison of sequence
// or acknowledgement numbers in the stack goes through here, so that wrap-around is handled once.

export type SeqNum = number; // an unsigned 32-bit value, 0 <= x < 2^32

/** a + n mod 2^32. */
export function seqAdd(a: SeqNum, n: number): SeqNum {
  return (a + n) >>> 0;
}

/**
 * The signed distance b - a, in [-2^31, 2^31). Positive when b is after a. Two numbers exactly 2^31
 * apart are ambiguous (RFC 1982 leaves it undefined); like Linux's before(), each then counts as
 * before the other, which callers never rely on because windows are far below 2^31.
 */
export function seqDiff(b: SeqNum, a: SeqNum): number {
  return (b - a) | 0;
}

export function seqLt(a: SeqNum, b: SeqNum): boolean {
  return ((a - b) | 0) < 0;
}

export function seqLe(a: SeqNum, b: SeqNum): boolean {
  return ((a - b) | 0) <= 0;
}

export function seqGt(a: SeqNum, b: SeqNum): boolean {
  return ((a - b) | 0) > 0;
}

export function seqGe(a: SeqNum, b: SeqNum): boolean {
  return ((a - b) | 0) >= 0;
}

/** lo <= x < hi, modulo 2^32. */
export function seqInRange(x: SeqNum, lo: SeqNum, hi: SeqNum): boolean {
  return seqLe(lo, x) && seqLt(x, hi);
}

export function seqMax(a: SeqNum, b: SeqNum): SeqNum {
  return seqGt(a, b) ? a : b;
}

export function seqMin(a: SeqNum, b: SeqNum): SeqNum {
  return seqLt(a, b) ? a : b;
}
