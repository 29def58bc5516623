import { describe, expect, it } from 'vitest';
import {
  finishChecksum,
  foldSum,
  internetChecksum,
  onesSum,
  pseudoHeaderSum,
  verifyChecksum,
} from '../../../src/stack/wire/checksum.js';

function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}

/** The textbook algorithm, folding after every word: the reference the fast one must match. */
function referenceChecksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) {
    const word = (b[i]! << 8) | (i + 1 < b.length ? b[i + 1]! : 0);
    sum += word;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

describe('Internet checksum (RFC 1071)', () => {
  it('matches the worked example of RFC 1071 section 3 (sum ddf2)', () => {
    const b = hex('0001 f203 f4f5 f6f7');
    expect(foldSum(onesSum(b))).toBe(0xddf2);
    expect(internetChecksum(b)).toBe(0x220d);
  });

  it('gives the well-known checksum b861 for a sample IPv4 header', () => {
    const header = hex('4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7');
    expect(internetChecksum(header)).toBe(0xb861);
    header[10] = 0xb8;
    header[11] = 0x61;
    expect(verifyChecksum(header)).toBe(true);
    header[15] ^= 1;
    expect(verifyChecksum(header)).toBe(false);
  });

  it('pads an odd trailing byte with zero on its right', () => {
    expect(onesSum(hex('01'))).toBe(0x0100);
    expect(onesSum(hex('0102 03'))).toBe(0x0102 + 0x0300);
    expect(internetChecksum(hex('ab'))).toBe(~0xab00 & 0xffff);
  });

  it('folds multiples of 0xffff to 0xffff and zero to zero', () => {
    expect(foldSum(0)).toBe(0);
    expect(foldSum(0xffff)).toBe(0xffff);
    expect(foldSum(0xffff * 7)).toBe(0xffff);
    expect(foldSum(0x10000)).toBe(1);
    expect(foldSum(0x1fffe)).toBe(0xffff);
    expect(finishChecksum(0xffff)).toBe(0);
  });

  it('agrees with the word-by-word reference on random buffers of every length up to 300 and a 64 KiB one', () => {
    const rnd = seededRandom(7);
    for (let len = 0; len <= 300; len++) {
      const b = new Uint8Array(len);
      for (let i = 0; i < len; i++) b[i] = rnd() & 0xff;
      expect(internetChecksum(b)).toBe(referenceChecksum(b));
    }
    const big = new Uint8Array(65535).fill(0xff);
    expect(internetChecksum(big)).toBe(referenceChecksum(big));
  });

  it('agrees with the reference on views at every alignment and range start, odd and even', () => {
    const rnd = seededRandom(11);
    const backing = new Uint8Array(2000);
    for (let i = 0; i < backing.length; i++) backing[i] = rnd() & 0xff;
    for (let viewOffset = 0; viewOffset < 4; viewOffset++) {
      const view = backing.subarray(viewOffset);
      for (let start = 0; start < 5; start++) {
        for (const len of [63, 64, 65, 66, 67, 100, 101, 1459, 1460, 1461, 1462, 1463]) {
          const end = start + len;
          const expected = referenceChecksum(view.slice(start, end));
          expect(internetChecksum(view, start, end)).toBe(expected);
        }
      }
    }
  });

  it('adds the initial sum on both the short and the long path', () => {
    const b = new Uint8Array(200).fill(0x11);
    expect(foldSum(onesSum(b, 0, 200, 0x1234))).toBe(foldSum(onesSum(b, 0, 200) + 0x1234));
    expect(foldSum(onesSum(b, 0, 10, 0x1234))).toBe(foldSum(onesSum(b, 0, 10) + 0x1234));
  });

  it('sums a sub-range as if it started at offset zero', () => {
    const b = hex('ffff 1234 5678 9a');
    expect(onesSum(b, 2, 7)).toBe(onesSum(hex('1234 5678 9a')));
    expect(onesSum(b, 2, 2)).toBe(0);
  });

  it('builds the TCP pseudo-header sum from addresses, protocol and length', () => {
    // 192.168.0.1 -> 192.168.0.199, TCP, 20 bytes.
    const sum = pseudoHeaderSum(0xc0a80001, 0xc0a800c7, 6, 20);
    expect(sum).toBe(0xc0a8 + 0x0001 + 0xc0a8 + 0x00c7 + 6 + 20);
    const explicit = hex('c0a8 0001 c0a8 00c7 0006 0014');
    expect(foldSum(sum)).toBe(foldSum(onesSum(explicit)));
  });
});
