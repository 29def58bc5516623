// Failover under the services a user brings (issue 4): `proxy:` in front of a real Linux TCP server
// (python3 -m http.server) and `module:` with the user's own code, each run as a primary and a
// backup `understudy node` in the lab. The backup's copy of the service is its own: the proxy's
// replica connects to the backend on the backup host, the module is loaded again there
// (ARCHITECTURE.md 5.5, docs/services.md). The primary is SIGKILLed part-way through real client
// traffic; the client must notice nothing: exit 0, every byte once (SHA-256), no RST on its wire.

import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { LabNode } from '../../scripts/lab.js';
import { BLOB_CHUNK, blobChunk } from './fixtures/download-app.mjs';
import { describeRsts } from './helpers/capture.js';
import { captureClientRsts, expectNoRst, sha256Hex } from './helpers/client-checks.js';
import { paceToNode } from '../../scripts/lab/pace.js';
import { curl, type CurlResult } from './helpers/clients.js';
import { useLab } from './helpers/lab-fixture.js';
import { ReplicatedPair } from './helpers/replicated-pair.js';

const TUN = 'ussvf0';
const BACKEND_PORT = 8081;
const TALLY_PORT = 7000;
const MIB = 1024 * 1024;
/**
 * The downloads' own source ports, to pick their lines out of the backup's log; one per test,
 * because the client keeps a closed connection's port in TIME-WAIT.
 */
const DOWNLOAD_PORT = 41234;
const UNPROTECTED_PORT = 41235;
const BEHIND_PORT = 41236;
const DOWNLOAD_APP = resolve('test/lab/fixtures/download-app.mjs');
const TALLY_APP = resolve('test/lab/fixtures/tally-lines.mjs');
const PACED_SERVER = resolve('test/lab/fixtures/paced-file-server.py');


/** A directory for a backend: hello.txt (the readiness probe) and `files`, with `mtime` when given. */
function writeSite(path: string, files: Record<string, Uint8Array | string>, mtime?: Date): void {
  mkdirSync(path, { recursive: true });
  for (const [name, data] of Object.entries({ 'hello.txt': 'hello\n', ...files })) {
    writeFileSync(join(path, name), data);
    if (mtime !== undefined) utimesSync(join(path, name), mtime, mtime);
  }
}

describe('failover under proxy: and module: services', () => {
  const lab = useLab({ replicationLink: true });
  const dir = mkdtempSync(join(tmpdir(), 'understudy-services-failover-'));
  const pair = new ReplicatedPair(lab, dir, TUN);
  const backends: ChildProcess[] = [];

  afterEach(async () => {
    await pair.stop();
    for (const b of backends.splice(0)) if (b.exitCode === null && b.signalCode === null) b.kill('SIGKILL');
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** `python3 -m http.server` on 127.0.0.1 inside `node`, serving `www`; resolves once it accepts. */
  function startHttpServer(node: LabNode, www: string): Promise<void> {
    return startBackend(node, ['-m', 'http.server', String(BACKEND_PORT), '--protocol', 'HTTP/1.1', '--bind', '127.0.0.1', '--directory', www]);
  }

  /** A python3 backend listening on 127.0.0.1:BACKEND_PORT inside `node`; resolves once it accepts. */
  async function startBackend(node: LabNode, args: string[]): Promise<void> {
    const l = lab();
    const child = l.spawn(node, 'python3', args, { stdio: 'ignore' });
    backends.push(child);
    const connects = `import socket; socket.create_connection(('127.0.0.1', ${BACKEND_PORT}), 1).close()`;
    await pair.waitUntil(`the backend in the ${node}`, async () => {
      if (child.exitCode !== null) throw new Error(`python3 ${args.join(' ')} in the ${node} exited with ${child.exitCode}`);
      return (await l.exec(node, 'python3', ['-c', connects], { allowFailure: true })).code === 0;
    }, 20_000);
  }

  /** `python3 -m http.server` on each node, each serving its own directory, behind `proxy:` on both. */
  async function startProxyOverHttpServers(www: { primary: string; backup: string }): Promise<void> {
    await startHttpServer('primary', www.primary);
    await startHttpServer('backup', www.backup);
    await pair.start(`proxy:127.0.0.1:${BACKEND_PORT}`, 80);
    await untilHttpAnswers('/hello.txt');
  }

  /** The client's neighbour entry may still name a node of an earlier test: wait until the VIP answers. */
  async function untilHttpAnswers(path: string): Promise<void> {
    const l = lab();
    await pair.waitUntil('the VIP answers', async () => (await curl(l.ns.client, [`http://${l.addr.vip}${path}`], [join(dir, 'probe')], 3000)).exitCode === 0, 20_000);
  }

  /**
   * curl fetching `urls` into `outs` (one connection where the server keeps it alive) over a client
   * link paced at `wireRate`, with the primary SIGKILLed once the `watched` files hold 40% of
   * `size` together. `beforeKill` runs just before the kill (the backup's status is read there,
   * while it still has its replica).
   */
  async function downloadAcrossKill(
    urls: string[],
    outs: string[],
    watched: string[],
    size: number,
    extra: string[],
    beforeKill: () => Promise<void>,
    wireRate = 4 * MIB,
  ): Promise<CurlResult> {
    const l = lab();
    for (const o of outs) rmSync(o, { force: true });
    const have = (): number => watched.reduce((n, f) => n + (existsSync(f) ? statSync(f).size : 0), 0);
    // About 6 s for 24 MiB, paced on the wire (not by curl, which lets the server run ahead into
    // the client's buffer): the kill lands part-way on the bytes the client has, with the rest
    // still to cross the wire.
    const paced = await paceToNode(l, 'client', wireRate);
    try {
      const download = curl(l.ns.client, urls, outs, 90_000, extra);
      let finished = false;
      void download.finally(() => (finished = true));
      await pair.waitUntil('40% downloaded', () => finished || have() >= size * 0.4, 60_000);
      expect(finished, `the download ended before the kill point\n${pair.logs()}`).toBe(false);
      await beforeKill();
      pair.kill('primary');
      return await download;
    } finally {
      await paced.undo();
    }
  }

  /**
   * A python client in the client namespace that prints `progress <n>` lines, then one JSON line;
   * the primary is SIGKILLed once progress reaches `killAt` (after `beforeKill`). Resolves with the
   * exit code, the parsed JSON ({} if none) and the client's output for failure messages.
   */
  async function pythonClientAcrossKill<T>(
    what: string,
    script: string,
    args: string[],
    killAt: number,
    beforeKill: () => Promise<void> = async () => undefined,
  ): Promise<{ code: number | null; result: Partial<T>; output: string }> {
    const client = lab().spawn('client', 'python3', ['-c', script, ...args]);
    let out = '';
    let err = '';
    client.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
    client.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = once(client, 'exit') as Promise<[number | null]>;
    const progress = (): number => Number([...out.matchAll(/^progress (\d+)$/gm)].at(-1)?.[1] ?? 0);
    await pair.waitUntil(`the ${what} 40% through`, () => {
      if (client.exitCode !== null) throw new Error(`the ${what} ended early: ${out.slice(-2000)}\n${err}\n${pair.logs()}`);
      return progress() >= killAt;
    }, 60_000);
    await beforeKill();
    pair.kill('primary');
    const [code] = await exited;
    let result: Partial<T> = {};
    try {
      result = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Partial<T>;
    } catch {
      // no verdict line: the exit code and the output tell why
    }
    return { code, result, output: `${what}: ${out.slice(-2000)}\n${err}\n${pair.logs()}` };
  }

  async function expectTakenOver(): Promise<void> {
    const st = await pair.status('backup');
    expect(st?.role).toBe('primary');
    expect(st?.epoch).toBe(2);
    expect(pair.events('backup', 'takeover.done')).toHaveLength(1);
  }

  it('proxy: python3 -m http.server on each node, keep-alive: a 24 MiB download across a SIGKILL, then a request the backup answers: exit 0, same SHA-256, no RST; the header divergence is counted once', async () => {
    const l = lab();
    const size = 24 * MIB;
    const blob = randomBytes(size);
    // Each node's backend serves its own copy of the files, as on two real hosts. The copies differ
    // on purpose in their modification time, so the backup's replies differ from the primary's in
    // the Last-Modified header (same length, other bytes): a divergence inside bytes the primary
    // had already sent, which must be counted and then overruled by the primary's.
    const www = { primary: join(dir, 'www-primary'), backup: join(dir, 'www-backup') };
    writeSite(www.primary, { 'after.txt': 'answered after the takeover\n', 'big.bin': blob }, new Date('2026-01-05T10:00:00Z'));
    writeSite(www.backup, { 'after.txt': 'answered after the takeover\n', 'big.bin': blob }, new Date('2026-01-06T10:00:00Z'));
    await startProxyOverHttpServers(www);

    const cap = await captureClientRsts(l);
    try {
      // One connection (HTTP/1.1 keep-alive): a small file, big.bin across the kill, then after.txt,
      // which only the backup's backend answers, through the backup's copy of the proxy.
      const outs = ['hello.txt', 'big.bin', 'after.txt'].map((f) => join(dir, `proxy-${f}`));
      const headers = join(dir, 'proxy-headers.txt');
      let divergencesBeforeKill = -1;
      const r = await downloadAcrossKill(
        ['/hello.txt', '/big.bin', '/after.txt'].map((p) => `http://${l.addr.vip}${p}`),
        outs,
        [outs[1]!],
        size,
        ['-D', headers, '--local-port', String(DOWNLOAD_PORT)],
        async () => {
          divergencesBeforeKill = (await pair.status('backup'))?.replication?.applied?.divergences ?? -1;
        },
      );
      expect(r.exitCode, `curl: ${r.stderr}\n${pair.logs()}`).toBe(0);
      expect(r.transfers.map((t) => [t.httpCode, t.numConnects])).toEqual([[200, 1], [200, 0], [200, 0]]);
      const got = readFileSync(outs[1]!);
      expect(got.length).toBe(size);
      expect(sha256Hex(got)).toBe(sha256Hex(blob));
      expect(readFileSync(outs[2]!, 'utf8')).toBe('answered after the takeover\n');
      // The client has the primary's headers for big.bin, sent before the kill.
      const heads = readFileSync(headers, 'latin1').split(/(?<=\r\n\r\n)/);
      expect(heads).toHaveLength(3);
      expect(heads[1]).toContain('Last-Modified: Mon, 05 Jan 2026 10:00:00 GMT');
      // ... and the backup's for after.txt: its own backend answered it.
      expect(heads[2]).toContain('Last-Modified: Tue, 06 Jan 2026 10:00:00 GMT');
      await expectTakenOver();

      // This connection's divergence: one (counted at the first differing byte, in the first
      // reply's headers), before the first byte of big.bin's body.
      const mine = pair
        .events('backup', 'replication.divergence')
        .map((e) => String(e.detail))
        .filter((d) => d.includes(`(${l.addr.client}:${DOWNLOAD_PORT})`));
      expect(mine, pair.logs()).toHaveLength(1);
      const offset = Number(/from offset (\d+)/.exec(mine[0]!)?.[1] ?? NaN);
      const bodyStarts = Buffer.byteLength(heads[0]! + 'hello\n' + heads[1]!, 'latin1');
      expect(offset).toBeGreaterThanOrEqual(0);
      expect(offset).toBeLessThan(bodyStarts);
      // The backup's status counted it (a probe may add a Date divergence of its own).
      expect(divergencesBeforeKill).toBeGreaterThanOrEqual(1);
      expect(divergencesBeforeKill).toBe(pair.events('backup', 'replication.divergence').length);

      await expectNoRst(cap, 'proxy download across the failover');
    } finally {
      await cap.dispose();
    }
  }, 120_000);

  it('proxy: 12 parallel downloads through python3 -m http.server across a SIGKILL: every file whole, no RST, no divergence inside a body', async () => {
    const l = lab();
    const files = 12;
    const each = 4 * MIB;
    const blobs = Array.from({ length: files }, () => randomBytes(each));
    // Same contents and modification times on both nodes: only a Date that crosses a second
    // between the two backends can differ, and only in the headers.
    const www = { primary: join(dir, 'www-many-primary'), backup: join(dir, 'www-many-backup') };
    const site = Object.fromEntries(blobs.map((b, i) => [`f${i}.bin`, b]));
    for (const path of Object.values(www)) writeSite(path, site, new Date('2026-01-05T10:00:00Z'));
    await startProxyOverHttpServers(www);

    const cap = await captureClientRsts(l);
    try {
      const outs = blobs.map((_, i) => join(dir, `many-${i}.bin`));
      const urls = blobs.map((_, i) => `http://${l.addr.vip}/f${i}.bin`);
      // One connection per file, all at once, sharing 1 MiB/s each on the wire.
      const parallel = ['--parallel', '--parallel-immediate', '--parallel-max', String(files)];
      const r = await downloadAcrossKill(urls, outs, outs, files * each, parallel, async () => undefined, files * MIB);
      expect(r.exitCode, `curl: ${r.stderr}\n${pair.logs()}`).toBe(0);
      expect(r.transfers.map((t) => t.httpCode)).toEqual(blobs.map(() => 200));
      blobs.forEach((b, i) => expect(sha256Hex(readFileSync(outs[i]!)), `file ${i}`).toBe(sha256Hex(b)));
      await expectTakenOver();
      expect(pair.events('backup', 'takeover.attached')[0]?.sockets).toBeGreaterThanOrEqual(files);
      // python's headers are under 300 bytes: any divergence is a Date in them, never in a body.
      for (const e of pair.events('backup', 'replication.divergence')) {
        expect(Number(/from offset (\d+)/.exec(String(e.detail))?.[1] ?? NaN), String(e.detail)).toBeLessThan(300);
      }
      await expectNoRst(cap, 'parallel proxy downloads across the failover');
    } finally {
      await cap.dispose();
    }
  }, 120_000);

  it('proxy: with no backend on the backup, the backup says the connection is unprotected, and the takeover resets it (RST), never ends a cut reply with a FIN', async () => {
    const l = lab();
    const size = 24 * MIB;
    const blob = randomBytes(size);
    const www = join(dir, 'www-primary-only');
    writeSite(www, { 'big.bin': blob });
    await startHttpServer('primary', www);
    await pair.start(`proxy:127.0.0.1:${BACKEND_PORT}`, 80);
    await untilHttpAnswers('/hello.txt');

    const cap = await captureClientRsts(l);
    try {
      const out = join(dir, 'unprotected.bin');
      let failedBeforeKill = -1;
      const r = await downloadAcrossKill([`http://${l.addr.vip}/big.bin`], [out], [out], size, ['--local-port', String(UNPROTECTED_PORT)], async () => {
        const mine = (): string[] =>
          pair
            .events('backup', 'replication.replica-failed')
            .map((e) => String(e.detail))
            .filter((d) => d.includes(`(${l.addr.client}:${UNPROTECTED_PORT})`));
        await pair.waitUntil('the backup reports the connection unprotected', () => mine().length > 0, 10_000);
        expect(mine()).toEqual([expect.stringContaining('proxy: cannot connect to backend 127.0.0.1:8081 (ECONNREFUSED)')]);
        failedBeforeKill = (await pair.status('backup'))?.replication?.applied?.replicaFailed ?? -1;
      });
      // 56: "Failure when receiving data from the peer" — the connection was reset. A FIN after the
      // primary's bytes would have been exit 18 (a transfer cut short, looking closed on purpose).
      expect(r.exitCode, `curl: ${r.stderr}\n${pair.logs()}`).toBe(56);
      expect(r.stderr).toMatch(/reset/i);
      // What did arrive is the file's beginning, byte for byte.
      const got = readFileSync(out);
      expect(got.length).toBeGreaterThanOrEqual(size * 0.4);
      expect(got.length).toBeLessThan(size);
      expect(sha256Hex(got)).toBe(sha256Hex(blob.subarray(0, got.length)));
      await expectTakenOver();
      // Counted with the others that failed (the probe's too), in the status and at takeover.
      const failures = pair.events('backup', 'replication.replica-failed').length;
      expect(failedBeforeKill).toBe(failures);
      expect(pair.events('backup', 'takeover.attached')[0]?.replicaFailed).toBe(failures);
      // No divergence: a replica that failed is no longer compared.
      expect(pair.events('backup', 'replication.divergence')).toEqual([]);
      const rsts = await cap.stop();
      const fromVip = rsts.lines.filter((line) => line.includes(`${l.addr.vip}.80 > ${l.addr.client}.${UNPROTECTED_PORT}:`));
      expect(fromVip.length, describeRsts('reset of the unprotected connection', rsts)).toBeGreaterThanOrEqual(1);
    } finally {
      await cap.dispose();
    }
  }, 120_000);

  it('proxy: the backup\'s backend slower than the client, so its copy is behind the primary at the kill: it catches up after the takeover: exit 0, same SHA-256, no RST, no divergence', async () => {
    const l = lab();
    const size = 16 * MIB;
    const blob = randomBytes(size);
    const www = join(dir, 'www-paced');
    writeSite(www, { 'big.bin': blob });
    // Replies that depend on the file only, so the two backends match byte for byte; the backup's
    // sends at half the client's rate.
    await startBackend('primary', [PACED_SERVER, String(BACKEND_PORT), www, '0']);
    await startBackend('backup', [PACED_SERVER, String(BACKEND_PORT), www, String(2 * MIB)]);
    // Debug on the backup: its takeover.connection lines say how far its copy had written.
    await pair.start(`proxy:127.0.0.1:${BACKEND_PORT}`, 80, { backup: ['--log-level', 'debug'] });
    await untilHttpAnswers('/hello.txt');

    const cap = await captureClientRsts(l);
    try {
      const out = join(dir, 'behind.bin');
      let divergencesBeforeKill = -1;
      const r = await downloadAcrossKill([`http://${l.addr.vip}/big.bin`], [out], [out], size, ['--local-port', String(BEHIND_PORT)], async () => {
        divergencesBeforeKill = (await pair.status('backup'))?.replication?.applied?.divergences ?? -1;
      });
      expect(r.exitCode, `curl: ${r.stderr}\n${pair.logs()}`).toBe(0);
      const got = readFileSync(out);
      expect(got.length).toBe(size);
      expect(sha256Hex(got)).toBe(sha256Hex(blob));
      await expectTakenOver();
      // The case this test is for: the backup's copy had written less than the primary had sent.
      const behind = pair
        .events('backup', 'takeover.connection')
        .filter((e) => typeof e.replicaBehind === 'number' && e.replicaBehind > MIB);
      expect(behind.length, pair.logs()).toBeGreaterThanOrEqual(1);
      expect(divergencesBeforeKill).toBe(0);
      expect(pair.events('backup', 'replication.divergence')).toEqual([]);
      await expectNoRst(cap, 'download from a lagging backup copy');
    } finally {
      await cap.dispose();
    }
  }, 120_000);

  it('proxy: a 16 MiB upload across a SIGKILL reaches the backup\'s backend whole: the SHA-256 it answers is the client\'s, no RST', async () => {
    const l = lab();
    const size = 16 * MIB;
    const www = join(dir, 'www-upload');
    writeSite(www, {});
    await startBackend('primary', [PACED_SERVER, String(BACKEND_PORT), www, '0']);
    await startBackend('backup', [PACED_SERVER, String(BACKEND_PORT), www, '0']);
    await pair.start(`proxy:127.0.0.1:${BACKEND_PORT}`, 80);
    await untilHttpAnswers('/hello.txt');

    const cap = await captureClientRsts(l);
    try {
      const { code, result, output } = await pythonClientAcrossKill<{ reply: string; sha256: string }>(
        'upload client',
        PY_UPLOAD,
        [l.addr.vip, '80', String(size), String(4 * MIB)],
        size * 0.4,
      );
      expect(code, output).toBe(0);
      // Every byte, once and in order, in the backup's backend: the primary's part replayed from
      // the log to the backup's copy of the proxy, the rest straight from the client.
      expect(result.reply).toBe(`HTTP/1.0 200 OK\r\nContent-Length: 65\r\n\r\n${result.sha256}\n`);
      await expectTakenOver();
      expect(pair.events('backup', 'replication.divergence')).toEqual([]);
      await expectNoRst(cap, 'upload across the failover');
    } finally {
      await cap.dispose();
    }
  }, 120_000);

  it('module: a (req, res) app streaming a generated 24 MiB body, across a SIGKILL: exit 0, same SHA-256, no RST, no divergence', async () => {
    const l = lab();
    const size = 24 * MIB;
    await pair.start(`module:${DOWNLOAD_APP}`, 80);
    await untilHttpAnswers('/');

    const cap = await captureClientRsts(l);
    try {
      const out = join(dir, 'module-download.bin');
      let divergencesBeforeKill = -1;
      const r = await downloadAcrossKill([`http://${l.addr.vip}/blob/${size / MIB}`], [out], [out], size, [], async () => {
        divergencesBeforeKill = (await pair.status('backup'))?.replication?.applied?.divergences ?? -1;
      });
      expect(r.exitCode, `curl: ${r.stderr}\n${pair.logs()}`).toBe(0);
      expect(r.transfers[0]?.httpCode).toBe(200);
      const expected = createHash('sha256');
      for (let i = 0; i < size / BLOB_CHUNK; i++) expected.update(blobChunk(i));
      const got = readFileSync(out);
      expect(got.length).toBe(size);
      expect(sha256Hex(got)).toBe(expected.digest('hex'));
      await expectTakenOver();
      // A deterministic app: the backup's copy wrote exactly the primary's bytes.
      expect(divergencesBeforeKill).toBe(0);
      expect(pair.events('backup', 'replication.divergence')).toEqual([]);
      await expectNoRst(cap, 'module download across the failover');
    } finally {
      await cap.dispose();
    }
  }, 120_000);

  it('module: a connection handler keeping a running total per connection, 8 connections across a SIGKILL: every answer right, no RST', async () => {
    const l = lab();
    await pair.start(`module:${TALLY_APP}`, TALLY_PORT);
    const conns = 8;
    const lines = 1500;
    const cap = await captureClientRsts(l);
    try {
      let divergencesBeforeKill = -1;
      const { code, result, output } = await pythonClientAcrossKill<{ ok: number; failures: string[] }>(
        'tally client',
        PY_TALLY_CLIENT,
        [l.addr.vip, String(TALLY_PORT), String(conns), String(lines), '400', '30'],
        conns * lines * 0.4,
        async () => {
          divergencesBeforeKill = (await pair.status('backup'))?.replication?.applied?.divergences ?? -1;
        },
      );
      expect(code, output).toBe(0);
      expect(result.failures, output).toEqual([]);
      expect(result.ok).toBe(conns);
      await expectTakenOver();
      expect(divergencesBeforeKill).toBe(0);
      expect(pair.events('backup', 'replication.divergence')).toEqual([]);
      await expectNoRst(cap, 'tally connections across the failover');
    } finally {
      await cap.dispose();
    }
  }, 120_000);
});

// Connections at once, each sending "ADD <n>" lines (seeded) at a paced rate from its own thread
// while another checks every answer against the running total it expects; connecting is retried
// while the VIP does not answer yet (a neighbour entry of an earlier test). Progress lines (answers
// checked, over all connections) let the test kill the primary mid-stream; the last line is JSON.
const PY_TALLY_CLIENT = String.raw`
import json, random, socket, sys, threading, time
host, port, conns, n, rate, idle = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
checked = [0] * conns
failures = []
ok = [0]
lock = threading.Lock()
def connect():
    deadline = time.time() + 20
    while True:
        try:
            return socket.create_connection((host, port), timeout=idle)
        except OSError:
            if time.time() > deadline: raise
            time.sleep(0.2)
def one(i):
    values = [random.Random(7000 + i).randint(-1000, 1000) for _ in range(n)]
    try:
        s = connect()
    except Exception as e:
        with lock: failures.append('conn %d: connect: %r' % (i, e))
        return
    def sender():
        t0 = time.time()
        try:
            for k, v in enumerate(values):
                s.sendall(b'ADD %d\n' % v)
                ahead = (k + 1) / rate - (time.time() - t0)
                if ahead > 0: time.sleep(ahead)
            s.shutdown(socket.SHUT_WR)
        except Exception as e:
            with lock: failures.append('conn %d: send: %r' % (i, e))
    th = threading.Thread(target=sender)
    th.start()
    f = s.makefile('rb')
    total = 0
    k = 0
    try:
        for line in f:
            if k >= n:
                with lock: failures.append('conn %d: answer beyond the last line: %r' % (i, line))
                break
            total += values[k]
            k += 1
            if line != b'%d %d\n' % (k, total):
                with lock: failures.append('conn %d: answer %d is %r, expected %r' % (i, k, line, b'%d %d\n' % (k, total)))
                break
            checked[i] = k
    except Exception as e:
        with lock: failures.append('conn %d: recv after %d answers: %r' % (i, k, e))
    th.join()
    s.close()
    if k == n and not any(x.startswith('conn %d:' % i) for x in failures):
        with lock: ok[0] += 1
    elif k != n:
        with lock: failures.append('conn %d: %d answers of %d before the end of the stream' % (i, k, n))
threads = [threading.Thread(target=one, args=(i,)) for i in range(conns)]
for t in threads: t.start()
while any(t.is_alive() for t in threads):
    print('progress %d' % sum(checked), flush=True)
    time.sleep(0.05)
for t in threads: t.join()
print(json.dumps({'ok': ok[0], 'failures': failures}), flush=True)
`;

// One PUT of seeded bytes, sent at a paced rate with progress lines (bytes handed to the kernel),
// then the reply read to the end; the last line is JSON with the reply and the body's SHA-256.
const PY_UPLOAD = String.raw`
import hashlib, json, random, socket, sys, time
host, port, n, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
data = random.Random(11).randbytes(n)
s = socket.create_connection((host, port), timeout=30)
s.sendall(b'PUT /upload HTTP/1.0\r\nContent-Length: %d\r\n\r\n' % n)
t0 = time.time()
off = 0
while off < n:
    off += s.send(data[off:off + 65536])
    print('progress %d' % off, flush=True)
    ahead = off / rate - (time.time() - t0)
    if ahead > 0: time.sleep(ahead)
reply = b''
while True:
    d = s.recv(4096)
    if not d: break
    reply += d
print(json.dumps({'reply': reply.decode('latin1'), 'sha256': hashlib.sha256(data).hexdigest()}), flush=True)
`;
