// `understudy node` end to end: the real command in the primary namespace serving a directory on
// the VIP through a tun device and proxy ARP, real curl and ping on the client, then SIGTERM and a
// check that the node exited 0 and left no route, proxy entry or tun device behind.

import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { paceToNode } from '../../scripts/lab/pace.js';
import { spawnSoloNode } from './helpers/cli.js';
import { curl, ping } from './helpers/clients.js';
import { useLab } from './helpers/lab-fixture.js';
import { OutputWatch } from './helpers/output-watch.js';

const TUN = 'ustest0';
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('understudy node in the lab', () => {
  const lab = useLab();
  const dir = mkdtempSync(join(tmpdir(), 'understudy-node-lab-'));
  const www = join(dir, 'www');
  const out = join(dir, 'out');
  const blob = randomBytes(1024 * 1024);
  let child: ChildProcess | undefined;
  let exited: Promise<[number | null, NodeJS.Signals | null]> = new Promise(() => {});
  let output: OutputWatch | undefined;

  afterAll(async () => {
    // lab.destroy() (in useLab) kills the node if a test failed before SIGTERM.
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts and reports ready', async () => {
    const l = lab();
    for (const d of [www, out]) rmSync(d, { recursive: true, force: true });
    await l.exec('primary', 'mkdir', ['-p', www, out]);
    writeFileSync(join(www, 'blob.bin'), blob);
    writeFileSync(join(www, 'slow.bin'), randomBytes(16 * 1024 * 1024));
    writeFileSync(join(www, 'index.html'), '<h1>understudy</h1>\n');

    child = spawnSoloNode(l, { service: `http-static:${www}`, tun: TUN, control: join(dir, 'control.sock') });
    exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    output = new OutputWatch(child);
    await output.waitFor(/ node\.ready /, 30_000, exited);

    // The kernel side is in place: route into the tun, proxy ARP on the LAN.
    const route = await l.exec('primary', 'ip', ['route', 'show', `${l.addr.vip}/32`]);
    expect(route.stdout).toContain(`dev ${TUN}`);
    const proxy = await l.exec('primary', 'ip', ['neigh', 'show', 'proxy']);
    expect(proxy.stdout).toContain(l.addr.vip);

    // Ready means routable; still poll once so a slow first ARP exchange cannot fail later tests.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const r = await curl(l.ns.client, [`http://${l.addr.vip}/`], [join(out, 'probe.html')], 5_000);
      if (r.exitCode === 0 && r.transfers[0]?.httpCode === 200) break;
      if (Date.now() > deadline) throw new Error(`the VIP never answered HTTP: ${r.stderr}\n${output.text()}`);
      await new Promise((res) => setTimeout(res, 250));
    }
  });

  it('serves a 1 MiB file byte-exact to curl', async () => {
    const l = lab();
    const file = join(out, 'blob.bin');
    const r = await curl(l.ns.client, [`http://${l.addr.vip}/blob.bin`], [file], 30_000);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.transfers[0]?.httpCode).toBe(200);
    expect(sha256(readFileSync(file))).toBe(sha256(blob));
  });

  it('answers a Range request with 206 and the right bytes', async () => {
    const l = lab();
    const file = join(out, 'range.bin');
    const r = await curl(l.ns.client, [`http://${l.addr.vip}/blob.bin`], [file], 30_000, ['-r', '1000-4999']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.transfers[0]?.httpCode).toBe(206);
    expect(readFileSync(file).equals(blob.subarray(1000, 5000))).toBe(true);
  });

  it('serves two requests over one keep-alive connection', async () => {
    const l = lab();
    const a = join(out, 'ka1.html');
    const b = join(out, 'ka2.bin');
    const r = await curl(l.ns.client, [`http://${l.addr.vip}/index.html`, `http://${l.addr.vip}/blob.bin`], [a, b], 30_000);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.transfers.map((t) => t.httpCode)).toEqual([200, 200]);
    // curl reports the connections it had to open for each transfer: the second reused the first.
    expect(r.transfers.map((t) => t.numConnects)).toEqual([1, 0]);
    expect(readFileSync(a, 'utf8')).toBe('<h1>understudy</h1>\n');
    expect(sha256(readFileSync(b))).toBe(sha256(blob));
  });

  it('streams a 256 MiB file byte-exact without holding it in memory', async () => {
    const l = lab();
    const size = 256 * 1024 * 1024;
    const made = await l.exec('primary', 'sh', ['-c', `head -c ${size} /dev/urandom > ${www}/large.bin && sha256sum ${www}/large.bin`], { timeoutMs: 60_000 });
    const expected = made.stdout.split(' ')[0];
    const got = await l.exec('client', 'sh', ['-c', `curl -sS --max-time 120 http://${l.addr.vip}/large.bin | sha256sum`], { timeoutMs: 130_000 });
    expect(got.stdout.split(' ')[0], got.stderr).toBe(expected);
    // Peak resident memory of the node process: reading the file whole would push it past the size.
    const status = readFileSync(`/proc/${child?.pid}/status`, 'utf8');
    const peakKiB = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]);
    expect(peakKiB * 1024).toBeLessThan(size * 0.75);
    rmSync(join(www, 'large.bin'), { force: true });
  }, 180_000);

  it('answers ping on the VIP', async () => {
    const l = lab();
    const r = await ping(l.ns.client, l.addr.vip, 3);
    expect(r.received, r.output).toBeGreaterThan(0);
  });

  it('a second node on the same tun fails with exit 1 and one line, leaving the first serving', async () => {
    const l = lab();
    const second = l.spawn('primary', process.execPath, [
      'bin/understudy.js', 'node', '--vip', l.addr.vip, '--port', '80', '--service', 'echo', '--tun', TUN,
      '--control', join(dir, 'second.sock'),
    ]);
    const watch = new OutputWatch(second);
    const [code] = (await once(second, 'exit')) as [number | null];
    expect(code, watch.text()).toBe(1);
    const last = watch.text().trimEnd().split('\n').at(-1) ?? '';
    expect(last).toMatch(new RegExp(`^understudy: cannot open tun device "${TUN}": `));
    const route = await l.exec('primary', 'ip', ['route', 'show', `${l.addr.vip}/32`]);
    expect(route.stdout).toContain(`dev ${TUN}`);
    const r = await curl(l.ns.client, [`http://${l.addr.vip}/index.html`], [join(out, 'after.html')], 10_000);
    expect(r.transfers[0]?.httpCode, r.stderr).toBe(200);
  });

  it('logs each connection with its 4-tuple, and bytes and duration on close', () => {
    const text = output?.text() ?? '';
    expect(text).toMatch(/ conn\.open remote=198\.18\.0\.10:\d+ local=198\.18\.0\.100:80/);
    expect(text).toMatch(/ conn\.close remote=198\.18\.0\.10:\d+ .*in=\d+ out=\d+ ms=\d+/);
  });

  it('stops on SIGTERM with exit 0, resets open connections, and removes its route, proxy entry and tun', async () => {
    const l = lab();
    if (child === undefined || output === undefined) throw new Error('the node was not started');
    const paced = await paceToNode(l, 'client', 512 * 1024);
    try {
      // A download that would take 30 s: the node must not wait for it, and curl must learn at once.
      // The wire is paced, not curl's reads (scripts/lab/pace.ts): the node must still be sending
      // when it stops, not have the whole file in the client's receive buffer already.
      const slow = l.exec('client', 'curl', ['-sS', '--max-time', '20', '-o', '/dev/null', `http://${l.addr.vip}/slow.bin`], {
        allowFailure: true,
        timeoutMs: 60_000,
      });
      const opened = output.lines.filter((x) => / conn\.open /.test(x)).length;
      const deadline = Date.now() + 10_000;
      while (output.lines.filter((x) => / conn\.open /.test(x)).length === opened && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 50));
      }
      await new Promise((res) => setTimeout(res, 500));
      const killedAt = Date.now();
      child.kill('SIGTERM');
      const [code, signal] = await Promise.race([
        exited,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no exit 15 s after SIGTERM:\n${output?.text()}`)), 15_000)),
      ]);
      expect({ code, signal }, output.text()).toEqual({ code: 0, signal: null });
      expect(output.text()).toMatch(/ node\.stopped reason=SIGTERM exit=0/);
      const route = await l.exec('primary', 'ip', ['route', 'show', `${l.addr.vip}/32`]);
      expect(route.stdout.trim()).toBe('');
      const proxy = await l.exec('primary', 'ip', ['neigh', 'show', 'proxy']);
      expect(proxy.stdout).not.toContain(l.addr.vip);
      const link = await l.exec('primary', 'ip', ['link', 'show', TUN], { allowFailure: true });
      expect(link.code).not.toBe(0);
      const download = await slow;
      expect(download.code, download.stderr).not.toBe(0);
      expect(download.stderr).toMatch(/reset/i);
      expect(Date.now() - killedAt).toBeLessThan(10_000);
    } finally {
      await paced.undo();
    }
  }, 90_000);
});
