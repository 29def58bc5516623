import { describe, expect, it } from 'vitest';
import {
  SYNCOOKIE_MSS_TABLE,
  SYNCOOKIE_SLOT_US,
  decodeSynCookie,
  decodeSynCookieTsecr,
  encodeSynCookie,
  encodeSynCookieTsval,
  synCookieMssIndex,
} from '../../../../src/stack/tcp/syncookie.js';
import type { FourTuple } from '../../../../src/stack/wire/types.js';

const KEY = new Uint8Array(32).fill(3);
const T: FourTuple = { localAddr: 0xc6120064, localPort: 80, remoteAddr: 0xc6120001, remotePort: 51000 };
const NOW = 1_764_000_000_000_000; // microseconds since the Unix epoch, late 2025

describe('SYN cookie encode/decode', () => {
  it('round-trips the MSS index for every table entry', () => {
    for (let i = 0; i < SYNCOOKIE_MSS_TABLE.length; i++) {
      const c = encodeSynCookie(KEY, T, 12345, i, NOW);
      expect(c).toBeGreaterThanOrEqual(0);
      expect(c).toBeLessThan(2 ** 32);
      expect(decodeSynCookie(KEY, T, c, NOW + 500_000)).toEqual({
        mss: SYNCOOKIE_MSS_TABLE[i],
        mssIndex: i,
        ageSlots: 0,
      });
    }
  });

  it('is accepted in the next slot and rejected after that (expired)', () => {
    const slotStart = Math.ceil(NOW / SYNCOOKIE_SLOT_US) * SYNCOOKIE_SLOT_US;
    const made = slotStart + 10;
    const c = encodeSynCookie(KEY, T, 1, 3, made);
    expect(decodeSynCookie(KEY, T, c, made + SYNCOOKIE_SLOT_US)?.ageSlots).toBe(1);
    expect(decodeSynCookie(KEY, T, c, slotStart + 2 * SYNCOOKIE_SLOT_US - 1)).not.toBeNull();
    expect(decodeSynCookie(KEY, T, c, slotStart + 2 * SYNCOOKIE_SLOT_US)).toBeNull();
    // Eight slots later the 3-bit counter aliases to the same value; the MAC still rejects it.
    expect(decodeSynCookie(KEY, T, c, made + 8 * SYNCOOKIE_SLOT_US)).toBeNull();
  });

  it('rejects a cookie presented before the slot it was made in', () => {
    const c = encodeSynCookie(KEY, T, 1, 3, NOW + SYNCOOKIE_SLOT_US);
    expect(decodeSynCookie(KEY, T, c, NOW - SYNCOOKIE_SLOT_US)).toBeNull();
  });

  it('rejects a different tuple, a different key and a tampered MSS field', () => {
    const c = encodeSynCookie(KEY, T, 1, 1, NOW);
    expect(decodeSynCookie(KEY, { ...T, remotePort: T.remotePort + 1 }, c, NOW)).toBeNull();
    expect(decodeSynCookie(KEY, { ...T, remoteAddr: T.remoteAddr + 1 }, c, NOW)).toBeNull();
    expect(decodeSynCookie(KEY, { ...T, localPort: 81 }, c, NOW)).toBeNull();
    expect(decodeSynCookie(KEY, { ...T, localAddr: T.localAddr + 1 }, c, NOW)).toBeNull();
    expect(decodeSynCookie(new Uint8Array(32).fill(4), T, c, NOW)).toBeNull();
    expect(decodeSynCookie(KEY, T, (c ^ (1 << 28)) >>> 0, NOW)).toBeNull(); // MSS index 1 -> 3
    expect(decodeSynCookie(KEY, T, (c + 1) >>> 0, NOW)).toBeNull();
  });

  it('accepts essentially no random acknowledgement numbers', () => {
    let accepted = 0;
    let x = 0x9e3779b9;
    for (let i = 0; i < 5000; i++) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      if (decodeSynCookie(KEY, T, x, NOW)) accepted++;
    }
    expect(accepted).toBe(0);
  });

  it('depends on the tuple, so neighbouring clients get different cookies', () => {
    const a = encodeSynCookie(KEY, T, 1, 3, NOW);
    const b = encodeSynCookie(KEY, { ...T, remotePort: T.remotePort + 1 }, 1, 3, NOW);
    expect(a).not.toBe(b);
  });

  it('maps client MSS to the largest table entry not above it', () => {
    expect(synCookieMssIndex(1460)).toBe(3);
    expect(synCookieMssIndex(9000)).toBe(3);
    expect(synCookieMssIndex(1400)).toBe(1);
    expect(synCookieMssIndex(536)).toBe(0);
    expect(synCookieMssIndex(100)).toBe(0);
  });

  it('refuses an MSS index outside the table', () => {
    expect(() => encodeSynCookie(KEY, T, 1, 4, NOW)).toThrow(RangeError);
  });
});

describe('SYN cookie options in the timestamp', () => {
  it('round-trips window scale and SACK through TSval/TSecr', () => {
    for (const wscale of [null, 0, 7, 14]) {
      for (const sackPermitted of [false, true]) {
        const ts = encodeSynCookieTsval(1_000_000, { wscale, sackPermitted });
        expect(decodeSynCookieTsecr(ts)).toEqual({ wscale, sackPermitted });
      }
    }
  });

  it('never returns a TSval ahead of the clock, and stays within 64 ticks of it', () => {
    for (const now of [1_000_000, 1_000_063, 5, 0xffffffff, 0]) {
      const ts = encodeSynCookieTsval(now, { wscale: 14, sackPermitted: true });
      const behind = (now - ts) | 0;
      expect(behind).toBeGreaterThanOrEqual(0);
      expect(behind).toBeLessThan(64);
      expect(ts).toBeGreaterThanOrEqual(0);
      expect(ts).toBeLessThan(2 ** 32);
    }
  });

  it('rejects a TSecr with the reserved bit set', () => {
    expect(decodeSynCookieTsecr(0x20)).toBeNull();
  });
});
