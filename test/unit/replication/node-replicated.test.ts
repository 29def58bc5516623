// ReplicatedNode without root: a client stack, a primary and a backup, each on an in-memory link
// through a tiny "switch" that sends the client's packets to whichever node holds the VIP (the
// backup's addRoute moves it). The replication channel is real TCP on loopback. The primary is
// "killed" by closing its channel and cutting its link, mid-stream: the echo on the client's
// connection must come back complete and in order through the backup.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicationKey } from '../../../src/replication/auth.js';
import { HoldLink } from '../../../src/replication/node/hold-link.js';
import { ReplicatedNode, type ReplicationLogger, type VipControl } from '../../../src/replication/node/replicated-node.js';
import { createService } from '../../../src/services/spec.js';
import { createStack, type Stack } from '../../../src/stack/stack.js';
import { createMemoryLinkPair } from '../../../src/tun/memory-link.js';
import type { Link } from '../../../src/tun/link.js';

const VIP = '198.18.0.100';
const CLIENT = '198.18.0.10';
const MTU = 1500;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function recorder(): ReplicationLogger & { events: { event: string; fields: Record<string, unknown> }[] } {
  const events: { event: string; fields: Record<string, unknown> }[] = [];
  const put = (event: string, fields: Record<string, unknown> = {}): void => void events.push({ event, fields });
  return { events, debug: put, info: put, warn: put, error: put };
}

async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('ReplicatedNode', () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('HoldLink keeps packets in order while holding and sends them on release', () => {
    const sent: number[] = [];
    const inner: Link = {
      mtu: 1500,
      stats: { rxPackets: 0, rxBytes: 0, rxBatches: 0, rxDropped: 0, txPackets: 0, txBytes: 0, txDropped: 0 },
      send: (ps) => void sent.push(...ps.map((p) => p[0]!)),
      onReceive: () => undefined,
      close: () => undefined,
    };
    const h = new HoldLink(inner);
    h.send([Uint8Array.of(1)]);
    h.hold();
    h.send([Uint8Array.of(2), Uint8Array.of(3)]);
    h.send([Uint8Array.of(4)]);
    expect(sent).toEqual([1]);
    expect(h.release()).toBe(3);
    h.send([Uint8Array.of(5)]);
    expect(sent).toEqual([1, 2, 3, 4, 5]);
  });

  it('a backup takes over an echo connection mid-stream: every byte back once, in order', async () => {
    const key = new ReplicationKey(randomBytes(32));
    const [pPort, bPort] = [await freePort(), await freePort()];
    const [clientLink, clientSide] = createMemoryLinkPair(MTU);
    const [primaryLink, primarySide] = createMemoryLinkPair(MTU);
    const [backupLink, backupSide] = createMemoryLinkPair(MTU);
    // The switch: client packets go to the node holding the VIP; a killed primary is cut off.
    let active: Link = primarySide;
    let primaryAlive = true;
    clientSide.onReceive((ps) => active.send(ps));
    primarySide.onReceive((ps) => primaryAlive && clientSide.send(ps));
    backupSide.onReceive((ps) => clientSide.send(ps));

    const nodes: { rn: ReplicatedNode; stack: Stack; log: ReturnType<typeof recorder> }[] = [];
    const makeNode = async (role: 'primary' | 'backup', link: Link, vip: Partial<VipControl>): Promise<(typeof nodes)[number]> => {
      const log = recorder();
      const rn = new ReplicatedNode(
        {
          role,
          listen: { host: '127.0.0.1', port: role === 'primary' ? pPort : bPort },
          peer: { host: '127.0.0.1', port: role === 'primary' ? bPort : pPort },
          key,
          // Generous: three nodes and the client share one event loop here, and with no LAN path
          // a stall of the loop longer than dead-after would look like a dead primary.
          heartbeatMs: 50,
          deadAfterMs: 1000,
          vip: VIP,
          nodeId: role,
        },
        log,
      );
      const stack = createStack({ link: rn.wrapLink(link), addresses: [VIP], wrapEnv: (e) => rn.wrapEnv(e) });
      const service = createService({ kind: 'echo' });
      const server = stack.createServer((s) => service.onConnection(s));
      await new Promise<void>((r) => server.listen(7, VIP, 511, () => r()));
      await rn.start(stack, service, {
        addRoute: async () => undefined,
        enableProxyArp: async () => false,
        gratuitousArp: async () => undefined,
        releaseVip: async () => undefined,
        adopted: () => undefined,
        ...vip,
      });
      const n = { rn, stack, log };
      nodes.push(n);
      cleanup.push(async () => {
        await rn.close();
        await service.close();
        await stack.close();
      });
      return n;
    };

    const backup = await makeNode('backup', backupLink, { addRoute: async () => void (active = backupSide) });
    const primary = await makeNode('primary', primaryLink, {});
    await until('the primary is protected', () => primary.rn.status().protected);

    const client = createStack({ link: clientLink, addresses: [CLIENT] });
    cleanup.push(() => client.close());
    const data = randomBytes(2 * 1024 * 1024);
    const sock = client.connect({ host: VIP, port: 7 });
    const got: Buffer[] = [];
    let received = 0;
    sock.on('data', (d: Buffer) => {
      got.push(Buffer.from(d));
      received += d.length;
    });
    let ended = false;
    sock.on('end', () => (ended = true));
    // Paced so that the kill lands mid-stream.
    let off = 0;
    const writer = setInterval(() => {
      if (off >= data.length) {
        clearInterval(writer);
        sock.end();
        return;
      }
      sock.write(data.subarray(off, off + 32 * 1024));
      off += 32 * 1024;
    }, 5);
    cleanup.push(() => clearInterval(writer));

    await until('a third of the echo is back', () => received >= data.length / 3);
    // "SIGKILL": the primary's packets stop and its channel goes silent (closed, not a goodbye the
    // backup could act on: only the dead-after silence makes it take over).
    primaryAlive = false;
    primarySide.onReceive(() => undefined);
    active = { mtu: MTU, stats: clientSide.stats, send: () => undefined, onReceive: () => undefined, close: () => undefined };
    await primary.rn.close();

    await until('the echo to end', () => ended, 20_000).catch((e: Error) => {
      const events = backup.log.events.map((x) => `${x.event} ${JSON.stringify(x.fields)}`).join('\n');
      throw new Error(`${e.message}: ${received} of ${data.length} bytes back, client socket ${sock.tcpState}\nbackup status ${JSON.stringify(backup.rn.status())}\n${events}`);
    });
    const all = Buffer.concat(got);
    // The tail matters most: the client's FIN reaches the backup before its service has echoed
    // the last bytes, which must still go out ahead of our FIN.
    expect(all.length).toBe(data.length);
    expect(all.equals(data)).toBe(true);
    const steps = backup.log.events.map((e) => e.event).filter((e) => e.startsWith('takeover.'));
    expect(steps[0]).toBe('takeover.detected');
    expect(steps.at(-1)).toBe('takeover.done');
    const st = backup.rn.status();
    expect(st.role).toBe('primary');
    expect(st.epoch).toBe(2);
    expect(st.takeover?.promoted).toBe(1);
  }, 30_000);
});
