// A small seeded PRNG (xoshiro128**, seeded through splitmix32) so that every random choice of the
// fault-injecting link can be replayed from its seed. Not for anything security-related.

export interface Prng {
  /** Uniform unsigned 32-bit integer. */
  next(): number;
  /** Uniform float in [0, 1). */
  float(): number;
  /** Uniform integer in [0, n), n >= 1. */
  int(n: number): number;
  /** True with probability pct/100. Draws nothing when pct is 0 or 100, so disabled faults cost no draws. */
  chance(pct: number): boolean;
}

export function createPrng(seed: number): Prng {
  let x = seed >>> 0;
  const splitmix = (): number => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let s0 = splitmix();
  let s1 = splitmix();
  let s2 = splitmix();
  let s3 = splitmix();
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1; // the all-zero state is a fixed point

  const rotl = (v: number, k: number): number => ((v << k) | (v >>> (32 - k))) >>> 0;

  const next = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    s0 >>>= 0;
    s1 >>>= 0;
    s2 >>>= 0;
    return result;
  };
  const float = (): number => next() / 4294967296;
  return {
    next,
    float,
    int: (n: number) => Math.floor(float() * n),
    chance: (pct: number) => (pct <= 0 ? false : pct >= 100 ? true : float() * 100 < pct),
  };
}
