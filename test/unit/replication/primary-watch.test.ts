// The backup's watch over a real channel and real UDP heartbeats on 127.0.0.1: a cut replication
// link alone leaves the primary suspect; silence on both paths declares it dead, once.

import { afterEach, describe, expect, it } from 'vitest';
import { parseKey } from '../../../src/replication/auth.js';
import { ReplicationChannel } from '../../../src/replication/channel.js';
import { LanHeartbeatReceiver } from '../../../src/replication/lan-heartbeat.js';
import { LanBeacon } from '../../../src/replication/node/lan-beacon.js';
import { watchPrimary } from '../../../src/replication/primary-watch.js';

const KEY = parseKey(new Uint8Array(32).fill(0xb7));
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('watchPrimary', () => {
  it('keeps a primary heard on the LAN alive when the replication link is cut, and declares it dead when both go silent', async () => {
    const primary = new ReplicationChannel({ role: 'primary', nodeId: 'a', key: KEY, listen: { host: '127.0.0.1', port: 0 }, epoch: () => 1, lastLsn: () => 0, heartbeatIntervalMs: 20, silenceTimeoutMs: 100 });
    await primary.start();
    cleanups.push(() => primary.close());
    const backup = new ReplicationChannel({ role: 'backup', nodeId: 'b', key: KEY, connect: { host: '127.0.0.1', port: primary.port as number }, epoch: () => 1, lastLsn: () => 0, heartbeatIntervalMs: 20, silenceTimeoutMs: 100, reconnect: { initialMs: 1000, maxMs: 1000 } });
    cleanups.push(() => backup.close());
    const rx = new LanHeartbeatReceiver(KEY, { host: '127.0.0.1', port: 0 });
    await rx.start();
    cleanups.push(() => rx.close());
    const tx = new LanBeacon({ key: KEY, nodeId: 'a', role: () => 'primary', epoch: () => 1, target: { host: '127.0.0.1', port: rx.port, broadcast: false }, intervalMs: 20 });
    cleanups.push(() => tx.close());
    await tx.start();
    let dead = 0;
    let suspect = 0;
    const watch = watchPrimary({ channel: backup, lan: rx, primaryNodeId: 'a', deadAfterMs: 150, onDead: () => dead++, onSuspect: () => suspect++ });
    cleanups.push(() => watch.stop());
    await backup.start();
    await until(() => backup.peer !== null, 5000);
    await sleep(200);
    expect(watch.detector.check()).toBe('alive');

    await primary.close();
    await until(() => suspect > 0, 5000);
    await sleep(300);
    expect(dead).toBe(0);

    tx.close();
    await until(() => dead > 0, 5000);
    await sleep(100);
    expect(dead).toBe(1);
  }, 20_000);
});
