// Replication in simulation (issue 3): a client, a primary and a backup on one in-memory LAN, the
// replication link in memory. Output commit is checked packet by packet against what the backup
// had applied; failovers kill the primary abruptly and the clients must see every byte exactly
// once and in order, and no RST.

import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEchoService } from '../../src/services/echo.js';
import { createHttpStaticService } from '../../src/services/http-static.js';
import type { Socket } from '../../src/stack/socket.js';
import { ISN_KEY, NODE_TCP, ReplicationSim, VIP, randomBytes, sleep, until, type WireSegment } from './replication-harness.js';
import { BackupNode, type TakeoverReport } from '../../src/replication/backup-node.js';
import { MemoryReplication } from '../../src/replication/memory-replication.js';
import { seqAdd, seqDiff, seqLe } from '../../src/stack/wire/seq.js';
import { ipv4FromString, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../../src/stack/wire/types.js';
import type { Shadow } from '../../src/replication/shadow.js';
import type { Service, ServiceSocket } from '../../src/services/service.js';
import { ConnectionSet } from '../../src/services/connection-set.js';

let sims: ReplicationSim[] = [];
/** Client port -> wire length when that client socket read the server's end of stream. */
const ends = new Map<number, number>();
afterEach(async () => {
  for (const s of sims) await s.close();
  sims = [];
  ends.clear();
});

function sim(opts: ConstructorParameters<typeof ReplicationSim>[0]): ReplicationSim {
  const s = new ReplicationSim(opts);
  sims.push(s);
  return s;
}

interface EchoRun {
  /** Errors the client socket reported (a reset shows here as ECONNRESET). */
  errors: Error[];
  sent: Buffer;
  received: Buffer[];
  done: Promise<void>;
  receivedBytes(): number;
}

/** One echo connection: writes `total` random bytes in random chunks over time, reads them back. */
function echoConnection(s: ReplicationSim, port: number, total: number): EchoRun {
  const sent = randomBytes(s.prng, total);
  const sock: Socket = s.client.connect({ host: VIP, port });
  const received: Buffer[] = [];
  let got = 0;
  sock.on('data', (d: Buffer) => {
    received.push(d);
    got += d.length;
  });
  const chunks: Buffer[] = [];
  for (let at = 0; at < total; ) {
    const n = Math.min(total - at, 1 + s.prng.int(8000));
    chunks.push(sent.subarray(at, at + n));
    at += n;
  }
  const delays = chunks.map(() => s.prng.int(4));
  const errors: Error[] = [];
  sock.on('error', (e) => errors.push(e));
  const done = new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.once('end', () => {
      ends.set(sock.localPort, s.wire.length);
      resolve();
    });
  });
  void (async () => {
    for (let i = 0; i < chunks.length; i++) {
      if (!sock.write(chunks[i]!)) await new Promise((r) => sock.once('drain', r));
      if (delays[i]! > 0) await sleep(delays[i]!);
    }
    sock.end();
  })();
  return { errors, sent, received, done, receivedBytes: () => got };
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

describe('failover in simulation', () => {
  it('20 echo connections streaming both ways survive the primary dying mid-stream: every byte once, in order, no RST', async () => {
    const port = 7;
    const s = sim({ seed: 11, port, service: createEchoService });
    const runs = Array.from({ length: 20 }, () => echoConnection(s, port, 100_000 + s.prng.int(200_000)));
    const total = runs.reduce((n, r) => n + r.sent.length, 0);
    await until(() => runs.reduce((n, r) => n + r.receivedBytes(), 0) > total * 0.4, 30_000, '40% echoed');
    const report = await s.failover();
    expect(report.failed).toEqual([]);
    expect(report.promoted).toBeGreaterThan(0);
    expect(s.backup?.status()).toMatchObject({ role: 'primary', epoch: 2 });
    await Promise.all(runs.map((r) => r.done));
    for (const r of runs) {
      const got = Buffer.concat(r.received);
      expect(got.length).toBe(r.sent.length);
      expect(sha(got)).toBe(sha(r.sent));
    }
    expect(s.liveResets(ends)).toEqual([]);
    expect(s.continuityViolations()).toEqual([]);
    expect(s.wire.some((w) => w.from === 'backup' && w.seg.options.timestamp !== undefined)).toBe(true);
    expect(s.backup?.status().divergences).toBe(0);
  }, 60_000);
});

/** Reads a whole HTTP/1.1 response (Connection: close): headers and body. */
/**
 * An HTTP GET. With `pauseMs`, the reader pauses that long after a chunk now and then, so that the
 * client's window limits the sender (as curl --limit-rate does).
 */
function httpGet(s: ReplicationSim, port: number, path: string, pauseMs?: () => number): { body: () => Buffer; receivedBytes: () => number; done: Promise<void> } {
  const sock = s.client.connect({ host: VIP, port });
  const chunks: Buffer[] = [];
  let got = 0;
  sock.on('data', (d: Buffer) => {
    chunks.push(d);
    got += d.length;
    const ms = pauseMs?.() ?? 0;
    if (ms > 0) {
      sock.pause();
      setTimeout(() => sock.resume(), ms);
    }
  });
  sock.write(`GET ${path} HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n`);
  const done = new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.once('end', () => {
      ends.set(sock.localPort, s.wire.length);
      resolve();
    });
  });
  return {
    receivedBytes: () => got,
    done,
    body: () => {
      const all = Buffer.concat(chunks);
      const at = all.indexOf('\r\n\r\n');
      return at < 0 ? Buffer.alloc(0) : all.subarray(at + 4);
    },
  };
}

describe('failover at random points', () => {
  for (const seed of [101, 102, 103, 104, 105, 106]) {
    it(`seed ${seed}: 10 echo connections, the primary killed at a random point between 10% and 90%`, async () => {
      const port = 7;
      const s = sim({ seed, port, service: createEchoService });
      const at = 0.1 + 0.8 * s.prng.float();
      const runs = Array.from({ length: 10 }, () => echoConnection(s, port, 20_000 + s.prng.int(150_000)));
      const total = runs.reduce((n, r) => n + r.sent.length, 0);
      await until(() => runs.reduce((n, r) => n + r.receivedBytes(), 0) >= total * at, 30_000, `${Math.round(at * 100)}% echoed`);
      const report = await s.failover();
      expect(report.failed).toEqual([]);
      await Promise.all(runs.map((r) => r.done));
      for (const r of runs) expect(Buffer.concat(r.received).equals(r.sent)).toBe(true);
      expect(s.liveResets(ends)).toEqual([]);
      expect(s.continuityViolations()).toEqual([]);
    }, 60_000);
  }
});

/**
 * Echo that pauses `ms` after each chunk it reads: the same bytes as echo, later. Pausing the
 * reading (rather than delaying the writes) keeps the end of stream after the last reply.
 */
function laggingEcho(ms: number): Service {
  const set = new ConnectionSet();
  return {
    name: 'lagging-echo',
    onConnection(socket: ServiceSocket): void {
      if (!set.add(socket)) return;
      socket.on('data', (d: Buffer) => {
        socket.write(d);
        socket.pause();
        setTimeout(() => socket.resume(), ms);
      });
    },
    close: () => set.closeAll(),
  };
}

describe('failover with a replica that lags behind the primary', () => {
  it('the backup sends only what the primary had not, and every byte arrives once', async () => {
    const port = 7;
    let n = 0;
    const s = sim({ seed: 111, port, service: () => (n++ === 0 ? createEchoService() : laggingEcho(3)) });
    const runs = Array.from({ length: 10 }, () => echoConnection(s, port, 50_000 + s.prng.int(50_000)));
    const total = runs.reduce((k, r) => k + r.sent.length, 0);
    await until(() => runs.reduce((k, r) => k + r.receivedBytes(), 0) > total * 0.5, 30_000, 'half echoed');
    const behind = [...s.backup!.shadows.all()].filter((sh) => !(s.backup!.replica.socketOf(sh.id)?.matcher.caughtUp ?? true)).length;
    await s.failover();
    expect(behind).toBeGreaterThan(0);
    await Promise.all(runs.map((r) => r.done));
    for (const r of runs) expect(Buffer.concat(r.received).equals(r.sent)).toBe(true);
    expect(s.liveResets(ends)).toEqual([]);
    expect(s.backup!.status().divergences).toBe(0);
  }, 60_000);
});

describe('failover of connections opened by SYN cookies', () => {
  it('connections established through cookies are logged from their ACK and resumed like any other', async () => {
    const port = 7;
    const s = sim({ seed: 131, port, service: createEchoService, synBacklog: 0 });
    const runs = Array.from({ length: 10 }, () => echoConnection(s, port, 50_000 + s.prng.int(50_000)));
    const total = runs.reduce((n, r) => n + r.sent.length, 0);
    await until(() => runs.reduce((n, r) => n + r.receivedBytes(), 0) > total * 0.4, 30_000, '40% echoed');
    expect(s.primary.stack.counters['tcp.syncookie-accepted']).toBe(10);
    const report = await s.failover();
    expect(report).toMatchObject({ promoted: 10, failed: [] });
    await Promise.all(runs.map((r) => r.done));
    for (const r of runs) expect(Buffer.concat(r.received).equals(r.sent)).toBe(true);
    expect(s.liveResets(ends)).toEqual([]);
  }, 60_000);
});

describe('failover on a lossy LAN', () => {
  it('20 echo connections with 2% loss, duplication and reordering on the client link all complete byte-exact', async () => {
    const port = 7;
    const s = sim({ seed: 13, port, service: createEchoService, clientFaults: { lossPct: 2, duplicatePct: 1, reorderPct: 2, reorderDistance: 3 } });
    const runs = Array.from({ length: 20 }, () => echoConnection(s, port, 50_000 + s.prng.int(100_000)));
    const total = runs.reduce((n, r) => n + r.sent.length, 0);
    await until(() => runs.reduce((n, r) => n + r.receivedBytes(), 0) > total * 0.5, 30_000, 'half echoed');
    const report = await s.failover();
    expect(report.failed).toEqual([]);
    await Promise.all(runs.map((r) => r.done));
    for (const r of runs) expect(Buffer.concat(r.received).equals(r.sent)).toBe(true);
    await sleep(50);
    expect(s.liveResets(ends)).toEqual([]);
    expect(runs.flatMap((r) => r.errors)).toEqual([]);
    expect(s.continuityViolations()).toEqual([]);
  }, 60_000);
});

describe('failover of an http-static download', () => {
  it('a 3 MiB download continues on the backup: the body is byte-exact and no RST is sent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'understudy-repl-'));
    try {
      const s0 = sim({ seed: 21, port: 80, service: () => createHttpStaticService(dir) });
      const file = randomBytes(s0.prng, 3 * 1024 * 1024);
      writeFileSync(join(dir, 'big.bin'), file);
      const get = httpGet(s0, 80, '/big.bin');
      await until(() => get.receivedBytes() > file.length * 0.4, 30_000, '40% of the download');
      expect(get.receivedBytes()).toBeLessThan(file.length);
      const report = await s0.failover();
      expect(report).toMatchObject({ promoted: 1, failed: [] });
      await get.done;
      const body = get.body();
      expect(body.length).toBe(file.length);
      expect(sha(body)).toBe(sha(file));
      // Divergence is not asserted here: the Date header makes http-static non-deterministic
      // whenever the primary and the replica answer in different seconds.
      expect(s0.liveResets(ends)).toEqual([]);
      expect(s0.continuityViolations()).toEqual([]);
    } finally {
      await Promise.all(sims.map((x) => x.close()));
      sims = [];
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

/**
 * Checks one segment the primary put on the wire against what the backup had applied at that
 * instant (5.1 rule 1). Returns what it depended on, or a violation.
 */
function commitCheck(w: WireSegment, shadows: Iterable<Shadow>, finished: ReadonlySet<number>): { kind: 'syn-ack' | 'data' | 'fin' | 'ack-of-input' | 'other'; violation?: string } {
  const seg = w.seg;
  if ((seg.flags & TCP_RST) !== 0) return { kind: 'other' };
  let shadow: Shadow | undefined;
  for (const sh of shadows) if (sh.tuple.localPort === seg.srcPort && sh.tuple.remotePort === seg.dstPort && sh.tuple.remoteAddr === w.dst) shadow = sh;
  const what = `${seg.flags.toString(16)} seq ${seg.seq} ack ${seg.ack} len ${seg.payload.length} to port ${seg.dstPort}`;
  if (shadow === undefined) {
    // A packet released together with a later close record: the backup has applied the whole
    // life of that connection, more than the packet depends on.
    if (finished.has(seg.dstPort)) return { kind: 'other' };
    return { kind: 'other', violation: `${what}: the backup has no such connection` };
  }
  if ((seg.flags & TCP_SYN) !== 0) {
    return shadow.iss === seg.seq ? { kind: 'syn-ack' } : { kind: 'syn-ack', violation: `${what}: backup has ISS ${shadow.iss}` };
  }
  const fin = (seg.flags & TCP_FIN) !== 0;
  const end = seqDiff(seqAdd(seg.seq, seg.payload.length), seqAdd(shadow.iss, 1));
  if (seg.payload.length > 0 && end > shadow.outputEnd) return { kind: 'data', violation: `${what}: data up to offset ${end}, backup has ${shadow.outputEnd}` };
  if (fin && !shadow.ourFin) return { kind: 'fin', violation: `${what}: FIN the backup has not logged` };
  if ((seg.flags & TCP_ACK) !== 0 && !seqLe(seg.ack, shadow.rcvNxt)) return { kind: 'ack-of-input', violation: `${what}: acknowledges beyond the backup's RCV.NXT ${shadow.rcvNxt}` };
  if (fin) return { kind: 'fin' };
  if (seg.payload.length > 0) return { kind: 'data' };
  return { kind: seqDiff(seg.ack, seqAdd(shadow.irs, 1)) > 0 ? 'ack-of-input' : 'other' };
}

async function outputCommitRun(ungated: boolean): Promise<{ checked: Record<string, number>; violations: string[] }> {
  const port = 7;
  // A replication round trip of 2 to 10 ms: long enough that anything leaving early is seen.
  const s = sim({ seed: 31, port, service: createEchoService, ungated, replicationDelayMs: (p) => 1 + p.int(5) });
  const vip = ipv4FromString(VIP);
  const checked: Record<string, number> = {};
  const violations: string[] = [];
  // Client ports of the connections whose close or reset the backup has applied.
  const finished = new Set<number>();
  const shadows = s.backup!.shadows;
  const apply = shadows.apply.bind(shadows);
  shadows.apply = (r) => {
    if (r.kind === 'close' || r.kind === 'reset') {
      const sh = shadows.get(r.conn);
      if (sh !== undefined) finished.add(sh.tuple.remotePort);
    }
    apply(r);
  };
  s.onWire((w) => {
    if (w.from !== 'primary' || w.src !== vip) return;
    const r = commitCheck(w, shadows.all(), finished);
    checked[r.kind] = (checked[r.kind] ?? 0) + 1;
    if (r.violation !== undefined) violations.push(r.violation);
  });
  const runs = Array.from({ length: 5 }, () => echoConnection(s, port, 20_000 + s.prng.int(30_000)));
  await Promise.all(runs.map((r) => r.done));
  for (const r of runs) expect(Buffer.concat(r.received).equals(r.sent)).toBe(true);
  return { checked, violations };
}

describe('output commit', () => {
  it('no SYN-ACK, data, FIN or ACK of client bytes leaves the primary before the backup applied what it depends on', async () => {
    const { checked, violations } = await outputCommitRun(false);
    expect(violations).toEqual([]);
    // Every kind of dependent segment was seen, so the check was not vacuous.
    expect(checked['syn-ack']).toBeGreaterThanOrEqual(5);
    expect(checked['data']).toBeGreaterThan(50);
    expect(checked['fin']).toBeGreaterThanOrEqual(5);
    expect(checked['ack-of-input']).toBeGreaterThan(10);
  }, 60_000);

  it('the same check catches packets that leave ungated (the control case)', async () => {
    const { violations } = await outputCommitRun(true);
    expect(violations.length).toBeGreaterThan(0);
  }, 60_000);
});

describe('failover during handshakes', () => {
  it('connections whose SYN reached the primary complete on the backup; none is reset', async () => {
    const port = 7;
    const s = sim({ seed: 41, port, service: createEchoService, replicationDelayMs: (p) => 2 + p.int(4) });
    const runs: EchoRun[] = [];
    let opening = true;
    const opener = (async () => {
      while (opening && runs.length < 200) {
        runs.push(echoConnection(s, port, 1 + s.prng.int(3000)));
        await sleep(1);
      }
    })();
    // Kill while the backup holds a connection in SYN-RECEIVED whose SYN-ACK may still be held.
    const backup = s.backup!;
    await until(() => [...backup.shadows.all()].some((sh) => !sh.established) && s.primary.gate.heldPackets > 0, 30_000, 'a half-open connection on both nodes');
    const halfOpen = [...backup.shadows.all()].filter((sh) => !sh.established).length;
    const report = await s.failover();
    opening = false;
    await opener;
    expect(halfOpen).toBeGreaterThan(0);
    expect(report.failed).toEqual([]);
    await Promise.all(runs.map((r) => r.done));
    for (const r of runs) expect(Buffer.concat(r.received).equals(r.sent)).toBe(true);
    expect(s.liveResets(ends)).toEqual([]);
    expect(s.continuityViolations()).toEqual([]);
  }, 60_000);
});

/** Echo that greets first with the node's name: the backup's replica writes other bytes. */
function greetingEcho(name: string): () => Service {
  return () => {
    const set = new ConnectionSet();
    return {
      name: 'greeting-echo',
      onConnection(socket: ServiceSocket): void {
        if (!set.add(socket)) return;
        socket.write(`hello from ${name}\n`);
        socket.pipe(socket);
      },
      close: () => set.closeAll(),
    };
  };
}

describe('service replica', () => {
  it('counts a divergence on every connection where the replica writes other bytes than the primary', async () => {
    let n = 0;
    const names = ['primary', 'backup'];
    const s = sim({ seed: 51, port: 7, service: () => greetingEcho(names[n++]!)() });
    const runs = Array.from({ length: 3 }, () => echoConnection(s, 7, 5000));
    await Promise.all(runs.map((r) => r.done));
    await until(() => (s.backup?.status().divergences ?? 0) >= 3, 5000, 'divergences reported');
    expect(s.backup?.status().divergences).toBe(3);
    expect(s.lines.some((l) => /divergence on connection/.test(l))).toBe(true);
  }, 30_000);

  it('counts none when primary and replica write the same bytes', async () => {
    const s = sim({ seed: 52, port: 7, service: greetingEcho('same') });
    const runs = Array.from({ length: 3 }, () => echoConnection(s, 7, 5000));
    await Promise.all(runs.map((r) => r.done));
    await until(() => (s.backup?.replica.stats.connections ?? 0) >= 3, 5000, 'replicas opened');
    expect(s.backup?.status().divergences).toBe(0);
  }, 30_000);
});

describe('without a backup', () => {
  it('the primary serves unprotected, logs nothing, holds no packet, and says so', async () => {
    const s = sim({ seed: 61, port: 7, service: createEchoService, noBackup: true });
    const runs = Array.from({ length: 3 }, () => echoConnection(s, 7, 20_000));
    await Promise.all(runs.map((r) => r.done));
    for (const r of runs) expect(Buffer.concat(r.received).equals(r.sent)).toBe(true);
    const st = s.primary.status();
    expect(st.protected).toBe(false);
    expect(st.lastLsn).toBe(0);
    expect(st.unreplicated).toBe(3);
    expect(s.primary.gate.gateStats.held).toBe(0);
    expect(s.lines.some((l) => /UNPROTECTED/.test(l))).toBe(true);
  }, 30_000);

  it('a primary whose backup is lost lets held packets go and serves on unprotected', async () => {
    const s = sim({ seed: 62, port: 7, service: createEchoService, replicationDelayMs: () => 3 });
    const run = echoConnection(s, 7, 200_000);
    await until(() => run.receivedBytes() > 20_000, 10_000, 'some echo');
    s.replication?.cut();
    s.primary.backupLost('replication link cut');
    await run.done;
    expect(Buffer.concat(run.received).equals(run.sent)).toBe(true);
    expect(s.primary.status()).toMatchObject({ protected: false, heldPackets: 0 });
    expect(s.lines.some((l) => /UNPROTECTED.*replication link cut/.test(l))).toBe(true);
  }, 30_000);
});

describe('planned switchover', () => {
  it('the primary drains its log and hands over under 20 echo connections: every byte once, no RST', async () => {
    const port = 7;
    const s = sim({ seed: 121, port, service: createEchoService, replicationDelayMs: (p) => 1 + p.int(3) });
    const runs = Array.from({ length: 20 }, () => echoConnection(s, port, 50_000 + s.prng.int(100_000)));
    const total = runs.reduce((n, r) => n + r.sent.length, 0);
    await until(() => runs.reduce((n, r) => n + r.receivedBytes(), 0) > total * 0.4, 30_000, '40% echoed');
    const report = await s.switchover();
    expect(report.failed).toEqual([]);
    // Drained: the backup acknowledged every record, so every packet waiting for one had left.
    const st = s.primary.status();
    expect(st.ackedLsn).toBe(st.lastLsn);
    await Promise.all(runs.map((r) => r.done));
    for (const r of runs) expect(Buffer.concat(r.received).equals(r.sent)).toBe(true);
    expect(s.liveResets(ends)).toEqual([]);
    expect(s.continuityViolations()).toEqual([]);
  }, 60_000);
});

/** A download from a service that is not deterministic, like a `module:` app: its output goes into the log as bytes. */
function fileService(dir: string): Service {
  const set = new ConnectionSet();
  const http = createServer((req, res) => {
    res.sendDate = false;
    const f = join(dir, 'big.bin');
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': statSync(f).size });
    createReadStream(f).pipe(res);
  });
  return {
    name: 'file-bytes',
    onConnection(socket: ServiceSocket): void {
      if (!set.add(socket)) return;
      http.emit('connection', socket);
    },
    close: () => set.closeAll(),
  };
}

/**
 * The first backup goes; the primary serves on unprotected; a second backup joins mid-stream and
 * is brought up to date by snapshots (reintegration, 5.5); then the primary dies and the second
 * backup takes over. Returns the takeover report; the caller checks the clients.
 */
async function joinThenFailover(s: ReplicationSim, port: number, service: () => Service, progress: () => number): Promise<{ second: BackupNode; report: TakeoverReport }> {
  await until(() => progress() > 0.2, 30_000, '20% under way');
  s.replication!.cut();
  s.primary.backupLost('first backup gone');
  expect(s.primary.status().protected).toBe(false);
  await until(() => progress() > 0.35, 30_000, '35% under way, unprotected');

  let repl: MemoryReplication | null = null;
  const second = new BackupNode({ link: s.lan.node('backup2'), addresses: [VIP], port, service: service(), tcp: NODE_TCP, isnKey: ISN_KEY, sendAck: (lsn) => repl?.ack(lsn), scheduleAck: (run) => setImmediate(run) });
  extraBackups.push(second);
  s.primary.freshLog();
  repl = new MemoryReplication(s.primary.log, second, { delayMs: () => s.prng.int(3) });
  repl.connect();
  s.primary.backupAttached();
  await until(() => progress() > 0.6, 30_000, '60% under way, protected again');
  repl.cut();
  s.lan.cut('primary');
  await s.primary.kill();
  const report = second.takeover();
  s.lan.setOwner('backup2');
  return { second, report };
}

const extraBackups: BackupNode[] = [];
afterEach(async () => {
  for (const b of extraBackups.splice(0)) await b.close();
});

describe('reintegration: a backup joining a primary that serves unprotected', () => {
  it('reintegration: 20 echo connections mid-stream are brought over by snapshot and survive the next failover byte-exact', async () => {
    const port = 7;
    const s = sim({ seed: 141, port, service: createEchoService });
    const runs = Array.from({ length: 20 }, () => echoConnection(s, port, 300_000 + s.prng.int(200_000)));
    const total = runs.reduce((n, r) => n + r.sent.length, 0);
    const progress = (): number => runs.reduce((n, r) => n + r.receivedBytes(), 0) / total;
    const { second, report } = await joinThenFailover(s, port, createEchoService, progress);
    // Every connection was open when the second backup joined: all came by snapshot.
    expect(s.lines.some((l) => /attach done \(20 connection\(s\) brought over by snapshot, 0 waiting/.test(l))).toBe(true);
    expect(second.replica.stats.snapshots).toBe(20);
    expect(report).toMatchObject({ promoted: 20, failed: [] });
    await Promise.all(runs.map((r) => r.done));
    for (const r of runs) {
      const got = Buffer.concat(r.received);
      expect(got.length).toBe(r.sent.length);
      expect(sha(got)).toBe(sha(r.sent));
    }
    // The replicas restarted at a boundary and wrote what the primary wrote.
    expect(second.replica.stats.divergences).toBe(0);
    expect(s.liveResets(ends)).toEqual([]);
  }, 60_000);

  it('reintegration: an http-static download joined at a third regenerates what the client had, then continues on the new backup byte-exact', async () => {
    await inTempDir(async (dir) => {
      const service = (): Service => createHttpStaticService(dir);
      const s = sim({ seed: 142, port: 80, service });
      // Larger than what the client holds at the join plus the send buffer (2 MiB): the response
      // must still be under way, or the service has passed its boundary and nothing is regenerated.
      const file = randomBytes(s.prng, 8 * 1024 * 1024);
      writeFileSync(join(dir, 'big.bin'), file);
      const get = httpGet(s, 80, '/big.bin');
      const { second, report } = await joinThenFailover(s, 80, service, () => get.receivedBytes() / file.length);
      expect(second.replica.stats.snapshots).toBe(1);
      // The replica's copy started from the request and dropped what the client had acknowledged.
      expect(second.replica.stats.regenerating).toBeGreaterThan(file.length / 4);
      expect(report).toMatchObject({ promoted: 1, failed: [] });
      await expectWholeBodies(s, [get], file);
    });
  }, 60_000);

  // CI once saw a lab download joined this way end 128 KiB short after the takeover (a `module:`
  // service, so bytes in the log, and curl --limit-rate); never reproduced. The same shape here,
  // with readers that leave the client's window full at random moments.
  for (const seed of [301, 302, 303]) {
    it(`reintegration: seed ${seed}: four window-limited downloads whose output is logged as bytes, joined mid-way, continue byte-exact after the takeover`, async () => {
      await inTempDir(async (dir) => {
        const service = (): Service => fileService(dir);
        const s = sim({ seed, port: 80, service });
        const file = randomBytes(s.prng, 6 * 1024 * 1024);
        writeFileSync(join(dir, 'big.bin'), file);
        const gets = [0, 1, 2, 3].map(() => httpGet(s, 80, '/big.bin', () => (s.prng.int(2) === 0 ? 1 + s.prng.int(5) : 0)));
        const { second, report } = await joinThenFailover(s, 80, service, () => Math.min(...gets.map((g) => g.receivedBytes())) / file.length);
        expect(second.replica.stats.snapshots).toBe(4);
        expect(report).toMatchObject({ promoted: 4, failed: [] });
        await expectWholeBodies(s, gets, file);
      });
    }, 60_000);
  }
});

/** Runs `fn` with a fresh directory; then closes the sims and removes the directory. */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-reint-'));
  try {
    await fn(dir);
  } finally {
    await Promise.all(sims.map((x) => x.close()));
    sims = [];
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every download ends with the whole file as its body, and no live connection saw a RST. */
async function expectWholeBodies(s: ReplicationSim, gets: readonly ReturnType<typeof httpGet>[], file: Buffer): Promise<void> {
  await Promise.all(gets.map((g) => g.done));
  for (const g of gets) {
    const body = g.body();
    expect(body.length).toBe(file.length);
    expect(sha(body)).toBe(sha(file));
  }
  expect(s.liveResets(ends)).toEqual([]);
}

describe('fencing', () => {
  it('a hung primary that comes back after the takeover, told of the higher epoch, sends nothing more', async () => {
    const port = 7;
    const s = sim({ seed: 151, port, service: createEchoService });
    const runs = Array.from({ length: 10 }, () => echoConnection(s, port, 200_000));
    const total = runs.reduce((n, r) => n + r.sent.length, 0);
    await until(() => runs.reduce((n, r) => n + r.receivedBytes(), 0) > total * 0.3, 30_000, '30% echoed');
    s.failoverHung();
    // Its backup is gone: it goes unprotected and lets its held packets go (into the cut cable).
    s.primary.backupLost('backup silent');
    await sleep(20);
    s.resumePrimary();
    s.primary.fence(`backup took over with epoch ${s.backup!.epoch}`);
    const fencedAt = s.wire.length;
    await Promise.all(runs.map((r) => r.done));
    for (const r of runs) expect(Buffer.concat(r.received).equals(r.sent)).toBe(true);
    expect(s.wire.slice(fencedAt).filter((w) => w.from === 'primary')).toEqual([]);
    expect(s.primary.status().fenced).toBe(true);
    expect(s.lines.some((l) => /FENCED/.test(l))).toBe(true);
    expect(s.liveResets(ends)).toEqual([]);
  }, 60_000);
});
