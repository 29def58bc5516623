// proxy: on the backup. The backup runs its own instance of the service on replica sockets fed
// from the replication log (ARCHITECTURE.md 5.5); for proxy: that instance connects to the backup
// host's own backend. These tests drive a ServiceReplica by hand with log records and check the
// two sides of the determinism contract: a backend that answers the same on both hosts produces no
// divergence, and one that does not is reported, with the primary's bytes winning where both exist.

import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ServiceReplica, type AttachedSocket } from '../../../src/replication/service-replica.js';
import { ShadowTable } from '../../../src/replication/shadow.js';
import { createProxyService } from '../../../src/services/proxy.js';
import type { Service } from '../../../src/services/service.js';
import { logApplier, OPEN, StackSocketStandIn } from '../replication/replica-fixtures.js';
import { sleep } from './helpers.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('proxy: as the service replica on the backup', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** The backup host's backend: replies to each chunk with reply(chunk). */
  async function backupBackend(reply: (data: string) => string): Promise<number> {
    const sockets: Socket[] = [];
    const server: Server = createServer((s) => {
      sockets.push(s);
      s.on('data', (d: Buffer) => s.write(reply(d.toString())));
      s.on('error', () => {});
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    });
    return (server.address() as { port: number }).port;
  }

  function replicaOf(service: Service) {
    const divergences: string[] = [];
    const replica = new ServiceReplica(service, { say: (line) => divergences.push(line) });
    const apply = logApplier(new ShadowTable(() => 0, replica));
    cleanups.push(() => service.close());
    return { replica, apply, divergences };
  }

  async function replicaWrote(replica: ServiceReplica, bytes: number): Promise<void> {
    while ((replica.socketOf(1)?.bytesWritten ?? 0) < bytes) await sleep(2);
  }

  it('with a deterministic backend, the replica produces what the primary sent: no divergence', async () => {
    const port = await backupBackend((d) => d.toUpperCase());
    const { replica, apply, divergences } = replicaOf(createProxyService({ host: '127.0.0.1', port }));
    apply(OPEN);
    apply({ kind: 'input', conn: 1, offset: 0, data: enc('get key'), rcvNxt: 5008, fin: false });
    // What the primary's own backend (the same program on the primary host) answered.
    apply({ kind: 'output', conn: 1, offset: 0, data: enc('GET KEY'), fin: false });
    await replicaWrote(replica, 7);
    await sleep(10);
    expect(divergences).toEqual([]);
    expect(replica.stats.divergences).toBe(0);
    expect(replica.socketOf(1)?.matcher.compared).toBe(7);
  });

  it('with a backend that answers differently, a divergence is reported and the primary bytes win', async () => {
    // E.g. a server that puts its host name or the time into its replies.
    const port = await backupBackend(() => 'backup-host says hello');
    const { replica, apply, divergences } = replicaOf(createProxyService({ host: '127.0.0.1', port }));
    apply(OPEN);
    apply({ kind: 'input', conn: 1, offset: 0, data: enc('hi'), rcvNxt: 5003, fin: false });
    apply({ kind: 'output', conn: 1, offset: 0, data: enc('primary says hello'), fin: false });
    await replicaWrote(replica, 'backup-host says hello'.length);
    await sleep(10);
    expect(replica.stats.divergences).toBe(1);
    expect(divergences).toEqual([expect.stringMatching(/^replication: divergence on connection 1 /)]);

    // Takeover: the client already has the primary's 18 bytes; only the replica's bytes beyond
    // them go out — the tail of a different reply, which is what "the primary's bytes win" costs
    // a non-deterministic service.
    const sock = replica.release(1);
    if (sock === undefined) throw new Error('no replica socket');
    const promoted = new StackSocketStandIn();
    sock.attach(promoted as unknown as AttachedSocket);
    await sleep(10);
    expect(promoted.written).toBe('backup-host says hello'.slice('primary says hello'.length));
  });
});
