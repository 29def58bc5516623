// Failover with real Linux clients (issue 3): a primary and a backup `understudy node` in the lab
// (client, primary and backup namespaces on one LAN, plus a primary-backup replication link). The
// primary is SIGKILLed part-way through real traffic and the client must notice nothing: no RST on
// its interface, every byte exactly once. And cutting only the replication link must not make the
// backup take over: the LAN heartbeats say the primary is alive, which goes on unprotected.

import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { controlRequest } from '../../src/control/client.js';
import { Capture, describeRsts, RST_FILTER } from './helpers/capture.js';
import { curl } from './helpers/clients.js';
import { PY_MANY_ECHO } from './helpers/echo-clients.js';
import { useLab } from './helpers/lab-fixture.js';

const TUN = 'usfail0';
const PORT_HTTP = 80;
const PORT_ECHO = 7;
const REPL_PORT = 7070;
const MIB = 1024 * 1024;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Role = 'primary' | 'backup';
interface Status {
  role: string;
  epoch: number;
  protected: boolean;
  protectedReason: string | null;
  replication?: { peer: { state: string }; takeover: unknown; heartbeatAgeMs: number | null; lanHeartbeatAgeMs: number | null };
}

describe('failover in the lab', () => {
  const lab = useLab({ replicationLink: true });
  const dir = mkdtempSync(join(tmpdir(), 'understudy-failover-'));
  const www = join(dir, 'www');
  const keyFile = join(dir, 'repl.key');
  writeFileSync(keyFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  const nodes = new Map<Role, { child: ChildProcess; exited: Promise<unknown>; logFile: string; control: string }>();
  let run = 0;

  const logOf = (role: Role): string => {
    const n = nodes.get(role);
    return n === undefined || !existsSync(n.logFile) ? '' : readFileSync(n.logFile, 'utf8');
  };
  const logs = (): string => `--- primary log (tail)\n${logOf('primary').slice(-4000)}\n--- backup log (tail)\n${logOf('backup').slice(-4000)}`;

  function startNode(role: Role, service: string, port: number): void {
    const l = lab();
    const logFile = join(dir, `${role}-${run}.log`);
    const control = join(dir, `${role}-${run}.sock`);
    const fd = openSync(logFile, 'w');
    let child: ChildProcess;
    try {
      child = l.spawn(role, process.execPath, [
        'bin/understudy.js', 'node',
        '--role', role,
        '--replication', `${role === 'primary' ? l.addr.replPrimary : l.addr.replBackup}:${REPL_PORT}`,
        '--peer', `${role === 'primary' ? l.addr.replBackup : l.addr.replPrimary}:${REPL_PORT}`,
        '--key-file', keyFile,
        '--vip', l.addr.vip, '--port', String(port),
        '--service', service,
        '--lan', l.lanIface, '--tun', TUN,
        '--log-format', 'json',
        '--control', control,
      ], { stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    nodes.set(role, { child, exited: once(child, 'exit'), logFile, control });
  }

  async function status(role: Role): Promise<Status | null> {
    const n = nodes.get(role);
    if (n === undefined) return null;
    try {
      return (await controlRequest(n.control, 'status', {}, 2000)) as Status;
    } catch {
      return null;
    }
  }

  async function waitUntil(what: string, ok: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await ok())) {
      for (const [role, n] of nodes) {
        if (n.child.exitCode !== null || n.child.signalCode !== null) throw new Error(`the ${role} exited while waiting for ${what}\n${logs()}`);
      }
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s\n${logs()}`);
      await sleep(100);
    }
  }

  /** Backup first, then the primary; ready once the primary says it is protected and the VIP answers. */
  async function startPair(service: string, port: number): Promise<void> {
    run++;
    startNode('backup', service, port);
    await waitUntil('backup control socket', async () => (await status('backup')) !== null, 30_000);
    startNode('primary', service, port);
    await waitUntil('primary protected', async () => (await status('primary'))?.protected === true, 45_000);
  }

  async function stopNodes(): Promise<void> {
    for (const [, n] of nodes) {
      if (n.child.exitCode === null && n.child.signalCode === null) {
        n.child.kill('SIGTERM');
        const done = await Promise.race([n.exited.then(() => true), sleep(10_000).then(() => false)]);
        if (!done) n.child.kill('SIGKILL');
      }
    }
    nodes.clear();
  }

  function kill(role: Role): void {
    const pid = nodes.get(role)?.child.pid;
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
  }

  afterEach(async () => {
    await stopNodes();
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('curl downloads 64 MiB while the primary is SIGKILLed at 40%: exit 0, same SHA-256, no RST', async () => {
    const l = lab();
    rmSync(www, { recursive: true, force: true });
    await l.exec('primary', 'mkdir', ['-p', www]);
    const size = 64 * MIB;
    const blob = randomBytes(size);
    writeFileSync(join(www, 'big.bin'), blob);
    await startPair(`http-static:${www}`, PORT_HTTP);
    // The client's neighbour entry may still name a node of an earlier test: wait until the VIP answers.
    await waitUntil('the VIP answers', async () => (await curl(l.ns.client, [`http://${l.addr.vip}/nothing`], [join(dir, 'probe')], 3000)).exitCode === 0, 20_000);

    const cap = await Capture.start({ ns: l.ns.client, iface: l.lanIface, filter: RST_FILTER, label: 'client' });
    try {
      const out = join(dir, 'download.bin');
      rmSync(out, { force: true });
      // About 8 s at this rate: long enough to kill it part-way on the bytes the client has.
      const rate = 8 * MIB;
      const download = curl(l.ns.client, [`http://${l.addr.vip}/big.bin`], [out], 120_000, ['--limit-rate', String(rate)]);
      let finished = false;
      void download.finally(() => (finished = true));
      let killedAt = -1;
      while (!finished) {
        const have = existsSync(out) ? statSync(out).size : 0;
        if (have >= size * 0.4) {
          killedAt = have;
          kill('primary');
          break;
        }
        await sleep(5);
      }
      const r = await download;
      expect(killedAt, `the download ended before the kill point\n${logs()}`).toBeGreaterThan(0);
      expect(r.exitCode, `curl: ${r.stderr}\n${logs()}`).toBe(0);
      const got = readFileSync(out);
      expect(got.length).toBe(size);
      expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(blob).digest('hex'));
      const st = await status('backup');
      expect(st?.role).toBe('primary');
      expect(st?.epoch).toBe(2);
      expect(logOf('backup')).toContain('"takeover.done"');
      const rsts = await cap.stop();
      expect(rsts.packets, describeRsts('download across the failover', rsts)).toBe(0);
    } finally {
      await cap.dispose();
    }
  }, 180_000);

  it('a primary frozen (SIGSTOP) is taken over; resumed, it fences itself: download intact, no RST', async () => {
    const l = lab();
    rmSync(www, { recursive: true, force: true });
    await l.exec('primary', 'mkdir', ['-p', www]);
    const size = 32 * MIB;
    const blob = randomBytes(size);
    writeFileSync(join(www, 'big.bin'), blob);
    await startPair(`http-static:${www}`, PORT_HTTP);
    await waitUntil('the VIP answers', async () => (await curl(l.ns.client, [`http://${l.addr.vip}/nothing`], [join(dir, 'probe')], 3000)).exitCode === 0, 20_000);
    const cap = await Capture.start({ ns: l.ns.client, iface: l.lanIface, filter: RST_FILTER, label: 'client' });
    const pid = nodes.get('primary')?.child.pid as number;
    try {
      const out = join(dir, 'download.bin');
      rmSync(out, { force: true });
      const download = curl(l.ns.client, [`http://${l.addr.vip}/big.bin`], [out], 120_000, ['--limit-rate', String(4 * MIB)]);
      let finished = false;
      void download.finally(() => (finished = true));
      await waitUntil('40% downloaded', async () => finished || (existsSync(out) && statSync(out).size >= size * 0.4), 60_000);
      expect(finished, 'the download ended before the freeze').toBe(false);
      process.kill(pid, 'SIGSTOP');
      try {
        await waitUntil('the backup took over', async () => logOf('backup').includes('"takeover.done"'), 30_000);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      // Resumed, it hears the new primary's epoch on the LAN and stops speaking for the VIP.
      await waitUntil('the old primary fenced itself', async () => logOf('primary').includes('"replication.fenced-vip-released"'), 30_000);
      const proxy = await l.exec('primary', 'ip', ['neigh', 'show', 'proxy']);
      expect(proxy.stdout).not.toContain(l.addr.vip);
      expect((await status('primary'))?.protectedReason ?? '').toMatch(/fenced/);
      // Fencing won over "backup lost": the packets it held for the backup were dropped, not sent.
      expect(logOf('primary')).not.toContain('backup lost');
      const r = await download;
      expect(r.exitCode, `curl: ${r.stderr}\n${logs()}`).toBe(0);
      const got = readFileSync(out);
      expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(blob).digest('hex'));
      const rsts = await cap.stop();
      expect(rsts.packets, describeRsts('download across a frozen primary', rsts)).toBe(0);
    } finally {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // already gone
      }
      await cap.dispose();
    }
  }, 180_000);

  it('20 echo connections streaming both ways survive the SIGKILL: every byte back once, in order', async () => {
    const l = lab();
    await startPair('echo', PORT_ECHO);
    const conns = 20;
    const bytes = 3 * MIB;
    const cap = await Capture.start({ ns: l.ns.client, iface: l.lanIface, filter: RST_FILTER, label: 'client' });
    try {
      const client = l.spawn('client', 'python3', ['-c', PY_MANY_ECHO, l.addr.vip, String(PORT_ECHO), String(conns), String(bytes), String(256 * 1024), '60']);
      let out = '';
      let err = '';
      client.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
      client.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
      const exited = once(client, 'exit');
      const progress = (): number => {
        const m = [...out.matchAll(/^progress (\d+)$/gm)].at(-1);
        return m === undefined ? 0 : Number(m[1]);
      };
      await waitUntil('echo streams 40% through', async () => {
        if (client.exitCode !== null) throw new Error(`the echo client ended early: ${out}\n${err}`);
        return progress() >= conns * bytes * 0.4;
      }, 60_000);
      kill('primary');
      const [code] = (await Promise.race([exited, sleep(120_000).then(() => ['timeout'])])) as [number | string];
      const last = out.trim().split('\n').at(-1) ?? '';
      expect(code, `echo client: ${out.slice(-2000)}\n${err}\n${logs()}`).toBe(0);
      const result = JSON.parse(last) as { ok: number; failures: string[] };
      expect(result.failures, logs()).toEqual([]);
      expect(result.ok).toBe(conns);
      expect(logOf('backup')).toContain('"takeover.done"');
      const rsts = await cap.stop();
      expect(rsts.packets, describeRsts('echo across the failover', rsts)).toBe(0);
    } finally {
      await cap.dispose();
    }
  }, 180_000);

  it('cutting only the replication link causes no takeover; the primary says it is unprotected', async () => {
    const l = lab();
    await startPair('echo', PORT_ECHO);
    await l.exec('primary', 'ip', ['link', 'set', l.replIface as string, 'down']);
    try {
      await waitUntil('primary reports unprotected', async () => {
        const s = await status('primary');
        return s !== null && s.protected === false && s.replication?.peer.state === 'disconnected';
      }, 30_000);
      const primary = await status('primary');
      expect(primary?.protectedReason ?? '').toMatch(/no backup/);
      expect(logOf('primary')).toContain('"replication.unprotected"');
      // Until the backup itself reports the replication path silent for five times dead-after
      // (300 ms): the LAN heartbeats alone must keep it from taking over.
      await waitUntil('the backup has not heard the primary on the replication path for 1.5 s', async () => {
        const b = await status('backup');
        return (b?.replication?.heartbeatAgeMs ?? 0) >= 1500;
      }, 30_000);
      const backup = await status('backup');
      expect(backup?.role).toBe('backup');
      expect(backup?.replication?.lanHeartbeatAgeMs ?? Infinity).toBeLessThan(300);
      expect(logOf('backup')).toContain('replication.primary-unreachable');
      expect(logOf('backup')).not.toContain('takeover.');
      // The VIP is still served, by the primary.
      const probe = await echoOnce(l.addr.vip);
      expect(probe).toBe(true);
      expect((await status('backup'))?.role).toBe('backup');
      expect(logOf('backup')).not.toContain('takeover.');
    } finally {
      await l.exec('primary', 'ip', ['link', 'set', l.replIface as string, 'up']);
    }
  }, 120_000);

  /** One short echo exchange from the client (bash's /dev/tcp is not everywhere; python is). */
  async function echoOnce(vip: string): Promise<boolean> {
    const r = await lab().exec('client', 'python3', ['-c', PY_ECHO_ONCE, vip, String(PORT_ECHO)]).catch(() => null);
    return r !== null && r.stdout.trim() === 'ok';
  }
});

const PY_ECHO_ONCE = String.raw`
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b'hello understudy')
buf = b''
while len(buf) < 16:
    d = s.recv(64)
    if not d: break
    buf += d
print('ok' if buf == b'hello understudy' else 'bad %r' % buf)
`;
