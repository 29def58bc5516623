// Failover with real Linux clients (issue 3): a primary and a backup `understudy node` in the lab
// (client, primary and backup namespaces on one LAN, plus a primary-backup replication link). The
// primary is SIGKILLed part-way through real traffic and the client must notice nothing: no RST on
// its interface, every byte exactly once. And cutting only the replication link must not make the
// backup take over: the LAN heartbeats say the primary is alive, which goes on unprotected.

import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Capture, describeRsts, RST_FILTER } from './helpers/capture.js';
import { curl } from './helpers/clients.js';
import { PY_MANY_ECHO } from './helpers/echo-clients.js';
import { useLab } from './helpers/lab-fixture.js';
import { ReplicatedPair } from './helpers/replicated-pair.js';

const TUN = 'usfail0';
const PORT_HTTP = 80;
const PORT_ECHO = 7;
const MIB = 1024 * 1024;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('failover in the lab', () => {
  const lab = useLab({ replicationLink: true });
  const dir = mkdtempSync(join(tmpdir(), 'understudy-failover-'));
  const www = join(dir, 'www');
  const pair = new ReplicatedPair(lab, dir, TUN);

  afterEach(async () => {
    await pair.stop();
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
    await pair.start(`http-static:${www}`, PORT_HTTP);
    // The client's neighbour entry may still name a node of an earlier test: wait until the VIP answers.
    await pair.waitUntil('the VIP answers', async () => (await curl(l.ns.client, [`http://${l.addr.vip}/nothing`], [join(dir, 'probe')], 3000)).exitCode === 0, 20_000);

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
          pair.kill('primary');
          break;
        }
        await sleep(5);
      }
      const r = await download;
      expect(killedAt, `the download ended before the kill point\n${pair.logs()}`).toBeGreaterThan(0);
      expect(r.exitCode, `curl: ${r.stderr}\n${pair.logs()}`).toBe(0);
      const got = readFileSync(out);
      expect(got.length).toBe(size);
      expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(blob).digest('hex'));
      const st = await pair.status('backup');
      expect(st?.role).toBe('primary');
      expect(st?.epoch).toBe(2);
      expect(pair.logOf('backup')).toContain('"takeover.done"');
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
    await pair.start(`http-static:${www}`, PORT_HTTP);
    await pair.waitUntil('the VIP answers', async () => (await curl(l.ns.client, [`http://${l.addr.vip}/nothing`], [join(dir, 'probe')], 3000)).exitCode === 0, 20_000);
    const cap = await Capture.start({ ns: l.ns.client, iface: l.lanIface, filter: RST_FILTER, label: 'client' });
    const pid = pair.pid('primary') as number;
    try {
      const out = join(dir, 'download.bin');
      rmSync(out, { force: true });
      const download = curl(l.ns.client, [`http://${l.addr.vip}/big.bin`], [out], 120_000, ['--limit-rate', String(4 * MIB)]);
      let finished = false;
      void download.finally(() => (finished = true));
      await pair.waitUntil('40% downloaded', async () => finished || (existsSync(out) && statSync(out).size >= size * 0.4), 60_000);
      expect(finished, 'the download ended before the freeze').toBe(false);
      process.kill(pid, 'SIGSTOP');
      try {
        await pair.waitUntil('the backup took over', async () => pair.logOf('backup').includes('"takeover.done"'), 30_000);
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      // Resumed, it hears the new primary's epoch on the LAN and stops speaking for the VIP.
      await pair.waitUntil('the old primary fenced itself', async () => pair.logOf('primary').includes('"replication.fenced-vip-released"'), 30_000);
      const proxy = await l.exec('primary', 'ip', ['neigh', 'show', 'proxy']);
      expect(proxy.stdout).not.toContain(l.addr.vip);
      expect((await pair.status('primary'))?.protectedReason ?? '').toMatch(/fenced/);
      // Fencing won over "backup lost": the packets it held for the backup were dropped, not sent.
      expect(pair.logOf('primary')).not.toContain('backup lost');
      const r = await download;
      expect(r.exitCode, `curl: ${r.stderr}\n${pair.logs()}`).toBe(0);
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
    await pair.start('echo', PORT_ECHO);
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
      await pair.waitUntil('echo streams 40% through', async () => {
        if (client.exitCode !== null) throw new Error(`the echo client ended early: ${out}\n${err}`);
        return progress() >= conns * bytes * 0.4;
      }, 60_000);
      pair.kill('primary');
      const [code] = (await Promise.race([exited, sleep(120_000).then(() => ['timeout'])])) as [number | string];
      const last = out.trim().split('\n').at(-1) ?? '';
      expect(code, `echo client: ${out.slice(-2000)}\n${err}\n${pair.logs()}`).toBe(0);
      const result = JSON.parse(last) as { ok: number; failures: string[] };
      expect(result.failures, pair.logs()).toEqual([]);
      expect(result.ok).toBe(conns);
      expect(pair.logOf('backup')).toContain('"takeover.done"');
      const rsts = await cap.stop();
      expect(rsts.packets, describeRsts('echo across the failover', rsts)).toBe(0);
    } finally {
      await cap.dispose();
    }
  }, 180_000);

  it('cutting only the replication link causes no takeover; the primary says it is unprotected', async () => {
    const l = lab();
    await pair.start('echo', PORT_ECHO);
    await l.exec('primary', 'ip', ['link', 'set', l.replIface as string, 'down']);
    try {
      await pair.waitUntil('primary reports unprotected', async () => {
        const s = await pair.status('primary');
        return s !== null && s.protected === false && s.replication?.peer.state === 'disconnected';
      }, 30_000);
      const primary = await pair.status('primary');
      expect(primary?.protectedReason ?? '').toMatch(/no backup/);
      expect(pair.logOf('primary')).toContain('"replication.unprotected"');
      // Until the backup itself reports the replication path silent for five times dead-after
      // (300 ms): the LAN heartbeats alone must keep it from taking over.
      await pair.waitUntil('the backup has not heard the primary on the replication path for 1.5 s', async () => {
        const b = await pair.status('backup');
        return (b?.replication?.heartbeatAgeMs ?? 0) >= 1500;
      }, 30_000);
      const backup = await pair.status('backup');
      expect(backup?.role).toBe('backup');
      expect(backup?.replication?.lanHeartbeatAgeMs ?? Infinity).toBeLessThan(300);
      expect(pair.logOf('backup')).toContain('replication.primary-unreachable');
      expect(pair.logOf('backup')).not.toContain('takeover.');
      // The VIP is still served, by the primary.
      const probe = await echoOnce(l.addr.vip);
      expect(probe).toBe(true);
      expect((await pair.status('backup'))?.role).toBe('backup');
      expect(pair.logOf('backup')).not.toContain('takeover.');
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
