// Loss recovery over a lossy, reordering, slightly delayed wire: two stacks over seeded FaultLinks,
// one 4 MiB transfer each way per run, with and without RACK-TLP (RFC 8985) on the same seeds.
// Correctness is asserted (byte-exact), and so are counts: RACK and TLP fired, and far fewer
// retransmission timeouts expired than with RFC 6675's DupThresh alone. Times are printed only.
// The timers are Linux's (200 ms minimum RTO, 40 ms delayed ACK): what makes a tail loss or a lost
// retransmission expensive is exactly that floor.

import { afterAll, describe, expect, it } from 'vitest';
import { createStack, type Stack } from '../../src/stack/stack.js';
import type { TcpConfig } from '../../src/stack/tcp/api.js';
import { FaultLink, type FaultSettings } from '../../src/tun/fault-link.js';
import { createMemoryLinkPair } from '../../src/tun/memory-link.js';
import { payload, sha256 } from './payload.js';
import { readAll } from './sim-tcp.js';

const SERVER = '198.18.0.1';
const CLIENT = '198.18.0.2';
const PORT = 5002;
const SIZE = 4 * 1024 * 1024;

interface Scenario {
  lossPct: number;
  seed: number;
}

const SCENARIOS: Scenario[] = [
  { lossPct: 1, seed: 11 },
  { lossPct: 2, seed: 12 },
  { lossPct: 5, seed: 13 },
];

function faults(lossPct: number): Partial<FaultSettings> {
  return { lossPct, delayMs: 0.5, jitterMs: 0.2, reorderPct: 1, reorderDistance: 3 };
}


interface Run {
  seconds: number;
  rto: number;
  tlp: number;
  rackLost: number;
  lost: number;
}

function count(stacks: Stack[], name: string): number {
  let n = 0;
  for (const s of stacks) n += s.counters[name] ?? 0;
  return n;
}

/** One upload and one download of SIZE bytes at once over one connection; returns the counts. */
async function run(sc: Scenario, rack: boolean): Promise<Run> {
  const tcp: Partial<TcpConfig> = { rack, timeWaitUs: 50_000 };
  const [wa, wb] = createMemoryLinkPair(1500);
  const la = new FaultLink(wa, { seed: sc.seed, out: faults(sc.lossPct) });
  const lb = new FaultLink(wb, { seed: sc.seed + 1000, out: faults(sc.lossPct) });
  const server = createStack({ link: la, addresses: [SERVER], tcp });
  const client = createStack({ link: lb, addresses: [CLIENT], tcp });
  const up = payload(sc.seed * 2, SIZE);
  const down = payload(sc.seed * 2 + 1, SIZE);
  const uploaded = new Promise<Buffer>((resolve, reject) => {
    server
      .createServer((s) => {
        readAll(s).then(resolve, reject);
        s.end(down);
      })
      .listen(PORT);
  });
  const started = performance.now();
  const s = client.connect({ host: SERVER, port: PORT });
  const downloaded = readAll(s);
  s.end(up);
  const [gotDown, gotUp] = await Promise.all([downloaded, uploaded]);
  const seconds = (performance.now() - started) / 1000;
  expect(gotDown.length).toBe(SIZE);
  expect(gotUp.length).toBe(SIZE);
  expect(sha256(gotDown)).toBe(sha256(down));
  expect(sha256(gotUp)).toBe(sha256(up));
  const stacks = [server, client];
  const result: Run = {
    seconds,
    rto: count(stacks, 'tcp.rto'),
    tlp: count(stacks, 'tcp.tlp'),
    rackLost: count(stacks, 'tcp.rack-lost'),
    lost: la.counters().out.lost + lb.counters().out.lost,
  };
  await client.close();
  await server.close();
  return result;
}

interface Row {
  loss: string;
  'RACK-TLP': string;
  seconds: string;
  'MiB/s': string;
  'lost pkts': number;
  'RTO expirations': number;
  'TLP probes': number;
  'RACK-lost segs': number;
}

const table: Row[] = [];
const totals = { with: 0, without: 0, runs: 0 };

function row(sc: Scenario, rack: boolean, r: Run): Row {
  return {
    loss: `${sc.lossPct}% both ways`,
    'RACK-TLP': rack ? 'on' : 'off',
    seconds: r.seconds.toFixed(2),
    'MiB/s': ((2 * SIZE) / 2 ** 20 / r.seconds).toFixed(2),
    'lost pkts': r.lost,
    'RTO expirations': r.rto,
    'TLP probes': r.tlp,
    'RACK-lost segs': r.rackLost,
  };
}

afterAll(() => {
  console.log('\nloss recovery: 4 MiB each way over one connection, 0.5 ms delay, 1% reordering, Linux timers:');
  console.table(table);
});

describe('loss recovery over a lossy, reordering wire: RACK-TLP repairs what DupThresh leaves to the RTO', () => {
  for (const sc of SCENARIOS) {
    it(`${sc.lossPct}% loss both ways: byte-exact with and without RACK-TLP; with it, RACK and TLP fire and RTO expirations drop`, async () => {
      const withRack = await run(sc, true);
      const without = await run(sc, false);
      table.push(row(sc, true, withRack), row(sc, false, without));
      expect(withRack.tlp + withRack.rackLost).toBeGreaterThan(0);
      expect(withRack.rackLost).toBeGreaterThan(0);
      expect(without.tlp + without.rackLost).toBe(0);
      totals.with += withRack.rto;
      totals.without += without.rto;
      totals.runs++;
    }, 300_000);
  }

  it('over all loss rates: RTO expirations with RACK-TLP are at most a third of those without (same seeds)', () => {
    expect(totals.runs).toBe(SCENARIOS.length);
    // Light loss rarely times out either way; the sum keeps one quiet run from deciding.
    expect(totals.without).toBeGreaterThanOrEqual(6);
    expect(totals.with * 3).toBeLessThanOrEqual(totals.without);
  });
});
