// The output digest's cost per call and per MiB against plain zlib CRC-32, at the write sizes a
// replicated download produces (docs/replication.md, "Output digests"): a 4 KiB write (the
// smallest digested), both sides of the 64 KiB switch to Poly1305, and http-static's 512 KiB
// reads, whole (the primary) and as three views (the backup's replica bytes). Best of 5 rounds.
//
//   npx tsx bench/output-digest.ts

import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { outputDigest, POLY1305_FROM_BYTES } from '../src/replication/output-digest.js';

const MIB = 1024 * 1024;

function bestNsPerCall(f: () => unknown, calls: number): number {
  for (let i = 0; i < 100; i++) f();
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) f();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / calls);
  }
  return best;
}

console.log('bytes    what                  us/call   GB/s  ms/MiB');
for (const size of [4096, POLY1305_FROM_BYTES - 1, POLY1305_FROM_BYTES, 512 * 1024]) {
  const data = randomBytes(size);
  const third = Math.floor(size / 3);
  const views = [data.subarray(0, third), data.subarray(third, 2 * third), data.subarray(2 * third)];
  const calls = Math.max(200, Math.floor((256 * MIB) / size));
  const cases: [string, () => unknown][] = [
    ['zlib crc32', () => crc32(data)],
    ['outputDigest', () => outputDigest([data])],
    ['outputDigest, 3 views', () => outputDigest(views)],
  ];
  for (const [what, f] of cases) {
    const ns = bestNsPerCall(f, calls);
    const row = [String(size).padEnd(8), what.padEnd(21), (ns / 1000).toFixed(2).padStart(7), (size / ns).toFixed(1).padStart(6), ((ns / 1e6) * (MIB / size)).toFixed(3).padStart(7)];
    console.log(row.join(' '));
  }
}
