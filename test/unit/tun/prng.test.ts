import { describe, expect, it } from 'vitest';
import { createPrng } from '../../../src/tun/prng.js';

describe('createPrng', () => {
  it('repeats its sequence for a seed and differs across seeds', () => {
    const draw = (seed: number) => {
      const r = createPrng(seed);
      return Array.from({ length: 8 }, () => r.next());
    };
    expect(draw(5)).toEqual(draw(5));
    expect(draw(5)).not.toEqual(draw(6));
    expect(draw(0).some((v) => v !== 0)).toBe(true);
  });

  it('stays within bounds', () => {
    const r = createPrng(11);
    for (let i = 0; i < 10_000; i++) {
      const f = r.float();
      expect(f >= 0 && f < 1).toBe(true);
      const k = r.int(7);
      expect(Number.isInteger(k) && k >= 0 && k < 7).toBe(true);
      const u = r.next();
      expect(Number.isInteger(u) && u >= 0 && u <= 0xffffffff).toBe(true);
    }
  });

  it('never fires at 0% and always at 100%', () => {
    const r = createPrng(2);
    for (let i = 0; i < 1000; i++) {
      expect(r.chance(0)).toBe(false);
      expect(r.chance(100)).toBe(true);
    }
  });

  it('covers all buckets roughly evenly', () => {
    const r = createPrng(3);
    const buckets = new Array<number>(8).fill(0);
    for (let i = 0; i < 80_000; i++) buckets[r.int(8)]!++;
    for (const b of buckets) {
      expect(b).toBeGreaterThan(9_000);
      expect(b).toBeLessThan(11_000);
    }
  });
});
