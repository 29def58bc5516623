import { describe, expect, it } from 'vitest';
import { createIsnGenerator } from '../../../../src/stack/tcp/isn.js';
import type { FourTuple } from '../../../../src/stack/wire/types.js';

const KEY = new Uint8Array(16).fill(7);
const T: FourTuple = { localAddr: 0xc6120064, localPort: 80, remoteAddr: 0xc6120001, remotePort: 40000 };

describe('RFC 6528 ISN generator', () => {
  it('is deterministic for the same key, tuple and time (primary and backup agree)', () => {
    const a = createIsnGenerator(KEY);
    const b = createIsnGenerator(new Uint8Array(KEY));
    expect(a(T, 123_456_789)).toBe(b(T, 123_456_789));
  });

  it('returns an unsigned 32-bit value', () => {
    const isn = createIsnGenerator(KEY);
    for (const now of [0, 1e6, 1.7e15, 2 ** 40 + 3]) {
      const v = isn(T, now);
      expect(Number.isInteger(v)).toBe(true);
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(2 ** 32);
    }
  });

  it('differs across tuples and across keys', () => {
    const isn = createIsnGenerator(KEY);
    const other = createIsnGenerator(new Uint8Array(16).fill(8));
    const seen = new Set<number>();
    for (let p = 40000; p < 40064; p++) seen.add(isn({ ...T, remotePort: p }, 0));
    expect(seen.size).toBe(64);
    expect(isn({ ...T, remoteAddr: T.remoteAddr + 1 }, 0)).not.toBe(isn(T, 0));
    expect(other(T, 0)).not.toBe(isn(T, 0));
  });

  it('advances by one per 4 microseconds, modulo 2^32', () => {
    const isn = createIsnGenerator(KEY);
    const base = isn(T, 1_000_000);
    expect(isn(T, 1_000_004)).toBe((base + 1) >>> 0);
    expect(isn(T, 1_000_003)).toBe(base);
    expect(isn(T, 2_000_000)).toBe((base + 250_000) >>> 0);
    expect(isn(T, 1_000_000 + 4 * 2 ** 32)).toBe(base); // the timer wraps after 2^32 ticks
  });

  it('does not change when the caller mutates its key buffer afterwards', () => {
    const key = new Uint8Array(16).fill(1);
    const isn = createIsnGenerator(key);
    const before = isn(T, 0);
    key.fill(2);
    expect(isn(T, 0)).toBe(before);
  });
});
