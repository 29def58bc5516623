// A diagnostic preload for a node process: prints every callback (one event-loop turn's worth of
// work: I/O, timer, immediate) that ran longer than SLOW_TURN_MS (default 35) of wall time, with
// the CPU time it used and its async resource type, to stderr. Wall time well above CPU time means
// the process was waiting for a core, not working: that tells a long turn from a starved one.
// Costs a hook call per async resource: for measuring only.
//   node --import ./scripts/slow-turns.mjs bin/understudy.js node ...
//   REINT_NODE_FLAGS="--import ./scripts/slow-turns.mjs" REINT_CONNS=4000 npx vitest run test/lab/reintegration.test.ts -t "open connections"

import { createHook } from 'node:async_hooks';
import { writeSync } from 'node:fs';

const limitMs = Number(process.env.SLOW_TURN_MS ?? 35);
const types = new Map();
const started = new Map();

createHook({
  // Promise jobs too: an async function's continuation (a takeover, say) runs as one, after the
  // callback that resolved it, not inside it.
  init(id, type) {
    types.set(id, type);
  },
  before(id) {
    if (types.has(id)) started.set(id, [performance.now(), process.cpuUsage()]);
  },
  after(id) {
    const s = started.get(id);
    started.delete(id);
    if (s === undefined) return;
    const wall = performance.now() - s[0];
    if (wall <= limitMs) return;
    const cpu = process.cpuUsage(s[1]);
    writeSync(2, `slow-turn ${types.get(id)} ${wall.toFixed(1)} ms wall ${((cpu.user + cpu.system) / 1000).toFixed(1)} ms cpu at ${new Date().toISOString()}\n`);
  },
  destroy(id) {
    types.delete(id);
    started.delete(id);
  },
}).enable();
