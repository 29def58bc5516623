// `understudy fault ... --link replication` against a primary and a backup in the lab, checked
// through `status` and by a real client: 100% loss on the replication link during a download makes
// the primary report its backup lagging, then lost (unprotected, not stalled); cleared, the backup
// rejoins and the download finishes byte-exact with no RST. Corruption is refused by the channel's
// authentication (counted), the session comes back, protection resumes. A partition of the
// replication link seen from the backup never makes it take over: the LAN heartbeats still come.

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../bench/proc.js';
import type { ReplicatedNodeStatus } from '../../src/cli/node-status.js';
import { captureClientRsts, expectDownloadIntact, expectNoRst, sha256Hex, startDownload, type Download } from './helpers/client-checks.js';
import { curl } from './helpers/clients.js';
import { useLab } from './helpers/lab-fixture.js';
import { ReplicatedPair, type PairRole } from './helpers/replicated-pair.js';

const MIB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('faults on the replication link of a lab pair', () => {
  const lab = useLab({ replicationLink: true });
  const dir = mkdtempSync(join(tmpdir(), 'understudy-op-repl-'));
  const www = join(dir, 'www');
  mkdirSync(www, { recursive: true });
  const blob = randomBytes(24 * MIB);
  writeFileSync(join(www, 'big.bin'), blob);
  writeFileSync(join(www, 'index.html'), 'pair\n');
  const pair = new ReplicatedPair(lab, dir, 'usopr0');

  /** The real command, from the host namespace (a Unix socket path is not namespaced). */
  const understudy = async (role: PairRole, ...args: string[]): Promise<string> => {
    const r = await run([process.execPath, 'bin/understudy.js', ...args, '--control', pair.control(role)], { timeoutMs: 20_000 });
    if (r.code !== 0) throw new Error(`understudy ${args.join(' ')} (${role}): exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const status = async (role: PairRole): Promise<ReplicatedNodeStatus> => {
    const s = await pair.status<ReplicatedNodeStatus>(role);
    if (s === null) throw new Error(`no status from the ${role}\n${pair.logs()}`);
    return s;
  };
  /** Protected again, the backup connected and nothing left unacknowledged. */
  const caughtUp = async (): Promise<boolean> => {
    const s = await pair.status<ReplicatedNodeStatus>('primary');
    return s?.protected === true && s.replication?.peer.state === 'connected' && s.replication.lag?.records === 0;
  };
  /** A rate-limited download of big.bin, so that it is still running while faults come and go. */
  const download = (name: string): Download => startDownload(lab(), `http://${lab().addr.vip}/big.bin`, join(dir, name), { rate: 4 * MIB, timeoutMs: 120_000 });
  const expectIntact = (d: Download): Promise<void> => expectDownloadIntact(d, { bytes: blob.length, sha256: sha256Hex(blob) }, pair.logs());
  const noTakeover = async (): Promise<void> => {
    const b = await status('backup');
    expect(b.role).toBe('backup');
    expect(b.epoch).toBe(1);
    expect(pair.logOf('backup')).not.toContain('"takeover.');
    expect((await status('primary')).role).toBe('primary');
  };

  beforeAll(async () => {
    await pair.start(`http-static:${www}`, 80);
    const l = lab();
    // The client's neighbour entry may still name another lab's node: wait until the VIP answers.
    await pair.waitUntil('the VIP answers', async () => (await curl(l.ns.client, [`http://${l.addr.vip}/index.html`], [join(dir, 'probe')], 3000)).exitCode === 0, 20_000);
  }, 90_000);
  // A test that failed half-way must not leave its fault to the next one.
  afterEach(async () => {
    for (const role of ['primary', 'backup'] as const) await understudy(role, 'fault', 'clear').catch(() => undefined);
  });
  afterAll(async () => {
    await pair.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loss 100 for 2 s during a download: the primary shows the backup lagging, then lost; cleared, it is protected again and the download is intact, no RST', async () => {
    const l = lab();
    const cap = await captureClientRsts(l);
    try {
      const d = download('loss.bin');
      await pair.waitUntil('the download under way', async () => d.bytes() >= 2 * MIB, 30_000);
      await understudy('primary', 'fault', 'loss', '100', '--link', 'replication');
      const samples: ReplicatedNodeStatus[] = [];
      const end = Date.now() + 2000;
      while (Date.now() < end) {
        samples.push(await status('primary'));
        await sleep(25);
      }
      // First the lag: records the backup has not acknowledged, waiting longer than any ack takes.
      const lagging = samples.findIndex((s) => s.replication?.peer.state === 'connected' && (s.replication.lag?.records ?? 0) > 0 && (s.replication.lag?.waitingMs ?? 0) >= 100);
      expect(lagging, `no sample showed the backup lagging: ${JSON.stringify(samples.map((s) => s.replication?.lag))}`).toBeGreaterThanOrEqual(0);
      // Then, once the channel has been silent past its limit, unprotected and saying why.
      const lost = samples.findIndex((s, i) => i > lagging && s.protected === false);
      expect(lost, `the primary never reported itself unprotected\n${pair.logs()}`).toBeGreaterThan(lagging);
      const reason = samples[lost]?.protectedReason ?? '';
      // Whichever side's silence limit strikes first ends the session: this one's, or the backup's.
      expect(reason).toMatch(/^no backup attached \(lost [\d.]+ s ago: (silent for \d+ ms \(limit \d+ ms\)|connection closed by peer)\)$/);
      const last = samples.at(-1) as ReplicatedNodeStatus;
      expect(last.links.find((x) => x.name === 'replication')?.faultCounters.out.lost).toBeGreaterThan(0);
      await noTakeover();

      expect(await understudy('primary', 'fault', 'clear')).toBe('applied: clear\n');
      await pair.waitUntil('the backup caught up (protected, lag 0)', caughtUp, 20_000);
      const list = await understudy('primary', 'fault', 'list');
      expect(list).toMatch(/replication \(tcp [\d.:]+ <-> [\d.:]+\)\s+faults in: none\s+out: none/);
      expect(list).toMatch(/loss 100 --link replication --direction both\n.*clear\n/);
      await expectIntact(d);
      await noTakeover();
      await expectNoRst(cap, 'download across a lossy replication link');
    } finally {
      await cap.dispose();
    }
  }, 60_000);

  it('corrupt on the replication link: refusals counted in status, the session comes back, protected again; download intact', async () => {
    const d = download('corrupt.bin');
    await pair.waitUntil('the download under way', async () => d.bytes() >= 2 * MIB, 30_000);
    const before = (await status('primary')).replication?.channel;
    await understudy('primary', 'fault', 'corrupt', '100', '--link', 'replication', '--direction', 'in');
    let refused: ReplicatedNodeStatus | undefined;
    await pair.waitUntil(
      'a refusal counted',
      async () => {
        const s = await status('primary');
        if ((s.replication?.channel.authFailures ?? 0) > (before?.authFailures ?? 0)) refused = s;
        return refused !== undefined;
      },
      10_000,
    );
    // The refusal dropped the session, and status says so.
    expect(refused?.replication?.lastPeerLoss?.reason).toMatch(/^authentication failed: bad MAC/);
    await understudy('primary', 'fault', 'clear', '--link', 'replication');
    await pair.waitUntil('the backup caught up (protected, lag 0)', caughtUp, 20_000);
    const after = await status('primary');
    expect(after.replication?.channel.sessions).toBeGreaterThan(before?.sessions ?? 0);
    expect(after.links.find((x) => x.name === 'replication')?.faultCounters.in.corrupted).toBeGreaterThan(0);
    const human = await understudy('primary', 'status');
    expect(human).toMatch(/channel\s+sessions \d+, authentication failures [1-9]\d*/);
    expect(pair.logOf('primary')).toMatch(/replication: authentication failed on the connection with/);
    await expectIntact(d);
    await noTakeover();
  }, 60_000);

  it('duplicate and reorder out of the primary are refused by the backup; delay keeps it protected, only later', async () => {
    for (const kind of ['duplicate', 'reorder'] as const) {
      const before = (await status('backup')).replication?.channel.authFailures ?? 0;
      await understudy('primary', 'fault', kind, '100', '--link', 'replication', '--direction', 'out');
      // The backup's channel checks the frame counter: a message twice, or two swapped, is refused there.
      await pair.waitUntil(`the backup refused a ${kind}d message`, async () => ((await status('backup')).replication?.channel.authFailures ?? 0) > before, 10_000);
      expect(pair.logOf('backup')).toMatch(/replication: authentication failed on the connection with [^:]+:\d+: frame counter \d+, expected \d+/);
      await understudy('primary', 'fault', 'clear');
      await pair.waitUntil('the backup caught up (protected, lag 0)', caughtUp, 20_000);
    }
    const sessions = (await status('primary')).replication?.channel.sessions ?? 0;
    await understudy('primary', 'fault', 'delay', '100', '--link', 'replication', '--direction', 'out');
    // Output commit: the SYN-ACK leaves only once the backup acknowledged the connection's open
    // record, which now reaches it 100 ms late. So a client's connect takes at least that long.
    const l = lab();
    const r = await l.exec('client', 'curl', ['-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{time_connect}', `http://${l.addr.vip}/index.html`]);
    expect(Number(r.stdout)).toBeGreaterThanOrEqual(0.1);
    await sleep(500);
    const p = await status('primary');
    expect(p.protected).toBe(true);
    expect(p.replication?.channel.sessions).toBe(sessions);
    expect(p.links.find((x) => x.name === 'replication')?.faultCounters.out.delayed).toBeGreaterThan(0);
    await noTakeover();
  }, 60_000);

  it('partition --link replication on the backup: silence on the channel, but the LAN heartbeats keep it from taking over', async () => {
    await understudy('backup', 'fault', 'partition', '--link', 'replication');
    try {
      // Five times dead-after (300 ms) without a word from the primary on the replication path.
      await pair.waitUntil('the backup has not heard the primary on the channel for 1.5 s', async () => ((await status('backup')).replication?.heartbeatAgeMs ?? 0) >= 1500, 20_000);
      const b = await status('backup');
      expect(b.replication?.lanHeartbeatAgeMs ?? Infinity).toBeLessThan(300);
      expect(b.links.find((x) => x.name === 'replication')?.faults.in.partition).toBe(true);
      await noTakeover();
    } finally {
      await understudy('backup', 'fault', 'clear');
    }
    await pair.waitUntil('the backup caught up (protected, lag 0)', caughtUp, 20_000);
    await noTakeover();
  }, 60_000);
});
