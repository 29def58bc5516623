// Failover with real Linux clients (issue 3): a primary and a backup `understudy node` in the lab
// (client, primary and backup namespaces on one LAN, plus a primary-backup replication link). The
// primary is SIGKILLed part-way through real traffic and the client must notice nothing: no RST on
// its interface, every byte exactly once. And cutting only the replication link must not make the
// backup take over: the LAN heartbeats say the primary is alive, which goes on unprotected.

import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  captureClientRsts,
  expectDownloadIntact,
  expectEchoStreamsIntact,
  expectNoRst,
  sha256Hex,
  startDownload,
  vipAnswersHttp,
  whileStopped,
} from './helpers/client-checks.js';
import { type PacedPort, paceToNode } from '../../scripts/lab/pace.js';
import { startEchoStreams } from './helpers/echo-clients.js';
import { useLab } from './helpers/lab-fixture.js';
import { ReplicatedPair } from './helpers/replicated-pair.js';

const TUN = 'usfail0';
const PORT_HTTP = 80;
const PORT_ECHO = 7;
const MIB = 1024 * 1024;
const MTIME = new Date('2026-01-05T10:00:00Z');

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

  /**
   * A fresh pair serving big.bin of `size` random bytes, once the VIP answers (the client's
   * neighbour entry may still name a node of an earlier test); returns what the client must get.
   */
  async function serveBigFile(size: number): Promise<{ bytes: number; sha256: string }> {
    rmSync(www, { recursive: true, force: true });
    mkdirSync(www, { recursive: true });
    const blob = randomBytes(size);
    writeFileSync(join(www, 'big.bin'), blob);
    await pair.start(`http-static:${www}`, PORT_HTTP);
    await pair.waitUntil('the VIP answers', () => vipAnswersHttp(lab()), 20_000);
    return { bytes: size, sha256: sha256Hex(blob) };
  }

  it('curl downloads 64 MiB while the primary is SIGKILLed at 40%: exit 0, same SHA-256, no RST', async () => {
    const l = lab();
    const size = 64 * MIB;
    const want = await serveBigFile(size);
    const cap = await captureClientRsts(l);
    try {
      // About 8 s at this rate: long enough to kill it part-way on the bytes the client has.
      const download = startDownload(l, `http://${l.addr.vip}/big.bin`, join(dir, 'download.bin'), { rate: 8 * MIB, timeoutMs: 120_000 });
      let killedAt = -1;
      while (!download.finished()) {
        const have = download.bytes();
        if (have >= size * 0.4) {
          killedAt = have;
          pair.kill('primary');
          break;
        }
        await sleep(5);
      }
      expect(killedAt, `the download ended before the kill point\n${pair.logs()}`).toBeGreaterThan(0);
      await expectDownloadIntact(download, want, pair.logs());
      const st = await pair.status('backup');
      expect(st?.role).toBe('primary');
      expect(st?.epoch).toBe(2);
      expect(pair.logOf('backup')).toContain('"takeover.done"');
      await expectNoRst(cap, 'download across the failover');
    } finally {
      await cap.dispose();
    }
  }, 180_000);

  it('a primary frozen (SIGSTOP) is taken over; resumed, it fences itself: download intact, no RST', async () => {
    const l = lab();
    const size = 32 * MIB;
    const want = await serveBigFile(size);
    const cap = await captureClientRsts(l);
    try {
      const download = startDownload(l, `http://${l.addr.vip}/big.bin`, join(dir, 'download.bin'), { rate: 4 * MIB, timeoutMs: 120_000 });
      await pair.waitUntil('40% downloaded', () => download.finished() || download.bytes() >= size * 0.4, 60_000);
      expect(download.finished(), 'the download ended before the freeze').toBe(false);
      await whileStopped(pair.pid('primary') as number, () =>
        pair.waitUntil('the backup took over', () => pair.logOf('backup').includes('"takeover.done"'), 30_000),
      );
      // Resumed, it hears the new primary's epoch on the LAN and stops speaking for the VIP.
      await pair.waitUntil('the old primary fenced itself', () => pair.logOf('primary').includes('"replication.fenced-vip-released"'), 30_000);
      const proxy = await l.exec('primary', 'ip', ['neigh', 'show', 'proxy']);
      expect(proxy.stdout).not.toContain(l.addr.vip);
      expect((await pair.status('primary'))?.protectedReason ?? '').toMatch(/fenced/);
      // Fencing won over "backup lost": the packets it held for the backup were dropped, not sent.
      expect(pair.logOf('primary')).not.toContain('backup lost');
      await expectDownloadIntact(download, want, pair.logs());
      await expectNoRst(cap, 'download across a frozen primary');
    } finally {
      await cap.dispose();
    }
  }, 180_000);

  it('20 echo connections streaming both ways survive the SIGKILL: every byte back once, in order', async () => {
    const l = lab();
    await pair.start('echo', PORT_ECHO);
    const conns = 20;
    const bytes = 3 * MIB;
    const cap = await captureClientRsts(l);
    try {
      const client = startEchoStreams(l, l.addr.vip, PORT_ECHO, { conns, bytes, rate: 256 * 1024, idleTimeoutS: 60 });
      await pair.waitUntil('echo streams 40% through', () => {
        if (client.exited()) throw new Error(`the echo client ended early: ${client.output()}`);
        return client.progress() >= conns * bytes * 0.4;
      }, 60_000);
      pair.kill('primary');
      await expectEchoStreamsIntact(client, conns, pair.logs());
      expect(pair.logOf('backup')).toContain('"takeover.done"');
      await expectNoRst(cap, 'echo across the failover');
    } finally {
      await cap.dispose();
    }
  }, 180_000);

  it('http-static with a file that differs on the backup: the divergence shows before the kill, the takeover resets that download (RST) and the identical file\'s download goes on intact', async () => {
    const l = lab();
    // Output digests (docs/replication.md): the backup vouches for a large write only with its own
    // replica's bytes. A file that is not the same on both hosts cannot be vouched for: counted as
    // a divergence at once, and at takeover that connection is reset instead of being continued
    // with bytes the client never had. The other download is untouched.
    const size = 24 * MIB;
    const same = randomBytes(size);
    const mine = randomBytes(size);
    const theirs = randomBytes(size);
    const www = { primary: join(dir, 'www-p'), backup: join(dir, 'www-b') };
    for (const [role, differs] of [['primary', mine], ['backup', theirs]] as const) {
      rmSync(www[role], { recursive: true, force: true });
      mkdirSync(www[role], { recursive: true });
      writeFileSync(join(www[role], 'same.bin'), same);
      writeFileSync(join(www[role], 'differs.bin'), differs);
      // Same modification times, so the headers (ETag, Last-Modified) agree: only the body differs.
      for (const f of ['same.bin', 'differs.bin']) utimesSync(join(www[role], f), MTIME, MTIME);
    }
    pair.startNode('backup', `http-static:${www.backup}`, PORT_HTTP);
    await pair.waitUntil('backup control socket', async () => (await pair.status('backup')) !== null, 30_000);
    pair.startNode('primary', `http-static:${www.primary}`, PORT_HTTP);
    await pair.waitUntil('primary protected', async () => (await pair.status('primary'))?.protected === true, 45_000);
    await pair.waitUntil('the VIP answers', () => vipAnswersHttp(l), 20_000);

    const cap = await captureClientRsts(l);
    let paced: PacedPort | undefined;
    try {
      // Paced on the wire, not by curl: the kill must find the diverged download still on the
      // wire (two downloads sharing 8 MiB/s, about 6 s).
      paced = await paceToNode(l, 'client', 8 * MIB);
      const opts = { timeoutMs: 120_000 };
      const sameDl = startDownload(l, `http://${l.addr.vip}/same.bin`, join(dir, 'same.out'), opts);
      // No TCP keepalive: the takeover's own RST must end this download. curl's keepalive probe
      // (after 60 s idle) would draw a RST from the new primary too, and once hid a takeover
      // RST the client had dropped as out of window (its sequence number was SND.UNA).
      const differsDl = startDownload(l, `http://${l.addr.vip}/differs.bin`, join(dir, 'differs.out'), { ...opts, curlArgs: ['--no-keepalive'] });
      await pair.waitUntil('30% of both downloaded', async () => sameDl.bytes() >= size * 0.3 && differsDl.bytes() >= size * 0.3, 60_000);
      const before = await pair.status('backup');
      expect(before?.replication?.applied?.divergences, pair.logs()).toBeGreaterThanOrEqual(1);
      pair.kill('primary');

      await expectDownloadIntact(sameDl, { bytes: size, sha256: sha256Hex(same) }, pair.logs());
      // Reset, not ended: curl fails, and what it got is the primary's file up to where it stopped.
      const rd = await differsDl.result;
      // 56: "Failure when receiving data from the peer", the reset; a timeout (28) would mean the
      // client never accepted the takeover's RST.
      expect(rd.exitCode, `curl differs.bin: ${rd.stderr}\n${pair.logs()}`).toBe(56);
      expect(rd.stderr).toMatch(/reset/i);
      const got = readFileSync(differsDl.out);
      expect(got.length).toBeLessThan(size);
      expect(got.equals(mine.subarray(0, got.length))).toBe(true);
      // Said once, for that connection only: a divergence, and that a takeover resets it.
      const said = (event: string): string[] => pair.events('backup', event).map((e) => String(e.detail));
      expect(said('replication.divergence'), pair.logs()).toHaveLength(1);
      expect(said('replication.divergence')[0]).toContain('digest differs');
      expect(said('replication.replica-failed'), pair.logs()).toEqual([expect.stringMatching(/is not protected: .*a takeover resets it/)]);
      const rsts = await cap.stop();
      expect(rsts.packets, 'the diverged download is reset at takeover').toBeGreaterThanOrEqual(1);
    } finally {
      await paced?.undo();
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
