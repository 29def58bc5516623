// Planned switchover with real Linux clients (issue 3 item 7, issue 4 item 4): a primary and a
// backup `understudy node` in the lab serve one module that answers a curl download and echo
// streams at once; `understudy switchover` swaps their roles mid-transfer and the clients notice
// nothing: curl exits 0 with the same SHA-256, every echoed byte comes back once, no RST on the
// client's interface. A primary without a backup refuses, in one line.

import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { run, type RunResult } from '../../bench/proc.js';
import { Capture, describeRsts, RST_FILTER } from './helpers/capture.js';
import { curl } from './helpers/clients.js';
import { PY_MANY_ECHO } from './helpers/echo-clients.js';
import { useLab } from './helpers/lab-fixture.js';
import { ReplicatedPair, type PairRole } from './helpers/replicated-pair.js';

const PORT = 80;
const MIB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('planned switchover in the lab', () => {
  const lab = useLab({ replicationLink: true });
  const dir = mkdtempSync(join(tmpdir(), 'understudy-switchover-'));
  const www = join(dir, 'www');
  const pair = new ReplicatedPair(lab, dir, 'usswo0');

  /** The real command, from the host namespace: a Unix socket path is not namespaced. */
  const switchover = (node: PairRole, extra: string[] = []): Promise<RunResult> =>
    run([process.execPath, 'bin/understudy.js', 'switchover', '--control', pair.control(node), ...extra], { timeoutMs: 30_000 });

  /** The module serving big.bin and echo, next to a file of `size` random bytes. */
  function prepareService(size: number): { service: string; blob: Buffer } {
    rmSync(www, { recursive: true, force: true });
    const blob = randomBytes(size);
    mkdirSync(www, { recursive: true });
    const mod = join(www, 'file-or-echo.mjs');
    copyFileSync('test/fixtures/file-or-echo.mjs', mod);
    writeFileSync(join(www, 'big.bin'), blob);
    return { service: `module:${mod}`, blob };
  }

  /**
   * The clients both tests run from the client namespace: a rate-limited curl of big.bin and
   * `conns` echo streams of `bytes` each, sent in `chunk`s. verify() waits for both and checks
   * what the issue asks of a switchover: curl exit 0 and the same SHA-256, every echoed byte back
   * once, and no RST on the capture.
   */
  function startClients(o: { size: number; blob: Buffer; rate: number; curlTimeoutMs: number; conns: number; bytes: number; chunk: number }) {
    const l = lab();
    const out = join(dir, 'download.bin');
    rmSync(out, { force: true });
    const download = curl(l.ns.client, [`http://${l.addr.vip}/big.bin`], [out], o.curlTimeoutMs, ['--limit-rate', String(o.rate)]);
    let downloaded = false;
    void download.finally(() => (downloaded = true));
    const echo = l.spawn('client', 'python3', ['-c', PY_MANY_ECHO, l.addr.vip, String(PORT), String(o.conns), String(o.bytes), String(o.chunk), '60']);
    let echoOut = '';
    echo.stdout?.setEncoding('utf8').on('data', (d: string) => (echoOut += d));
    echo.stderr?.setEncoding('utf8').on('data', (d: string) => (echoOut += d));
    const echoExited = once(echo, 'exit');
    let echoEnded = false;
    void echoExited.then(() => (echoEnded = true));
    return {
      downloaded: (): boolean => downloaded,
      echoEnded: (): boolean => echoEnded,
      echoOut: (): string => echoOut,
      downloadedBytes: (): number => (existsSync(out) ? statSync(out).size : 0),
      echoed: (): number => Number([...echoOut.matchAll(/^progress (\d+)$/gm)].at(-1)?.[1] ?? 0),
      async verify(cap: Capture, what: string): Promise<void> {
        const r = await download;
        expect(r.exitCode, `curl: ${r.stderr}\n${pair.logs()}`).toBe(0);
        const got = readFileSync(out);
        expect(got.length).toBe(o.size);
        expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(o.blob).digest('hex'));
        const [code] = (await Promise.race([echoExited, sleep(90_000).then(() => ['timeout'])])) as [number | string];
        expect(code, `echo client: ${echoOut.slice(-2000)}\n${pair.logs()}`).toBe(0);
        const verdict = JSON.parse(echoOut.trim().split('\n').at(-1) ?? '{}') as { ok: number; failures: string[] };
        expect(verdict.failures, pair.logs()).toEqual([]);
        expect(verdict.ok).toBe(o.conns);
        const rsts = await cap.stop();
        expect(rsts.packets, describeRsts(what, rsts)).toBe(0);
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
    const { service, blob } = prepareService(size);
    await pair.start(service, PORT);
    await pair.waitUntil('the VIP answers', async () => (await curl(l.ns.client, [`http://${l.addr.vip}/nothing`], [join(dir, 'probe')], 3000)).exitCode === 0, 20_000);

    const cap = await Capture.start({ ns: l.ns.client, iface: l.lanIface, filter: RST_FILTER, label: 'client' });
    try {
      // About 8 s for the download, 6 s for the echo streams: the switchover lands mid-way in both.
      const conns = 20;
      const bytes = 768 * 1024;
      const clients = startClients({ size, blob, rate: 4 * MIB, curlTimeoutMs: 120_000, conns, bytes, chunk: 128 * 1024 });

      await pair.waitUntil('download and echo 30% through', async () => {
        if (clients.downloaded()) throw new Error('the download ended before the switchover');
        return clients.downloadedBytes() >= size * 0.3 && clients.echoed() >= conns * bytes * 0.3;
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
    const { service, blob } = prepareService(size);
    // A rejoining backup replays 100 connections' snapshots while two cores run both nodes and
    // all the clients: the default 300 ms of silence would be taken for a dead primary.
    const tolerant = ['--dead-after', '1500'];
    await pair.start(service, PORT, { primary: tolerant, backup: tolerant });
    await pair.waitUntil('the VIP answers', async () => (await curl(l.ns.client, [`http://${l.addr.vip}/nothing`], [join(dir, 'probe')], 3000)).exitCode === 0, 20_000);

    const cap = await Capture.start({ ns: l.ns.client, iface: l.lanIface, filter: RST_FILTER, label: 'client' });
    try {
      // Both last about 40 s at these rates, longer than 20 switchovers take.
      const conns = 100;
      const bytes = 192 * 1024;
      const clients = startClients({ size, blob, rate: 600 * 1024, curlTimeoutMs: 150_000, conns, bytes, chunk: 5 * 1024 });
      await pair.waitUntil('download and every echo stream under way', async () => {
        if (clients.downloaded() || clients.echoEnded()) throw new Error(`a client ended before the switchovers: ${clients.echoOut().slice(-500)}`);
        return clients.downloadedBytes() > 0 && clients.echoed() >= conns * 4096;
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
      expect({ downloaded: clients.downloaded(), echoEnded: clients.echoEnded() }, `a client ended before the last switchover (stalls ${stalls.join(', ')} ms): ${clients.echoOut().slice(-1500)}`).toEqual({ downloaded: false, echoEnded: false });

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
