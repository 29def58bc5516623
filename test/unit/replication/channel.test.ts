// The channel over real kernel TCP on 127.0.0.1 with ephemeral ports.

import { randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseKey, type ReplicationKey } from '../../../src/replication/auth.js';
import { ReplicationChannel, bindBackup, bindPrimary, type ChannelEvents, type ChannelOptions } from '../../../src/replication/channel.js';
import { helloMac } from '../../../src/replication/auth.js';
import { FRAME_VERSION, FrameSealer } from '../../../src/replication/framing.js';
import type { InputRecord, LogRecord } from '../../../src/replication/log-records.js';
import { MessageFaults } from '../../../src/replication/message-faults.js';
import { ReplicaLog, ReplicationLog } from '../../../src/replication/replication-log.js';

const KEY = parseKey(new Uint8Array(32).fill(0xe1));
const OTHER_KEY = parseKey(new Uint8Array(32).fill(0xe2));

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function channel(opts: Partial<ChannelOptions> & Pick<ChannelOptions, 'role'>): { ch: ReplicationChannel; lines: string[] } {
  const lines: string[] = [];
  const ch = new ReplicationChannel({
    nodeId: opts.role === 'primary' ? 'node-a' : 'node-b',
    key: KEY,
    epoch: () => 1,
    lastLsn: () => 0,
    heartbeatIntervalMs: 20,
    silenceTimeoutMs: 2000,
    reconnect: { initialMs: 10, maxMs: 100 },
    log: (l) => lines.push(l),
    ...opts,
  });
  cleanups.push(() => ch.close());
  return { ch, lines };
}

async function listening(opts: Partial<ChannelOptions> = {}): Promise<{ ch: ReplicationChannel; lines: string[]; port: number }> {
  const p = channel({ role: 'primary', listen: { host: '127.0.0.1', port: 0 }, ...opts });
  await p.ch.start();
  return { ...p, port: p.ch.port as number };
}

function dialing(port: number, opts: Partial<ChannelOptions> = {}): { ch: ReplicationChannel; lines: string[] } {
  const b = channel({ role: 'backup', connect: { host: '127.0.0.1', port }, ...opts });
  void b.ch.start();
  return b;
}

/** The next event of that name (matching pred), or a failure after a few seconds. */
function next<K extends keyof ChannelEvents>(ch: ReplicationChannel, name: K, pred: (...args: ChannelEvents[K]) => boolean = () => true): Promise<ChannelEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ch.off(name, handler as never);
      reject(new Error(`no ${String(name)} event within 5 s`));
    }, 5000);
    const handler = (...args: ChannelEvents[K]): void => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      ch.off(name, handler as never);
      resolve(args);
    };
    ch.on(name, handler as never);
  });
}

function rawClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.on('error', reject);
    // Read (and ignore) the hello: a paused socket would never see the peer's close.
    s.resume();
    cleanups.push(() => void s.destroy());
  });
}

function closed(s: Socket): Promise<void> {
  return new Promise((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
}

/** A primary log and a backup replica bound to a channel pair, with the replica's input collected. */
async function replicatedPair(window = 4, faults: { primary?: MessageFaults; backup?: MessageFaults } = {}): Promise<{
  log: ReplicationLog;
  replica: ReplicaLog;
  applied: LogRecord[];
  primary: ReplicationChannel;
  backup: ReplicationChannel;
}> {
  const log = new ReplicationLog({ window, maxBatchBytes: 16 * 1024, scheduleFlush: (run) => setImmediate(run) });
  const applied: LogRecord[] = [];
  let backupCh: ReplicationChannel | null = null;
  const replica = new ReplicaLog({ apply: (r) => void applied.push(r), sendAck: (lsn) => backupCh?.sendAck(lsn), scheduleAck: (run) => setImmediate(run) });
  const { ch: primary } = await listening({ lastLsn: () => log.lastLsn, ...(faults.primary === undefined ? {} : { faults: faults.primary }) });
  bindPrimary(log, primary);
  const primaryUp = next(primary, 'peer-up');
  const { ch: backup } = dialing(primary.port as number, { lastLsn: () => replica.lastApplied, ...(faults.backup === undefined ? {} : { faults: faults.backup }) });
  backupCh = backup;
  bindBackup(replica, backup);
  await Promise.all([primaryUp, next(backup, 'peer-up')]);
  return { log, replica, applied, primary, backup };
}

function appendInputs(log: ReplicationLog, count: number, startOffset: number, sink: Uint8Array[]): { lastLsn: number; offset: number } {
  let offset = startOffset;
  let lastLsn = 0;
  for (let i = 0; i < count; i++) {
    const data = randomBytes(1 + (i * 97) % 3000);
    sink.push(data);
    lastLsn = log.append({ kind: 'input', conn: 1, offset, data, rcvNxt: (offset + data.length) >>> 0, fin: false });
    offset += data.length;
  }
  return { lastLsn, offset };
}

function inputBytes(records: LogRecord[]): Buffer {
  return Buffer.concat(records.filter((r): r is InputRecord => r.kind === 'input').map((r) => r.data));
}

describe('replication channel', () => {
  it('exchanges hellos: each side learns the other node id, role, epoch and log position', async () => {
    const { ch: primary, port } = await listening({ epoch: () => 3, lastLsn: () => 17 });
    const up = next(primary, 'peer-up');
    const { ch: backup } = dialing(port, { epoch: () => 3, lastLsn: () => 9 });
    const [[fromBackup], [fromPrimary]] = await Promise.all([up, next(backup, 'peer-up')]);
    expect(fromBackup).toMatchObject({ nodeId: 'node-b', role: 'backup', epoch: 3, lastLsn: 9 });
    expect(fromBackup.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(fromPrimary).toMatchObject({ nodeId: 'node-a', role: 'primary', epoch: 3, lastLsn: 17, address: `127.0.0.1:${port}` });
    expect(primary.peer?.nodeId).toBe('node-b');
    expect(primary.stats.sessions).toBe(1);
  });

  it('carries batches of records to the backup and cumulative acks back until the last LSN commits', async () => {
    const { log, applied, primary, backup } = await replicatedPair();
    const sent: Uint8Array[] = [];
    const { lastLsn } = appendInputs(log, 600, 0, sent);
    log.append({ kind: 'close', conn: 1, reason: 'done' });
    await log.waitFor(lastLsn + 1);
    expect(applied.map((r) => r.lsn)).toEqual(Array.from({ length: lastLsn + 1 }, (_, i) => i + 1));
    expect(inputBytes(applied).equals(Buffer.concat(sent))).toBe(true);
    expect(applied.at(-1)).toMatchObject({ kind: 'close', reason: 'done' });
    expect(log.lag()).toMatchObject({ records: 0, bytes: 0, messagesInFlight: 0 });
    // Batching: far fewer messages than records.
    expect(backup.stats.framesReceived).toBeLessThan(600);
    expect(primary.stats.authFailures + backup.stats.authFailures).toBe(0);
  });

  it('sends heartbeats both ways carrying epoch and log position', async () => {
    const { ch: primary, port } = await listening({ epoch: () => 2, lastLsn: () => 55 });
    const fromBackup = next(primary, 'heartbeat');
    const { ch: backup } = dialing(port, { epoch: () => 2, lastLsn: () => 44 });
    const [[hbAtBackup], [hbAtPrimary]] = await Promise.all([next(backup, 'heartbeat'), fromBackup]);
    expect(hbAtBackup).toMatchObject({ type: 'heartbeat', epoch: 2, lsn: 55 });
    expect(hbAtPrimary).toMatchObject({ type: 'heartbeat', epoch: 2, lsn: 44 });
    expect(hbAtPrimary.clockUs).toBeGreaterThan(1_600_000_000_000_000);
  });

  it('carries a handover to the backup and its done and refused replies back to the primary', async () => {
    const { ch: primary, port } = await listening({ epoch: () => 2 });
    const up = next(primary, 'peer-up');
    const { ch: backup } = dialing(port, { epoch: () => 2 });
    await Promise.all([up, next(backup, 'peer-up')]);
    const got = next(backup, 'handover');
    expect(primary.sendHandover(2, 41)).toBe(true);
    const [m] = await got;
    expect(m).toEqual({ type: 'handover', epoch: 2, lastLsn: 41 });
    const done = next(primary, 'handover-done');
    backup.sendHandoverDone(3, 7.5);
    expect((await done)[0]).toEqual({ type: 'handover-done', epoch: 3, takeoverMs: 7.5 });
    const refused = next(primary, 'handover-refused');
    backup.sendHandoverRefused('not in step');
    expect((await refused)[0]).toBe('not in step');
  });

  it('refuses a handover sent the wrong way (backup to primary) as a protocol error and drops the session', async () => {
    const { ch: primary, port } = await listening();
    const up = next(primary, 'peer-up');
    const { ch: backup } = dialing(port);
    await Promise.all([up, next(backup, 'peer-up')]);
    const down = next(primary, 'peer-down');
    const handed = vi.fn();
    primary.on('handover', handed);
    backup.sendHandover(1, 1);
    const [{ reason }] = await down;
    expect(reason).toMatch(/protocol error: handover sent to a primary/);
    expect(primary.stats.protocolErrors).toBe(1);
    expect(handed).not.toHaveBeenCalled();
  });

  it('reports a peer with a higher epoch', async () => {
    const { ch: primary, port } = await listening({ epoch: () => 1 });
    const higher = next(primary, 'higher-epoch');
    dialing(port, { epoch: () => 7 });
    const [epoch, peer] = await higher;
    expect(epoch).toBe(7);
    expect(peer.nodeId).toBe('node-b');
  });

  it('refuses a wrong key on both sides with a clear error and a counter', async () => {
    const { ch: primary, port, lines: primaryLines } = await listening();
    const primaryRefusal = next(primary, 'auth-failure');
    const { ch: backup, lines: backupLines } = dialing(port, { key: OTHER_KEY as ReplicationKey });
    let ups = 0;
    primary.on('peer-up', () => ups++);
    backup.on('peer-up', () => ups++);
    const [[atPrimary], [atBackup]] = await Promise.all([primaryRefusal, next(backup, 'auth-failure')]);
    expect(atPrimary.error).toMatch(/bad MAC on a hello frame \(wrong key/);
    expect(atBackup.error).toMatch(/bad MAC on a hello frame \(wrong key/);
    expect(atPrimary.count).toBe(1);
    expect(primary.stats.authFailures).toBeGreaterThanOrEqual(1);
    expect(backup.stats.authFailures).toBeGreaterThanOrEqual(1);
    expect(primaryLines.join('\n')).toMatch(/replication: authentication failed on the connection with 127\.0\.0\.1:\d+: bad MAC/);
    expect(backupLines.join('\n')).toMatch(/authentication failed/);
    // The backup keeps redialling and keeps being refused; no session ever comes up.
    await next(primary, 'auth-failure', (ev) => ev.count >= 2);
    expect(ups).toBe(0);
    expect(primary.peer).toBeNull();
  });

  it('keeps the live session when a hello from an earlier session is replayed', async () => {
    const { ch: primary, port } = await listening();
    const up = next(primary, 'peer-up');
    dialing(port);
    await up;
    let events = 0;
    primary.on('peer-up', () => events++);
    primary.on('peer-down', () => events++);
    // What an eavesdropper could have captured: a valid hello, and it cannot MAC anything after it.
    const captured = new FrameSealer(helloMac(KEY, 'dialer-to-listener'));
    const hello = captured.seal({ type: 'hello', role: 'backup', epoch: 1, nodeId: 'node-b', nonce: new Uint8Array(16), lastLsn: 0 });
    const follow = captured.seal({ type: 'ack', lsn: 1 });
    const refusal = next(primary, 'auth-failure');
    const raw = await rawClient(port);
    raw.write(Buffer.concat([...hello, ...follow]));
    const [ev] = await refusal;
    expect(ev.error).toMatch(/bad MAC on a ack frame/);
    expect(events).toBe(0);
    expect(primary.peer?.nodeId).toBe('node-b');
    expect(primary.stats.sessions).toBe(1);
  });

  it('refuses a garbage byte stream without crashing and still serves a real backup afterwards', async () => {
    const { ch: primary, port, lines } = await listening();
    const refusal = next(primary, 'protocol-error');
    const raw = await rawClient(port);
    raw.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const [ev] = await refusal;
    expect(ev.error).toMatch(/bad magic/);
    await closed(raw);
    expect(lines.join('\n')).toMatch(/protocol error on the connection with .*bad magic.*dropping it \(1 so far\)/);
    const up = next(primary, 'peer-up');
    dialing(port);
    await up;
    expect(primary.stats.protocolErrors).toBe(1);
  });

  it('refuses an oversized frame length from the header alone', async () => {
    const { ch: primary, port } = await listening({ maxFrameBody: 4096 });
    const refusal = next(primary, 'protocol-error');
    const raw = await rawClient(port);
    const head = Buffer.alloc(16);
    head.set([0x55, 0x53, FRAME_VERSION, 1]);
    head.writeUInt32LE(0x7fffffff, 4);
    raw.write(head);
    const [ev] = await refusal;
    expect(ev.error).toMatch(/frame body of 2147483647 bytes exceeds the 4096-byte limit/);
    await closed(raw);
  });

  it('drops a connection that never says hello once the silence limit passes', async () => {
    const { port } = await listening({ silenceTimeoutMs: 100 });
    const raw = await rawClient(port);
    await closed(raw);
    expect(raw.destroyed).toBe(true);
  });

  it('evicts the oldest stray connection, so a crowd of silent sockets cannot lock the backup out', async () => {
    const { ch: primary, port } = await listening({ silenceTimeoutMs: 60_000 });
    const strays: Socket[] = [];
    for (let i = 0; i < 10; i++) strays.push(await rawClient(port));
    const up = next(primary, 'peer-up');
    dialing(port);
    await up;
    // Ten strays plus the backup against eight places: the three oldest strays go.
    await Promise.all(strays.slice(0, 3).map(closed));
    expect(strays.map((s) => s.destroyed)).toEqual([true, true, true, false, false, false, false, false, false, false]);
  });

  it('refuses a peer that claims the same role', async () => {
    const { ch: primary, port } = await listening();
    const refusal = next(primary, 'protocol-error');
    dialing(port, { role: 'primary', nodeId: 'node-c' });
    const [ev] = await refusal;
    expect(ev.error).toBe('peer node-c is also a primary');
  });

  it('as the dialler, refuses a server speaking garbage and redials', async () => {
    const server: Server = createServer((s) => {
      s.on('error', () => undefined);
      s.resume();
      s.end(Buffer.from('SSH-2.0-OpenSSH_9.6\r\n'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as { port: number }).port;
    const { ch: backup } = dialing(port);
    const [first] = await next(backup, 'protocol-error');
    expect(first.error).toMatch(/bad magic/);
    await next(backup, 'protocol-error', (ev) => ev.count >= 2);
    expect(backup.stats.redials).toBeGreaterThanOrEqual(1);
  });

  it('redials after the backup socket is destroyed and resumes the log without gap or duplicate', async () => {
    const { log, replica, applied, primary, backup } = await replicatedPair(2);
    const sent: Uint8Array[] = [];
    let at = appendInputs(log, 100, 0, sent);
    await log.waitFor(at.lastLsn);

    const downAtPrimary = next(primary, 'peer-down');
    const downAtBackup = next(backup, 'peer-down');
    const upAgain = next(primary, 'peer-up');
    backup.dropPeer('test: socket destroyed');
    const [[down]] = await Promise.all([downAtPrimary, downAtBackup]);
    expect(down.peer.nodeId).toBe('node-b');
    expect(primary.peer).toBeNull();

    // Records appended while the backup is away wait in the log.
    at = appendInputs(log, 100, at.offset, sent);
    const [peer] = await upAgain;
    expect(peer.lastLsn).toBe(100);
    await log.waitFor(at.lastLsn);
    at = appendInputs(log, 50, at.offset, sent);
    await log.waitFor(at.lastLsn);

    expect(replica.lastApplied).toBe(250);
    expect(applied.map((r) => r.lsn)).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
    expect(inputBytes(applied).equals(Buffer.concat(sent))).toBe(true);
    expect(primary.stats.sessions).toBe(2);
    expect(backup.stats.redials).toBeGreaterThanOrEqual(1);
  });

  it('resends records that were in flight when the connection died', async () => {
    const { log, applied, primary, backup } = await replicatedPair(8);
    // Stop the backup from receiving: drop the session right after sending, before any ack.
    const sent: Uint8Array[] = [];
    const up = next(primary, 'peer-up');
    const at = appendInputs(log, 40, 0, sent);
    log.flush();
    backup.dropPeer('test: cut mid-flight');
    const [peer] = await up;
    // The backup had applied nothing, so every record reached it by the resend.
    expect(peer.lastLsn).toBe(0);
    await log.waitFor(at.lastLsn);
    expect(applied.map((r) => r.lsn)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(inputBytes(applied).equals(Buffer.concat(sent))).toBe(true);
  });

  describe('faults injected on the link (fault --link replication)', () => {
    const lsns = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

    for (const [kind, settings] of [
      ['corrupt', { corruptPct: 100 }],
      ['duplicate', { duplicatePct: 100 }],
      ['reorder', { reorderPct: 100 }],
    ] as const) {
      it(`${kind} out of the primary: the backup refuses it as an authentication failure, redials, and the log resumes without gap or duplicate`, async () => {
        const faults = new MessageFaults(7);
        const { log, replica, applied, primary, backup } = await replicatedPair(4, { primary: faults });
        const sent: Uint8Array[] = [];
        let at = appendInputs(log, 60, 0, sent);
        await log.waitFor(at.lastLsn);
        const refused = next(backup, 'auth-failure');
        faults.setFaults('out', settings);
        at = appendInputs(log, 20, at.offset, sent);
        const [ev] = await refused;
        expect(ev.error).toMatch(kind === 'corrupt' ? /bad MAC/ : /frame counter/);
        faults.clearFaults();
        await log.waitFor(at.lastLsn);
        at = appendInputs(log, 20, at.offset, sent);
        await log.waitFor(at.lastLsn);
        expect(backup.stats.authFailures).toBeGreaterThanOrEqual(1);
        expect(primary.stats.sessions).toBeGreaterThanOrEqual(2);
        expect(replica.lastApplied).toBe(100);
        expect(applied.map((r) => r.lsn)).toEqual(lsns(100));
        expect(inputBytes(applied).equals(Buffer.concat(sent))).toBe(true);
        expect(faults.counters().out[kind === 'corrupt' ? 'corrupted' : kind === 'duplicate' ? 'duplicated' : 'reordered']).toBeGreaterThanOrEqual(1);
      });
    }

    it('corrupt on what the primary receives: the primary counts the refusal, and the session comes back', async () => {
      const faults = new MessageFaults(3);
      const { log, applied, primary } = await replicatedPair(4, { primary: faults });
      const refused = next(primary, 'auth-failure');
      const back = next(primary, 'peer-up');
      faults.setFaults('in', { corruptPct: 100 });
      const [ev] = await refused;
      expect(ev.error).toMatch(/bad MAC/);
      faults.clearFaults();
      await back;
      const sent: Uint8Array[] = [];
      const at = appendInputs(log, 30, 0, sent);
      await log.waitFor(at.lastLsn);
      expect(applied.map((r) => r.lsn)).toEqual(lsns(30));
      expect(primary.stats.authFailures).toBeGreaterThanOrEqual(1);
    });

    it('partition: nothing passes either way while it lasts, records wait in order, and clearing lets them all through', async () => {
      const faults = new MessageFaults(5);
      const { log, applied } = await replicatedPair(4, { backup: faults });
      faults.setFaults('in', { partition: true });
      faults.setFaults('out', { partition: true });
      const sent: Uint8Array[] = [];
      const at = appendInputs(log, 10, 0, sent);
      log.flush();
      await new Promise((r) => setTimeout(r, 150));
      expect(applied).toEqual([]);
      expect(log.ackedLsn).toBe(0);
      expect(faults.queued().in).toBeGreaterThan(0);
      expect(faults.counters().in.partitioned).toBeGreaterThan(0);
      faults.clearFaults();
      await log.waitFor(at.lastLsn);
      expect(applied.map((r) => r.lsn)).toEqual(lsns(10));
      expect(inputBytes(applied).equals(Buffer.concat(sent))).toBe(true);
      expect(faults.queued()).toEqual({ in: 0, out: 0 });
    });

    it('loss 100 lets nothing through; loss 50 stalls the stream but delivers everything in order', async () => {
      const faults = new MessageFaults(11);
      const { log, applied } = await replicatedPair(4, { primary: faults });
      faults.setFaults('out', { lossPct: 100 });
      const sent: Uint8Array[] = [];
      let at = appendInputs(log, 5, 0, sent);
      log.flush();
      await new Promise((r) => setTimeout(r, 450));
      expect(applied).toEqual([]);
      expect(faults.counters().out.lost).toBeGreaterThanOrEqual(2);
      faults.setFaults('out', { lossPct: 50 });
      at = appendInputs(log, 5, at.offset, sent);
      await log.waitFor(at.lastLsn);
      expect(applied.map((r) => r.lsn)).toEqual(lsns(10));
      expect(inputBytes(applied).equals(Buffer.concat(sent))).toBe(true);
    });

    it('delay holds every frame for at least the delay, in order', async () => {
      const faults = new MessageFaults(13);
      const { log, applied } = await replicatedPair(4, { primary: faults });
      faults.setFaults('out', { delayMs: 120, jitterMs: 60 });
      const sent: Uint8Array[] = [];
      const t0 = performance.now();
      const at = appendInputs(log, 20, 0, sent);
      await log.waitFor(at.lastLsn);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(60);
      expect(applied.map((r) => r.lsn)).toEqual(lsns(20));
      expect(faults.counters().out.delayed).toBeGreaterThanOrEqual(1);
    });
  });
});
