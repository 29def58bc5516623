// Tier 2 of the test plan (ARCHITECTURE.md section 8): two stacks over an in-memory wire whose
// ends inject seeded loss, reordering, duplication and corruption. Each transfer uploads and
// downloads random amounts at once over its own connection; every byte must arrive exactly.
// Throughput is printed, never asserted.

import { once } from 'node:events';
import { afterAll, describe, expect, it } from 'vitest';
import { createStack, type Stack } from '../../src/stack/stack.js';
import type { Socket } from '../../src/stack/socket.js';
import { FaultLink, type FaultSettings } from '../../src/tun/fault-link.js';
import { createMemoryLinkPair } from '../../src/tun/memory-link.js';
import { createPrng } from '../../src/tun/prng.js';
import { payload, sha256 } from './payload.js';
import { FAST_TCP, readAll } from './sim-tcp.js';

const SERVER = '198.18.0.1';
const CLIENT = '198.18.0.2';
const PORT = 5001;
const HEADER = 12;

interface Scenario {
  name: string;
  transfers: number;
  concurrency: number;
  faults: Partial<FaultSettings>;
  seed: number;
  /** Half-open queue size on the server; 0 answers every SYN with a cookie. */
  synBacklog?: number;
}

/** SIM_SEED=n replays the run with other seeds (the default run is fixed). */
const SEED_BASE = Number(process.env['SIM_SEED'] ?? 0) * 10;

const SCENARIOS: Scenario[] = [
  { name: 'clean', transfers: 250, concurrency: 25, seed: 1, faults: {} },
  { name: 'loss 1%, dup, reorder', transfers: 250, concurrency: 25, seed: 2, faults: { lossPct: 1, duplicatePct: 1, reorderPct: 2, reorderDistance: 3 } },
  { name: 'loss 5%, dup, reorder, corrupt', transfers: 250, concurrency: 25, seed: 3, faults: { lossPct: 5, duplicatePct: 2, reorderPct: 5, reorderDistance: 4, corruptPct: 0.5 } },
  { name: 'loss 10%, dup, reorder', transfers: 200, concurrency: 25, seed: 4, faults: { lossPct: 10, duplicatePct: 2, reorderPct: 5, reorderDistance: 4 } },
  { name: 'delay 2 ms, jitter 1 ms, loss 2%', transfers: 100, concurrency: 25, seed: 6, faults: { lossPct: 2, delayMs: 2, jitterMs: 1 } },
  { name: 'SYN cookies only, loss 2%, reorder', transfers: 50, concurrency: 10, seed: 5, synBacklog: 0, faults: { lossPct: 2, reorderPct: 2, reorderDistance: 3 } },
];

/** Mostly small sizes, some medium, a few up to 1 MiB. */
function randomSize(rnd: () => number): number {
  const r = rnd();
  if (r < 0.7) return Math.floor(rnd() * 4096);
  if (r < 0.95) return 4096 + Math.floor(rnd() * 60 * 1024);
  return 64 * 1024 + Math.floor(rnd() * (1024 * 1024 - 64 * 1024));
}

interface ServerResult {
  ok: boolean;
  reason?: string;
}

/**
 * The server side of one transfer: the client's header says which seeds and sizes to expect and
 * to send back. Upload and download run at the same time.
 */
function serve(s: Socket, results: Map<number, ServerResult>): void {
  const chunks: Buffer[] = [];
  let have = 0;
  let header: { id: number; up: number; down: number } | null = null;
  s.on('data', (d: Buffer) => {
    chunks.push(d);
    have += d.length;
    if (header === null && have >= HEADER) {
      const h = Buffer.concat(chunks);
      header = { id: h.readUInt32BE(0), up: h.readUInt32BE(4), down: h.readUInt32BE(8) };
      s.end(payload(header.id * 2 + 1, header.down));
    }
  });
  s.on('end', () => {
    const all = Buffer.concat(chunks);
    if (header === null) {
      results.set(-1, { ok: false, reason: 'no header' });
      return;
    }
    const body = all.subarray(HEADER);
    const expected = payload(header.id * 2, header.up);
    results.set(header.id, body.length === expected.length && sha256(body) === sha256(expected) ? { ok: true } : { ok: false, reason: `upload ${body.length}/${expected.length}` });
  });
  s.on('error', (e) => results.set(-2, { ok: false, reason: String(e) }));
}

async function transfer(client: Stack, id: number, up: number, down: number): Promise<void> {
  const s = client.connect({ host: SERVER, port: PORT });
  const got = readAll(s);
  const h = Buffer.alloc(HEADER);
  h.writeUInt32BE(id, 0);
  h.writeUInt32BE(up, 4);
  h.writeUInt32BE(down, 8);
  s.write(h);
  s.end(payload(id * 2, up));
  const body = await got;
  const expected = payload(id * 2 + 1, down);
  if (body.length !== expected.length || sha256(body) !== sha256(expected)) {
    throw new Error(`transfer ${id}: download ${body.length}/${expected.length} bytes, content ${sha256(body) === sha256(expected) ? 'equal' : 'differs'}`);
  }
  if (!s.destroyed) await once(s, 'close');
}

interface Row {
  scenario: string;
  transfers: number;
  MiB: string;
  seconds: string;
  'MiB/s': string;
  'lost pkts': number;
  'dup pkts': number;
  'reordered pkts': number;
  'corrupt pkts': number;
  'checksum drops': number;
  'RSTs to stale tuples': number;
}

const table: Row[] = [];

function sum(a: Stack, b: Stack, names: string[]): number {
  let n = 0;
  for (const s of [a, b]) for (const k of names) n += s.counters[k] ?? 0;
  return n;
}

afterAll(() => {
  console.log('\nsimulated transfers (both directions at once, bytes counted in both):');
  console.table(table);
});

describe('simulated network: random transfers arrive byte-exact both ways', () => {
  for (const sc of SCENARIOS) {
    it(`${sc.name}: ${sc.transfers} transfers`, async () => {
      const [wa, wb] = createMemoryLinkPair(1500);
      const seed = sc.seed + SEED_BASE;
      const la = new FaultLink(wa, { seed, out: sc.faults });
      const lb = new FaultLink(wb, { seed: seed + 1000, out: sc.faults });
      const server = createStack({ link: la, addresses: [SERVER], tcp: FAST_TCP, synBacklog: sc.synBacklog });
      const client = createStack({ link: lb, addresses: [CLIENT], tcp: FAST_TCP });
      const results = new Map<number, ServerResult>();
      server.createServer((s) => serve(s, results)).listen(PORT);

      const prng = createPrng(seed);
      const rnd = () => prng.float();
      const jobs = Array.from({ length: sc.transfers }, (_, i) => ({ id: sc.seed * 100000 + i, up: randomSize(rnd), down: randomSize(rnd) }));
      const bytes = jobs.reduce((n, j) => n + j.up + j.down, 0);
      const started = performance.now();
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < jobs.length) {
          const j = jobs[next++]!;
          await transfer(client, j.id, j.up, j.down);
        }
      };
      await Promise.all(Array.from({ length: sc.concurrency }, worker));
      const seconds = (performance.now() - started) / 1000;

      // The server records its check at its 'end', which may follow the client's close by a turn or,
      // on a loaded machine, by much more: this sim runs on real-time timers, and 0.5 s once left
      // 199 of 200 results at load average 10. Wait on the condition, bounded generously.
      for (let i = 0; i < 2000 && results.size < jobs.length; i++) await new Promise((r) => setTimeout(r, 5));
      const bad = [...results.entries()].filter(([, r]) => !r.ok);
      expect(bad).toEqual([]);
      expect(results.size).toBe(jobs.length);

      const fa = la.counters().out;
      const fb = lb.counters().out;
      table.push({
        scenario: sc.name,
        transfers: sc.transfers,
        MiB: (bytes / 2 ** 20).toFixed(1),
        seconds: seconds.toFixed(2),
        'MiB/s': (bytes / 2 ** 20 / seconds).toFixed(1),
        'lost pkts': fa.lost + fb.lost,
        'dup pkts': fa.duplicated + fb.duplicated,
        'reordered pkts': fa.reordered + fb.reordered,
        'corrupt pkts': fa.corrupted + fb.corrupted,
        'checksum drops': sum(server, client, ['ip.bad-checksum', 'tcp.bad-checksum']),
        'RSTs to stale tuples': sum(server, client, ['tcp.no-connection-rst-sent', 'tcp.listen-ack-rst-sent']),
      });
      if (sc.synBacklog === 0) {
        expect(server.counters['tcp.syncookie-accepted']).toBe(jobs.length);
        expect(server.counters['tcp.passive-open']).toBeUndefined();
      }
      await client.close();
      await server.close();
    }, 170_000);
  }
});
