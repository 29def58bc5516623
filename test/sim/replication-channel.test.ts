// The nodes replicating over the real authenticated channel (kernel TCP on 127.0.0.1): a failover
// under echo traffic, and a cut replication link that leaves the primary serving, unprotected.

import { afterEach, describe, expect, it } from 'vitest';
import { parseKey } from '../../src/replication/auth.js';
import { BackupNode } from '../../src/replication/backup-node.js';
import { ReplicationChannel } from '../../src/replication/channel.js';
import { MemoryLan } from '../../src/replication/memory-lan.js';
import { bindBackupNode, bindPrimaryNode, type PrimaryBinding } from '../../src/replication/node-channel.js';
import { PrimaryNode } from '../../src/replication/primary-node.js';
import { createEchoService } from '../../src/services/echo.js';
import { createStack, type Stack } from '../../src/stack/stack.js';
import { createPrng } from '../../src/tun/prng.js';
import { LanHeartbeatReceiver } from '../../src/replication/lan-heartbeat.js';
import { LanBeacon } from '../../src/replication/node/lan-beacon.js';
import { watchPrimary } from '../../src/replication/primary-watch.js';
import { CLIENT, FAST_TCP, NODE_TCP, VIP, randomBytes, until } from './replication-harness.js';

const KEY = parseKey(new Uint8Array(32).fill(0x5a));
const PORT = 7;

interface Nodes {
  lan: MemoryLan;
  client: Stack;
  primary: PrimaryNode;
  backup: BackupNode;
  pch: ReplicationChannel;
  bch: ReplicationChannel;
  binding: PrimaryBinding;
  lines: string[];
}

let open: Nodes[] = [];
afterEach(async () => {
  for (const n of open) {
    n.binding.stop();
    await n.pch.close();
    await n.bch.close();
    await n.client.close();
    if (n.lan.vipOwner === 'primary') await n.primary.close();
    await n.backup.close();
  }
  open = [];
});

async function nodes(seed: number): Promise<Nodes> {
  const lan = new MemoryLan(1500);
  const lines: string[] = [];
  const say = (l: string): void => {
    lines.push(l);
  };
  const prng = createPrng(seed);
  const rand = (): number => prng.next();
  const isnKey = new Uint8Array(16).fill(9);
  const client = createStack({ link: lan.client, addresses: [CLIENT], tcp: FAST_TCP, random: rand });
  const primary = new PrimaryNode({ link: lan.node('primary'), addresses: [VIP], port: PORT, service: createEchoService(), tcp: NODE_TCP, isnKey, random: rand, heartbeatMs: 20, say });
  lan.setOwner('primary');
  const pch = new ReplicationChannel({ role: 'primary', nodeId: 'a', key: KEY, listen: { host: '127.0.0.1', port: 0 }, epoch: () => 1, lastLsn: () => primary.log.lastLsn, heartbeatIntervalMs: 20, silenceTimeoutMs: 200, log: say });
  const binding = bindPrimaryNode(primary, pch, { graceMs: 100, say });
  await pch.start();
  let bch: ReplicationChannel | null = null;
  const backup = new BackupNode({
    link: lan.node('backup'),
    addresses: [VIP],
    port: PORT,
    service: createEchoService(),
    tcp: NODE_TCP,
    isnKey,
    random: rand,
    sendAck: (lsn) => bch?.sendAck(lsn),
    scheduleAck: (run) => setImmediate(run),
    say,
  });
  bch = new ReplicationChannel({
    role: 'backup',
    nodeId: 'b',
    key: KEY,
    connect: { host: '127.0.0.1', port: pch.port as number },
    epoch: () => backup.epoch,
    lastLsn: () => backup.lastApplied,
    heartbeatIntervalMs: 20,
    silenceTimeoutMs: 200,
    reconnect: { initialMs: 10, maxMs: 50 },
    log: say,
  });
  bindBackupNode(backup, bch);
  await bch.start();
  const n: Nodes = { lan, client, primary, backup, pch, bch, binding, lines };
  open.push(n);
  await until(() => primary.status().protected, 5000, 'the primary to be protected');
  return { ...n };
}

function echo(n: Nodes, data: Buffer): { received: () => Buffer; bytes: () => number; done: Promise<void> } {
  const s = n.client.connect({ host: VIP, port: PORT });
  const chunks: Buffer[] = [];
  let got = 0;
  s.on('data', (d: Buffer) => {
    chunks.push(d);
    got += d.length;
  });
  const done = new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.once('end', () => resolve());
  });
  // Paced writes, so the kill falls mid-stream.
  void (async () => {
    for (let at = 0; at < data.length; at += 4096) {
      s.write(data.subarray(at, at + 4096));
      await new Promise((r) => setTimeout(r, 1));
    }
    s.end();
  })();
  return { received: () => Buffer.concat(chunks), bytes: () => got, done };
}

describe('replication over the authenticated channel', () => {
  it('a primary killed mid-stream is taken over by the backup that followed it over the channel', async () => {
    const n = await nodes(71);
    const prng = createPrng(72);
    const datas = Array.from({ length: 5 }, () => randomBytes(prng, 200_000));
    const runs = datas.map((d) => echo(n, d));
    await until(() => runs.every((r) => r.bytes() > 20_000), 20_000, 'echo under way');
    // The primary dies: its cable and its end of the replication link go at once.
    n.lan.cut('primary');
    await n.pch.close();
    await n.primary.kill();
    const report = n.backup.takeover();
    n.lan.setOwner('backup');
    expect(report).toMatchObject({ promoted: 5, failed: [] });
    await Promise.all(runs.map((r) => r.done));
    runs.forEach((r, i) => expect(r.received().equals(datas[i]!)).toBe(true));
    expect(n.backup.status().logError).toBeNull();
  }, 60_000);

  it('a cut replication link leaves the primary serving, unprotected after the grace period, and saying so', async () => {
    const n = await nodes(81);
    const data = randomBytes(createPrng(82), 300_000);
    const run = echo(n, data);
    await until(() => run.bytes() > 30_000, 20_000, 'echo under way');
    await n.bch.close();
    await run.done;
    expect(run.received().equals(data)).toBe(true);
    await until(() => !n.primary.status().protected, 5000, 'the primary to give up its backup');
    expect(n.binding.gaveUp).toBe(true);
    expect(n.primary.status().heldPackets).toBe(0);
    expect(n.lines.some((l) => /UNPROTECTED.*away for 100 ms/.test(l))).toBe(true);

    // A new, empty backup dials in: the primary starts a fresh log and protects new connections.
    let ch2: ReplicationChannel | null = null;
    const second = new BackupNode({ link: n.lan.node('backup2'), addresses: [VIP], port: PORT, service: createEchoService(), tcp: NODE_TCP, isnKey: new Uint8Array(16).fill(9), sendAck: (lsn) => ch2?.sendAck(lsn), scheduleAck: (run) => setImmediate(run) });
    ch2 = new ReplicationChannel({ role: 'backup', nodeId: 'c', key: KEY, connect: { host: '127.0.0.1', port: n.pch.port as number }, epoch: () => 1, lastLsn: () => second.lastApplied, heartbeatIntervalMs: 20, silenceTimeoutMs: 200, reconnect: { initialMs: 10, maxMs: 50 } });
    bindBackupNode(second, ch2);
    try {
      await ch2.start();
      await until(() => n.primary.status().protected, 5000, 'protection with the second backup');
      const again = echo(n, data.subarray(0, 50_000));
      await again.done;
      expect(again.received().equals(data.subarray(0, 50_000))).toBe(true);
      await until(() => second.status().shadows === 0 && second.lastApplied > 0, 5000, 'the second backup to follow the new connection');
      expect(n.lines.some((l) => /joins an unprotected primary/.test(l))).toBe(true);
    } finally {
      await ch2.close();
      await second.close();
    }
  }, 60_000);
});

describe('automatic takeover', () => {
  it('the backup declares the primary dead when the channel and the LAN heartbeats fall silent, and takes over on its own', async () => {
    const n = await nodes(91);
    const rx = new LanHeartbeatReceiver(KEY, { host: '127.0.0.1', port: 0 });
    await rx.start();
    const tx = new LanBeacon({ key: KEY, nodeId: 'a', role: () => 'primary', epoch: () => 1, target: { host: '127.0.0.1', port: rx.port, broadcast: false }, intervalMs: 20 });
    await tx.start();
    let tookOver = false;
    const watch = watchPrimary({
      channel: n.bch,
      lan: rx,
      primaryNodeId: 'a',
      deadAfterMs: 100,
      onDead: () => {
        n.backup.takeover();
        n.lan.setOwner('backup');
        tookOver = true;
      },
    });
    try {
      const prng = createPrng(92);
      const datas = Array.from({ length: 5 }, () => randomBytes(prng, 200_000));
      const runs = datas.map((d) => echo(n, d));
      await until(() => runs.every((r) => r.bytes() > 20_000), 20_000, 'echo under way');
      expect(watch.detector.check()).toBe('alive');
      // The process dies: cable, channel and heartbeats at once.
      n.lan.cut('primary');
      tx.close();
      await n.pch.close();
      await n.primary.kill();
      await until(() => tookOver, 5000, 'the takeover');
      await Promise.all(runs.map((r) => r.done));
      runs.forEach((r, i) => expect(r.received().equals(datas[i]!)).toBe(true));
    } finally {
      watch.stop();
      tx.close();
      rx.close();
    }
  }, 60_000);
});

describe('fencing over the channel', () => {
  it('a primary cut off from the LAN, still on the channel, fences itself when the backup announces its higher epoch', async () => {
    const n = await nodes(101);
    const data = randomBytes(createPrng(102), 200_000);
    const run = echo(n, data);
    await until(() => run.bytes() > 20_000, 20_000, 'echo under way');
    n.lan.cut('primary');
    n.backup.takeover();
    n.lan.setOwner('backup');
    await until(() => n.primary.status().fenced, 5000, 'the old primary to fence itself');
    expect(n.lines.some((l) => /FENCED.*epoch 2/.test(l))).toBe(true);
    let fromOld = 0;
    n.lan.watch((from) => {
      if (from === 'primary') fromOld++;
    });
    n.lan.reconnect('primary');
    await run.done;
    expect(run.received().equals(data)).toBe(true);
    expect(fromOld).toBe(0);
  }, 60_000);
});
