// The output digest itself (src/replication/output-digest.ts): the primary digests one write, the
// backup the same stream range as views of what its replica wrote, so the digest must depend on
// the bytes only, never on how they are cut; and the algorithm is a function of the length alone.

import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  DIGEST_BYTES,
  digestAlgorithm,
  digestsEqual,
  malformedDigest,
  outputDigest,
  POLY1305_FROM_BYTES,
} from '../../../src/replication/output-digest.js';

const MIB = 1024 * 1024;

/** Deterministic pseudo-random bytes (xorshift32): a failure reproduces. */
function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** `data` cut at `cuts` (sorted offsets inside it) into views, no copies. */
function cut(data: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const at = [0, ...cuts, data.length];
  return at.slice(1).map((end, i) => data.subarray(at[i], end));
}

const hex = (d: Uint8Array): string => Buffer.from(d).toString('hex');

describe('output digest', () => {
  it('length rule: CRC-32 up to 64 KiB - 1, Poly1305 from 64 KiB on', () => {
    expect(digestAlgorithm(0)).toBe('crc32');
    expect(digestAlgorithm(POLY1305_FROM_BYTES - 1)).toBe('crc32');
    expect(digestAlgorithm(POLY1305_FROM_BYTES)).toBe('poly1305');
    expect(digestAlgorithm(64 * MIB)).toBe('poly1305');
    expect(POLY1305_FROM_BYTES).toBe(64 * 1024);
  });

  it('64 KiB - 1 bytes: zlib CRC-32 in the first 4 bytes (little-endian), the other 12 zero', () => {
    const data = noise(POLY1305_FROM_BYTES - 1, 1);
    const d = outputDigest([data]);
    expect(d.length).toBe(DIGEST_BYTES);
    expect(Buffer.from(d).readUInt32LE(0)).toBe(crc32(data));
    expect([...d.subarray(4)]).toEqual(new Array(12).fill(0));
  });

  it('64 KiB: Poly1305, a full 16-byte tag that is not the CRC-32 layout', () => {
    const data = noise(POLY1305_FROM_BYTES, 1);
    const d = outputDigest([data]);
    expect(d.length).toBe(DIGEST_BYTES);
    expect(Buffer.from(d).readUInt32LE(0)).not.toBe(crc32(data));
    expect(d.subarray(4).some((b) => b !== 0)).toBe(true);
    // One byte more or less on the same prefix: the other algorithm, so the other layout.
    expect(outputDigest([data.subarray(0, POLY1305_FROM_BYTES - 1)]).subarray(4).every((b) => b === 0)).toBe(true);
  });

  it('known answers: the digest is part of the wire format (a change needs a new FRAME_VERSION)', () => {
    const ramp = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => i & 0xff);
    expect(hex(outputDigest([ramp(4096)]))).toBe('822091a2000000000000000000000000');
    expect(hex(outputDigest([ramp(POLY1305_FROM_BYTES - 1)]))).toBe('e2f56519000000000000000000000000');
    expect(hex(outputDigest([ramp(POLY1305_FROM_BYTES)]))).toBe('7a48db802973e67407456a49d0478934');
  });

  it.each([
    ['CRC-32', 10_000],
    ['Poly1305 at the boundary', POLY1305_FROM_BYTES],
    ['Poly1305', MIB + 5],
  ])('%s: the same bytes cut differently (1-byte, empty, odd-sized views) give the same digest', (_, n) => {
    const data = noise(n, 7);
    const whole = hex(outputDigest([data]));
    const ways: number[][] = [
      [1],
      [n - 1],
      [0, 0, 17, 17, 33],
      [3, 7, 4096, 4097, Math.floor(n / 2), n - 16, n - 15],
      Array.from({ length: 40 }, (_, i) => Math.floor((n * (i + 1)) / 41)),
    ];
    for (const cuts of ways) expect(hex(outputDigest(cut(data, cuts))), `cut at ${cuts.join(',')}`).toBe(whole);
    // Many small views, the shape of a replica that wrote one segment at a time.
    expect(hex(outputDigest(cut(data, Array.from({ length: Math.floor((n - 1) / 1448) }, (_, i) => (i + 1) * 1448))))).toBe(whole);
  });

  it.each([
    ['start', 0],
    ['middle', MIB / 2 + 3],
    ['end', MIB - 1],
  ])('1 MiB: one flipped bit at the %s gives another digest', (_, at) => {
    const data = noise(MIB, 11);
    const before = outputDigest([data]);
    const other = Uint8Array.from(data);
    other[at] ^= 0x01;
    const after = outputDigest([other]);
    expect(digestsEqual(after, before)).toBe(false);
    // Also when the changed copy comes as views.
    expect(digestsEqual(outputDigest(cut(other, [at === 0 ? 1 : at, MIB - 1].sort((a, b) => a - b))), before)).toBe(false);
  });

  it('1 MiB: the same bytes one byte shorter or longer give another digest (the length is covered)', () => {
    const data = noise(MIB + 1, 13);
    const d = outputDigest([data.subarray(0, MIB)]);
    expect(digestsEqual(outputDigest([data.subarray(0, MIB - 1)]), d)).toBe(false);
    expect(digestsEqual(outputDigest([data]), d)).toBe(false);
    // Trailing zeros too: Poly1305 pads the additional data to 16 bytes, the length block tells.
    const zeros = new Uint8Array(MIB + 16);
    expect(digestsEqual(outputDigest([zeros.subarray(0, MIB)]), outputDigest([zeros]))).toBe(false);
  });

  it('digestsEqual compares all 16 bytes', () => {
    const a = outputDigest([noise(POLY1305_FROM_BYTES, 3)]);
    for (const i of [0, 7, 15]) {
      const b = Uint8Array.from(a);
      b[i] ^= 0x80;
      expect(digestsEqual(a, b)).toBe(false);
    }
    expect(digestsEqual(a, Uint8Array.from(a))).toBe(true);
    expect(digestsEqual(a, a.subarray(0, 15))).toBe(false);
  });

  it('malformedDigest: a CRC-32 digest with padding set, or a digest of the wrong size, is refused', () => {
    const crc = outputDigest([noise(5000, 5)]);
    expect(malformedDigest(5000, crc)).toBeNull();
    const padded = Uint8Array.from(crc);
    padded[15] = 1;
    expect(malformedDigest(5000, padded)).toMatch(/non-zero padding/);
    expect(malformedDigest(POLY1305_FROM_BYTES, padded)).toBeNull();
    expect(malformedDigest(5000, crc.subarray(0, 4))).toMatch(/4 bytes, expected 16/);
  });
});
