// A takeover of many connections (issue 3, item 5; docs/replication.md "Known limits"): the
// clients' pause is the time from the takeover's decision to the retransmissions and window
// updates leaving, and with thousands of connections whatever the new primary does per connection
// before that (promotion, attaching the replica sockets, log lines) adds up. Here a protected pair
// holds TKO_CONNS (default 1000) idle echo connections, all logged from their SYN; the primary is
// SIGKILLed and every connection must go on: each sampled echo exact, a clean close, no RST.
// Beside them a few echo streams send all along, so client segments reach the new primary while
// it is still promoting: those of connections not yet promoted must wait, not meet a RST. The
// backup runs at debug level (a takeover.connection line per connection, as operators read them)
// and the test prints its takeover steps and event-loop stalls. TKO_NODE_FLAGS adds node options
// to both nodes (--cpu-prof, --import ./scripts/slow-turns.mjs).

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Capture, describeRsts, RST_FILTER } from './helpers/capture.js';
import { expectEchoStreamsIntact } from './helpers/client-checks.js';
import { startEchoStreams, startIdleEcho } from './helpers/echo-clients.js';
import { useLab } from './helpers/lab-fixture.js';
import { type PairRole, ReplicatedPair } from './helpers/replicated-pair.js';

const PORT = 7;
const STREAMS = 8;
const KIB = 1024;

describe('a takeover of many connections in the lab', () => {
  const lab = useLab({ replicationLink: true });
  const dir = mkdtempSync(join(tmpdir(), 'understudy-tko-'));
  const pair = new ReplicatedPair(lab, dir, 'ustko0');

  afterEach(async () => {
    await pair.stop();
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('1000 idle echo connections and 8 busy ones survive a SIGKILL of the primary: the retransmissions leave before the per-connection log lines, every echo exact, no RST', async () => {
    const l = lab();
    const conns = Number(process.env.TKO_CONNS ?? 1000);
    const nodeFlags = process.env.TKO_NODE_FLAGS?.split(' ').filter((f) => f !== '') ?? [];
    pair.startNode('backup', 'echo', PORT, ['--log-level', 'debug'], { nodeFlags });
    await pair.waitUntil('backup control socket', async () => (await pair.status('backup')) !== null, 30_000);
    pair.startNode('primary', 'echo', PORT, [], { nodeFlags });
    await pair.waitUntil('primary protected', async () => (await pair.status('primary'))?.protected === true, 45_000);

    const cap = await Capture.start({ ns: l.ns.client, iface: l.lanIface, filter: RST_FILTER, label: 'client' });
    // Source ports from 24000: below Linux's ephemeral range, clear of the other lab tests' bases.
    const idle = startIdleEcho(l, l.addr.vip, PORT, { conns, sourcePortBase: 24000, sample: 20, periodS: 0.25, timeoutS: 20 });
    let streams: ReturnType<typeof startEchoStreams> | undefined;
    try {
      await pair.waitUntil(`${conns} echo connections open and replicated`, async () => {
        if (idle.exited()) throw new Error(`the idle-echo client exited: ${idle.output()}`);
        return idle.progress() >= 2 && ((await pair.status('backup'))?.replication?.applied?.shadows ?? 0) >= conns;
      }, 40_000);
      // Started once the idle ones are up, so that they are under way at the kill however long
      // opening those took: 2 MiB each at 256 KiB/s, 8 s.
      const s = startEchoStreams(l, l.addr.vip, PORT, { conns: STREAMS, bytes: 2 * KIB * KIB, rate: 256 * KIB, idleTimeoutS: 30 });
      streams = s;
      await pair.waitUntil('the echo streams under way and replicated', async () => {
        if (s.exited()) throw new Error(`the echo-streams client exited before the kill: ${s.output()}`);
        return s.progress() > 0 && ((await pair.status('backup'))?.replication?.applied?.shadows ?? 0) >= conns + STREAMS;
      }, 20_000);

      const pid = pair.pid('primary');
      const killedAt = Date.now();
      pair.kill('primary');
      await pair.waitUntil('the primary gone', () => pid === undefined || !existsSync(`/proc/${pid}`) || / Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')), 10_000);
      await pair.waitUntil('the backup took over', () => pair.events('backup', 'takeover.done').length > 0, 20_000);
      const after = idle.progress();
      await pair.waitUntil('two echo rounds after the takeover', () => idle.progress() >= after + 2, 20_000);

      const steps = pair.logOf('backup').split('\n').filter((line) => line.includes('"event":"takeover.'));
      const summary = steps.filter((s) => !s.includes('"takeover.connection"')).map((s) => {
        const { level: _l, time: _t, pid: _p, event, ms, ...rest } = JSON.parse(s) as Record<string, unknown>;
        return `${String(event).slice('takeover.'.length)}@${String(ms ?? '')}${Object.keys(rest).length > 0 ? JSON.stringify(rest) : ''}`;
      });
      const delays = (n: PairRole): string => JSON.stringify(pair.events(n, 'node.loop-delay').filter((e) => Date.parse(String(e.time)) >= killedAt).map((e) => [Date.parse(String(e.time)) - killedAt, e.maxMs]));
      console.log(`takeover of ${conns} connections: ${summary.join(' ')}; backup loop delays after the kill [ms, max ms] ${delays('backup')}`);

      // Every connection promoted, and the clients' resumption ahead of the per-connection lines.
      expect(pair.events('backup', 'takeover.promoted')[0]?.connections, pair.logs()).toBe(conns + STREAMS);
      expect(pair.events('backup', 'takeover.connection')).toHaveLength(conns + STREAMS);
      const firstDetail = steps.findIndex((s) => s.includes('"takeover.connection"'));
      const released = steps.findIndex((s) => s.includes('"takeover.retransmit"'));
      expect(released, steps.slice(0, 12).join('\n')).toBeGreaterThanOrEqual(0);
      expect(released, steps.slice(0, 12).join('\n')).toBeLessThan(firstDetail);

      idle.finish();
      const { code, verdict } = await idle.result(60_000);
      console.log(`idle echo: ${verdict.rounds} rounds, slowest ${verdict.slowestRoundS} s`);
      expect(verdict.failures, `${idle.output()}\n${pair.logs()}`).toEqual([]);
      expect(verdict.ok).toBe(conns);
      expect(code).toBe(0);
      await expectEchoStreamsIntact(s, STREAMS, pair.logs(), 40_000);
      const rsts = await cap.stop();
      expect(rsts.packets, describeRsts(`${conns} idle echo connections across a SIGKILL`, rsts)).toBe(0);
    } finally {
      if (!idle.exited()) idle.finish();
      await idle.result(5000).catch(() => undefined);
      await streams?.result(1000).catch(() => undefined);
      await cap.dispose();
    }
  }, 60_000);
});
