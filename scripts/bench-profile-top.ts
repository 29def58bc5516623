// Self time per function in a V8 .cpuprofile (as written by `npm run bench -- --profile DIR`):
// the quickest way to see where the understudy server spends its CPU without a browser.
// Usage: npx tsx scripts/bench-profile-top.ts <file.cpuprofile> [--top 25]

import { readFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
}

const file = process.argv[2];
if (file === undefined) {
  process.stderr.write('usage: bench-profile-top.ts <file.cpuprofile> [--top N]\n');
  process.exit(2);
}
const topIdx = process.argv.indexOf('--top');
const top = topIdx > 0 ? Number(process.argv[topIdx + 1]) : 25;

const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
// hitCount is not always filled in; the samples array is the ground truth when present.
const hits = new Map<number, number>();
if (profile.samples !== undefined && profile.samples.length > 0) for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
else for (const n of profile.nodes) hits.set(n.id, n.hitCount ?? 0);

const self = new Map<string, number>();
let total = 0;
for (const [id, count] of hits) {
  const n = byId.get(id);
  if (n === undefined) continue;
  // Line numbers are left out: under tsx they point into transformed code, not the source.
  const { functionName, url } = n.callFrame;
  const where = url === '' ? '' : ` ${path.relative(process.cwd(), url.replace(/^file:\/\//, ''))}`;
  const key = `${functionName || '(anonymous)'}${where}`;
  self.set(key, (self.get(key) ?? 0) + count);
  total += count;
}
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
process.stdout.write(`${total} samples\n`);
for (const [key, count] of rows) process.stdout.write(`${((count / total) * 100).toFixed(1).padStart(5)}%  ${key}\n`);
