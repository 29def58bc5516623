// The failover acceptance tests of issue 3 that test/lab/failover.test.ts does not already hold,
// with real Linux clients in the lab (client, primary and backup namespaces on one LAN plus a
// primary-backup replication link), each on a fresh primary/backup pair:
//   - 20 SIGKILLs at seeded random points of curl downloads, with loss on the client links;
//   - 100 concurrent echo streams across a SIGKILL;
//   - a SIGKILL while a client opens connections in a tight loop (with SYN cookies in play);
//   - power loss: every link of the primary cut at once, then restored (it must fence itself).
// In every case the client must notice nothing: no RST on its interface, every byte exactly once.

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Nodes, type NodeHandle, type Timing } from '../../bench/failover/nodes.js';
import { HTTP_PORT, killRound, type ServedFile } from '../../bench/failover/stall.js';
import { writeRandomFile } from '../../src/demo/io.js';
import { mulberry32 } from '../unit/tcp/pair.js';
import { Capture } from './helpers/capture.js';
import {
  captureClientRsts,
  expectDownloadIntact,
  expectEchoStreamsIntact,
  expectNoRst,
  startDownload,
  vipAnswersHttp,
  whileStopped,
} from './helpers/client-checks.js';
import { startConnectLoop, startEchoStreams } from './helpers/echo-clients.js';
import { useLab } from './helpers/lab-fixture.js';

const MIB = 1024 * 1024;
const PORT_ECHO = 7;
const DEFAULTS: Timing = { heartbeatMs: 50, deadAfterMs: 300 };

interface NodeStatus {
  role?: string;
  epoch?: number;
  counters?: { events?: Record<string, number> };
}

describe('failover acceptance (issue 3)', () => {
  const lab = useLab({ replicationLink: true });
  const dir = mkdtempSync(path.join(tmpdir(), 'understudy-acceptance-'));
  const www = path.join(dir, 'www');
  mkdirSync(www);
  const keyFile = path.join(dir, 'repl.key');
  writeFileSync(keyFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  let pairs: Nodes | undefined;
  // The lab exists only once the tests run.
  const nodes = (): Nodes => (pairs ??= new Nodes(lab(), dir, keyFile));

  afterEach(async () => {
    await pairs?.stopAll();
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const statusOf = async (h: NodeHandle): Promise<NodeStatus | null> => (await nodes().status(h)) as NodeStatus | null;
  const logs = (p: NodeHandle, b: NodeHandle): string =>
    `--- primary log (tail)\n${nodes().log(p).slice(-3000)}\n--- backup log (tail)\n${nodes().log(b).slice(-3000)}`;

  const vipAnswers = (h: NodeHandle): Promise<void> => nodes().waitUntil('the VIP answers', h, () => vipAnswersHttp(lab()), 20_000);

  // The 256 MiB download of the issue is what `understudy demo` runs (test/lab/demo.test.ts runs
  // the demo's lab at 32 MiB); here the sizes stay small enough for 20 rounds in about two minutes.
  it('20 SIGKILLs at seeded random points (10-90%) of curl downloads, 8-48 MiB, 0-2% loss: 20 of 20 clean', async () => {
    const l = lab();
    const seed = Number(process.env['UNDERSTUDY_SEED'] ?? Date.now() % 1_000_000);
    // Printed so that a failing run can be repeated: UNDERSTUDY_SEED=<seed> npx vitest run <this file>.
    console.log(`failover acceptance: kill rounds with seed ${seed}`);
    const rand = mulberry32(seed);
    const files: ServedFile[] = [8, 16, 32, 48].map((m) => {
      const name = `f${m}.bin`;
      return { name, bytes: m * MIB, sha256: writeRandomFile(path.join(www, name), m * MIB) };
    });
    const evidence = path.join(tmpdir(), `understudy-acceptance-evidence-${seed}`);
    const rounds: string[] = [];
    for (let i = 0; i < 20; i++) {
      const plan = {
        file: files[Math.floor(rand() * files.length)]!,
        killAt: 0.1 + 0.8 * rand(),
        // Whole percents 0, 1 or 2 on both nodes' client links (their FaultLink, both directions).
        lossPct: Math.floor(rand() * 3),
        rate: 32 * MIB,
        timing: DEFAULTS,
      };
      const r = await killRound(l, nodes(), dir, plan, path.join(evidence, `round-${i + 1}`));
      const at = r.killedAtBytes === undefined ? 'never' : `${((100 * r.killedAtBytes) / plan.file.bytes).toFixed(0)}%`;
      const line = `round ${i + 1}: ${plan.file.bytes / MIB} MiB, loss ${plan.lossPct}%, killed at ${at}, stall ${r.stallMs?.toFixed(0) ?? '-'} ms`;
      rounds.push(r.problems.length === 0 ? line : `${line}: ${r.problems.join('; ')}`);
      // One bad round is enough to look at; the rest would only add minutes.
      expect(r.problems, `seed ${seed}\n${rounds.join('\n')}`).toEqual([]);
    }
    console.log(rounds.join('\n'));
  }, 300_000);

  it('100 concurrent echo streams both ways survive a SIGKILL mid-stream: every byte back once, in order', async () => {
    const l = lab();
    const { primary, backup } = await nodes().startPair('echo', PORT_ECHO, DEFAULTS);
    const conns = 100;
    const bytes = 768 * 1024;
    const cap = await captureClientRsts(l);
    try {
      // About 8 s per stream at this rate, long enough for a kill part-way with every stream open.
      const client = startEchoStreams(l, l.addr.vip, PORT_ECHO, { conns, bytes, rate: 96 * 1024, idleTimeoutS: 60 });
      await nodes().waitUntil('echo streams 40% through', primary, async () => {
        if (client.exited()) throw new Error(`the echo client ended early: ${client.output()}`);
        return client.progress() >= conns * bytes * 0.4;
      }, 60_000);
      nodes().kill(primary);
      const verdict = await expectEchoStreamsIntact(client, conns, logs(primary, backup));
      // Paced, a stream takes 8 s; on a loaded machine the echo lags behind (not a stall: a capture
      // of such a run shows one pause, the failover's).
      console.log(`echo streams: slowest connections [index, s]: ${JSON.stringify(verdict.slowest)}`);
      expect(nodes().log(backup)).toMatch(new RegExp(`"epoch":2,"connections":${conns},[^\\n]*"event":"takeover.done"`));
      await expectNoRst(cap, 'echo streams across the failover');
    } finally {
      await cap.dispose();
    }
  }, 180_000);

  it('a SIGKILL while a client opens connections in a tight loop (SYN cookies in play): every connect completes, none gets a RST', async () => {
    const l = lab();
    // A half-open queue of 2 sends the primary into SYN-cookie mode under this load, so that
    // cookies it handed out are still coming back when the backup takes over.
    const { primary, backup } = await nodes().startPair('echo', PORT_ECHO, DEFAULTS, ['--syn-backlog', '2']);
    const cap = await captureClientRsts(l);
    try {
      const client = startConnectLoop(l, l.addr.vip, PORT_ECHO, { workers: 16, size: 200, timeoutS: 60 });
      const cookiesSent = async (): Promise<number> => (await statusOf(primary))?.counters?.events?.['tcp.syncookie-sent'] ?? 0;
      await nodes().waitUntil('300 connections and SYN cookies sent', primary, async () => {
        if (client.exited()) throw new Error(`the connect loop ended early: ${client.output()}`);
        return client.progress() >= 300 && (await cookiesSent()) > 0;
      }, 60_000);
      nodes().kill(primary);
      const atKill = client.progress();
      await nodes().waitUntil('the backup took over', backup, async () => nodes().log(backup).includes('"takeover.done"'), 30_000);
      // The loop goes on against the new primary for a while: its own connections must work too.
      const afterTakeover = client.progress();
      await nodes().waitUntil('300 more connections on the new primary', backup, async () => {
        if (client.exited()) throw new Error(`the connect loop ended early: ${client.output()}`);
        return client.progress() >= afterTakeover + 300;
      }, 60_000);
      client.finish();
      const { code, verdict } = await client.result(90_000);
      expect(code, client.output()).toBe(0);
      expect(verdict.failures, logs(primary, backup)).toEqual([]);
      expect(verdict.ok).toBeGreaterThan(atKill);
      await expectNoRst(cap, 'connections opened across the failover');
      const events = (await statusOf(backup))?.counters?.events ?? {};
      // More cookies accepted than sent: some were the dead primary's (informative, not assured).
      console.log(
        `connect loop: ${verdict.ok} connections (${atKill} before the kill), slowest ${verdict.slowestS.toFixed(2)} s; ` +
          `the new primary sent ${events['tcp.syncookie-sent'] ?? 0} cookies and accepted ${events['tcp.syncookie-accepted'] ?? 0}`,
      );
      expect(events['tcp.listen-ack-rst-sent'] ?? 0, JSON.stringify(events)).toBe(0);
    } finally {
      await cap.dispose();
    }
  }, 180_000);

  it('a primary stalled just past dead-after (SIGSTOP until the backup decides, heartbeat 20, dead-after 100) mid-download: taken over and fenced before it releases anything; curl intact, no RST', async () => {
    const l = lab();
    const size = 32 * MIB;
    const file = { name: 'stall.bin', bytes: size, sha256: writeRandomFile(path.join(www, 'stall.bin'), size) };
    const { primary, backup } = await nodes().startPair(`http-static:${www}`, HTTP_PORT, { heartbeatMs: 20, deadAfterMs: 100 });
    await vipAnswers(primary);
    const cap = await captureClientRsts(l);
    try {
      const download = startDownload(l, `http://${l.addr.vip}/${file.name}`, path.join(dir, 'stall-download.bin'), { rate: 8 * MIB, timeoutMs: 120_000 });
      await nodes().waitUntil('30% downloaded', primary, async () => download.finished() || download.bytes() >= size * 0.3, 60_000);
      expect(download.finished(), 'the download ended before the stall').toBe(false);
      // The backup decides while the primary is stopped; the primary resumes before it has heard
      // anything, finds its backup silent and must not release what it held for it.
      await whileStopped(primary.child.pid as number, () =>
        nodes().waitUntil('the backup decided', backup, async () => nodes().log(backup).includes('"takeover.detected"'), 30_000),
      );
      await nodes().waitUntil('the old primary fenced itself', primary, async () => nodes().log(primary).includes('"replication.fenced"'), 30_000);
      await expectDownloadIntact(download, file, logs(primary, backup));
      expect(nodes().log(primary), logs(primary, backup)).not.toContain('backup lost');
      await expectNoRst(cap, 'download across a stalled primary');
    } finally {
      await cap.dispose();
    }
  }, 180_000);

  it('power loss: every link of the primary cut mid-download, the backup takes over (exit 0, same SHA-256, no RST); links back, the old primary fences itself', async () => {
    const l = lab();
    const size = 32 * MIB;
    const file = { name: 'cut.bin', bytes: size, sha256: writeRandomFile(path.join(www, 'cut.bin'), size) };
    const { primary, backup } = await nodes().startPair(`http-static:${www}`, HTTP_PORT, DEFAULTS);
    await vipAnswers(primary);
    const primaryMac = await l.macOf('primary');
    const rstCap = await captureClientRsts(l);
    let fromOld: Capture | undefined;
    const links = [l.lanIface, l.replIface as string];
    try {
      // About 8 s: the links are cut at 30% and come back while the backup still serves.
      const download = startDownload(l, `http://${l.addr.vip}/${file.name}`, path.join(dir, 'cut-download.bin'), { rate: 4 * MIB, timeoutMs: 120_000 });
      await nodes().waitUntil('30% downloaded', primary, async () => download.finished() || download.bytes() >= size * 0.3, 60_000);
      expect(download.finished(), 'the download ended before the links were cut').toBe(false);
      for (const iface of links) await l.exec('primary', 'ip', ['link', 'set', iface, 'down']);
      await nodes().waitUntil('the backup took over', backup, async () => nodes().log(backup).includes('"takeover.done"'), 30_000);
      expect(download.finished(), 'the download ended before the links came back').toBe(false);

      // Cut off, it finds its backup silent too, and must keep holding what it holds for it: the
      // backup may have taken over (it has). Only then do the links come back.
      await nodes().waitUntil('the old primary holds its output, isolated', primary, async () => nodes().log(primary).includes('"replication.isolated"'), 30_000);
      // From here on nothing may reach the client from the old primary's MAC in the VIP's name.
      fromOld = await Capture.start({ ns: l.ns.client, iface: l.lanIface, filter: `ether src ${primaryMac} and src host ${l.addr.vip}`, label: 'old primary' });
      for (const iface of links) await l.exec('primary', 'ip', ['link', 'set', iface, 'up']);
      await nodes().waitUntil('the old primary fenced itself', primary, async () => nodes().log(primary).includes('"replication.fenced"'), 30_000);

      // Fencing won over "backup lost": what it held was dropped, not sent.
      expect(nodes().log(primary)).not.toContain('backup lost');
      await expectDownloadIntact(download, file, logs(primary, backup));
      expect((await statusOf(backup))?.epoch).toBe(2);
      await expectNoRst(rstCap, 'download across cut links');
      const leaked = await fromOld.stop();
      expect(leaked.packets, `the old primary spoke for the VIP after its links came back:\n${leaked.lines.join('\n')}\n${logs(primary, backup)}`).toBe(0);
    } finally {
      for (const iface of links) await l.exec('primary', 'ip', ['link', 'set', iface, 'up'], { allowFailure: true });
      await rstCap.dispose();
      await fromOld?.dispose();
    }
  }, 180_000);
});
