// Planned switchover with real Linux clients (issue 3 item 7, issue 4 item 4): a primary and a
// backup `understudy node` in the lab serve one module that answers a curl download and echo
// streams at once; `understudy switchover` swaps their roles mid-transfer and the clients notice
// nothing: curl exits 0 with the same SHA-256, every echoed byte comes back once, no RST on the
// client's interface. A primary without a backup refuses, in one line.

import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { RunResult } from '../../bench/proc.js';
import type { Capture } from './helpers/capture.js';
import { understudy } from './helpers/cli.js';
import { captureClientRsts, expectDownloadIntact, expectEchoStreamsIntact, expectNoRst, sha256Hex, startDownload, vipAnswersHttp } from './helpers/client-checks.js';
import { startEchoStreams } from './helpers/echo-clients.js';
import { useLab } from './helpers/lab-fixture.js';
import { ReplicatedPair, type PairRole } from './helpers/replicated-pair.js';

const PORT = 80;
const MIB = 1024 * 1024;

describe('planned switchover in the lab', () => {
  const lab = useLab({ replicationLink: true });
  const dir = mkdtempSync(join(tmpdir(), 'understudy-switchover-'));
  const www = join(dir, 'www');
  const pair = new ReplicatedPair(lab, dir, 'usswo0');

  const switchover = (node: PairRole, extra: string[] = []): Promise<RunResult> => understudy(['switchover', '--control', pair.control(node), ...extra], 30_000);

  /** The module serving big.bin and echo, next to a file of `size` random bytes. */
  function prepareService(size: number): { service: string; want: { bytes: number; sha256: string } } {
    rmSync(www, { recursive: true, force: true });
    const blob = randomBytes(size);
    mkdirSync(www, { recursive: true });
    const mod = join(www, 'file-or-echo.mjs');
    copyFileSync('test/fixtures/file-or-echo.mjs', mod);
    writeFileSync(join(www, 'big.bin'), blob);
    return { service: `module:${mod}`, want: { bytes: size, sha256: sha256Hex(blob) } };
  }

  /**
   * The clients both tests run from the client namespace: a rate-limited curl of big.bin and
   * `conns` echo streams of `bytes` each at `echoRate` bytes/s. verify() waits for both and checks
   * what the issue asks of a switchover: curl exit 0 and the same SHA-256, every echoed byte back
   * once, and no RST on the capture.
   */
  function startClients(o: { want: { bytes: number; sha256: string }; rate: number; curlTimeoutMs: number; conns: number; bytes: number; echoRate: number }) {
    const l = lab();
    const download = startDownload(l, `http://${l.addr.vip}/big.bin`, join(dir, 'download.bin'), { rate: o.rate, timeoutMs: o.curlTimeoutMs });
    const echo = startEchoStreams(l, l.addr.vip, PORT, { conns: o.conns, bytes: o.bytes, rate: o.echoRate, idleTimeoutS: 60 });
    return {
      download,
      echo,
      async verify(cap: Capture, what: string): Promise<void> {
        await expectDownloadIntact(download, o.want, pair.logs());
        await expectEchoStreamsIntact(echo, o.conns, pair.logs(), 90_000);
        await expectNoRst(cap, what);
      },
    };
  }

  afterEach(async () => {
    await pair.stop();
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('one switchover under a 32 MiB curl download and 20 echo streams: nothing lost, no RST, roles swapped', async () => {
    const l = lab();
    const size = 32 * MIB;
    const { service, want } = prepareService(size);
    await pair.start(service, PORT);
    await pair.waitUntil('the VIP answers', () => vipAnswersHttp(l), 20_000);

    const cap = await captureClientRsts(l);
    try {
      // About 8 s for the download, 6 s for the echo streams: the switchover lands mid-way in both.
      const conns = 20;
      const bytes = 768 * 1024;
      const clients = startClients({ want, rate: 4 * MIB, curlTimeoutMs: 120_000, conns, bytes, echoRate: 128 * 1024 });

      await pair.waitUntil('download and echo 30% through', async () => {
        if (clients.download.finished()) throw new Error('the download ended before the switchover');
        return clients.download.bytes() >= size * 0.3 && clients.echo.progress() >= conns * bytes * 0.3;
      }, 60_000);
      const sw = await switchover('primary');
      expect(sw.code, `switchover: ${sw.stdout}${sw.stderr}\n${pair.logs()}`).toBe(0);
      expect(sw.stdout).toMatch(/^switched over: new primary .+, epoch 2\nstall \d+(\.\d+)? ms \(drain .+, takeover .+\)\n$/);

      await clients.verify(cap, 'traffic across the switchover');

      // Roles swapped: the old primary rejoined as the backup of the new one.
      await pair.waitUntil('the old primary is attached as backup', async () => (await pair.status('primary'))?.replication?.peer.state === 'connected', 30_000);
      const was = await pair.status('primary');
      const now = await pair.status('backup');
      expect(was?.role).toBe('backup');
      expect(now?.role).toBe('primary');
      expect(now?.epoch).toBe(2);
      expect(was?.epoch).toBe(2);
      expect(was?.replication?.switchover?.outcome).toBe('handed-over');
      expect(was?.replication?.switchover?.stallMs).toBeGreaterThan(0);
      expect(now?.replication?.switchover?.outcome).toBe('took-over');
      expect(pair.logOf('primary')).toContain('"switchover.stepped-down"');
      expect(pair.logOf('backup')).toContain('"switchover.done"');
    } finally {
      await cap.dispose();
    }
  }, 180_000);

  it('20 switchovers in a row, back and forth, under a curl download and 100 echo streams: no connection lost', async () => {
    const l = lab();
    const size = 24 * MIB;
    const { service, want } = prepareService(size);
    // A rejoining backup replays 100 connections' snapshots while two cores run both nodes and
    // all the clients: the default 300 ms of silence would be taken for a dead primary.
    const tolerant = ['--dead-after', '1500'];
    await pair.start(service, PORT, { primary: tolerant, backup: tolerant });
    await pair.waitUntil('the VIP answers', () => vipAnswersHttp(l), 20_000);

    const cap = await captureClientRsts(l);
    try {
      // Both last about 40 s at these rates, longer than 20 switchovers take.
      const conns = 100;
      const bytes = 192 * 1024;
      const clients = startClients({ want, rate: 600 * 1024, curlTimeoutMs: 150_000, conns, bytes, echoRate: 5 * 1024 });
      await pair.waitUntil('download and every echo stream under way', async () => {
        if (clients.download.finished() || clients.echo.exited()) throw new Error(`a client ended before the switchovers: ${clients.echo.output().slice(-500)}`);
        return clients.download.bytes() > 0 && clients.echo.progress() >= conns * 4096;
      }, 60_000);

      let current: PairRole = 'primary';
      const stalls: number[] = [];
      for (let i = 1; i <= 20; i++) {
        // The old primary rejoined and got every open connection by snapshot (reintegration).
        await pair.waitUntil(`switchover ${i}: the ${current}-namespace node protected`, async () => {
          const st = await pair.status(current);
          return st?.role === 'primary' && st.protected;
        }, 30_000);
        const r = await switchover(current);
        expect(r.code, `switchover ${i}: ${r.stdout}${r.stderr}\n${pair.logs()}`).toBe(0);
        stalls.push(Number(/stall ([\d.]+) ms/.exec(r.stdout)?.[1]));
        current = current === 'primary' ? 'backup' : 'primary';
      }
      // All 20 happened while both clients were still running.
      expect({ downloaded: clients.download.finished(), echoEnded: clients.echo.exited() }, `a client ended before the last switchover (stalls ${stalls.join(', ')} ms): ${clients.echo.output().slice(-1500)}`).toEqual({ downloaded: false, echoEnded: false });

      await clients.verify(cap, 'traffic across 20 switchovers');
      expect((await pair.status(current))?.epoch).toBe(21);
      expect(stalls.every((ms) => ms > 0), `stalls: ${stalls.join(', ')}`).toBe(true);
    } finally {
      await cap.dispose();
    }
  }, 180_000);

  it('a primary without a backup refuses the switchover in one line (exit 1) and serves on', async () => {
    const { service } = prepareService(1024);
    pair.startNode('primary', service, PORT);
    await pair.waitUntil('primary control socket', async () => (await pair.status('primary')) !== null, 30_000);
    const r = await switchover('primary');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^understudy: switchover refused: no backup attached[^\n]*\n$/);
    const st = await pair.status('primary');
    expect(st?.role).toBe('primary');
    expect(st?.replication?.switchover?.outcome).toBe('refused');
  }, 60_000);
});
