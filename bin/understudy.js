#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx so that the repo needs no build step.
import { register } from 'tsx/esm/api';

// zlib.crc32 (output digests) came in Node 20.15; an older Node would fail on an import deep inside.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 15)) {
  process.stderr.write(`understudy: needs Node.js 20.15 or later, this is ${process.versions.node}\n`);
  process.exit(1);
}

register();
await import('../src/cli/main.ts');
