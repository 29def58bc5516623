// Deterministic bytes for a seed, so each side of a simulated transfer knows what the other sends.

import { createHash } from 'node:crypto';
import { seededRandom } from '../unit/stack/helpers.js';

export function payload(seed: number, n: number): Buffer {
  const next = seededRandom(seed);
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = next() & 0xff;
  return out;
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
