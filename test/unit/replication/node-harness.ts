// Two ReplicatedNodes and a client without root: each on an in-memory link through a tiny
// "switch" that sends the client's packets to whichever node last took the VIP (addRoute) and
// nowhere once it was released; a node can be cut off (its packets dropped both ways). The
// replication channel is real TCP on loopback; both nodes serve echo on port 7.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { ReplicationKey } from '../../../src/replication/auth.js';
import { ReplicatedNode, type ReplicationLogger } from '../../../src/replication/node/replicated-node.js';
import { createService } from '../../../src/services/spec.js';
import { createStack, type Stack } from '../../../src/stack/stack.js';
import type { Link } from '../../../src/tun/link.js';
import { createMemoryLinkPair } from '../../../src/tun/memory-link.js';

export const VIP = '198.18.0.100';
export const CLIENT = '198.18.0.10';
const MTU = 1500;

export type NodeName = 'a' | 'b';

export interface TestNode {
  rn: ReplicatedNode;
  stack: Stack;
  log: ReturnType<typeof recorder>;
  /** Gratuitous ARPs this node sent for the VIP. */
  garps: number;
}

export interface Pair {
  /** Starts as the primary. */
  a: TestNode;
  /** Starts as the backup. */
  b: TestNode;
  client: Stack;
  /** The node the client's packets go to now. */
  holder(): NodeName | null;
  /** From now on nothing of this node's reaches the client, and nothing reaches it. */
  cut(name: NodeName): void;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export function recorder(): ReplicationLogger & { events: { event: string; fields: Record<string, unknown> }[] } {
  const events: { event: string; fields: Record<string, unknown> }[] = [];
  const put = (event: string, fields: Record<string, unknown> = {}): void => void events.push({ event, fields });
  return { events, debug: put, info: put, warn: put, error: put };
}

export async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Node a (primary) and b (backup), a protected, and a client stack; `cleanup` collects the teardown. */
export async function startPair(cleanup: (() => unknown)[]): Promise<Pair> {
  const key = new ReplicationKey(randomBytes(32));
  const ports = { a: await freePort(), b: await freePort() };
  const [clientLink, clientSide] = createMemoryLinkPair(MTU);
  const sides = new Map<NodeName, Link>();
  const links = new Map<NodeName, Link>();
  for (const name of ['a', 'b'] as const) {
    const [link, side] = createMemoryLinkPair(MTU);
    links.set(name, link);
    sides.set(name, side);
  }
  let holder: NodeName | null = 'a';
  const cut = new Set<NodeName>();
  clientSide.onReceive((ps) => {
    if (holder !== null && !cut.has(holder)) sides.get(holder)!.send(ps);
  });
  for (const [name, side] of sides) side.onReceive((ps) => !cut.has(name) && clientSide.send(ps));

  const makeNode = async (name: NodeName): Promise<TestNode> => {
    const other: NodeName = name === 'a' ? 'b' : 'a';
    const log = recorder();
    const rn = new ReplicatedNode(
      {
        role: name === 'a' ? 'primary' : 'backup',
        listen: { host: '127.0.0.1', port: ports[name] },
        peer: { host: '127.0.0.1', port: ports[other] },
        key,
        // Generous: both nodes and the client share one event loop here, and with no LAN path
        // a stall of the loop longer than dead-after would look like a dead primary.
        heartbeatMs: 50,
        deadAfterMs: 1000,
        vip: VIP,
        nodeId: name,
      },
      log,
    );
    const node: TestNode = { rn, stack: undefined as unknown as Stack, log, garps: 0 };
    const stack = createStack({ link: rn.wrapLink(links.get(name)!), addresses: [VIP], wrapEnv: (e) => rn.wrapEnv(e) });
    const service = createService({ kind: 'echo' });
    const server = stack.createServer((s) => service.onConnection(s));
    await new Promise<void>((r) => server.listen(7, VIP, 511, () => r()));
    await rn.start(stack, service, {
      addRoute: async () => void (holder = name),
      enableProxyArp: async () => true,
      gratuitousArp: async (count) => void (node.garps += count),
      releaseVip: async () => {
        if (holder === name) holder = null;
      },
      adopted: () => undefined,
    });
    cleanup.push(async () => {
      await rn.close();
      await service.close();
      await stack.close();
    });
    node.stack = stack;
    return node;
  };

  const b = await makeNode('b');
  const a = await makeNode('a');
  await until('the primary is protected', () => a.rn.status().protected);
  const client = createStack({ link: clientLink, addresses: [CLIENT] });
  cleanup.push(() => client.close());
  return { a, b, client, holder: () => holder, cut: (name) => void cut.add(name) };
}

/** One echo connection fed `data` in paced 32 KiB writes, then ended; what came back, and whether it ended. */
export function pacedEcho(client: Stack, data: Buffer, cleanup: (() => unknown)[]): { received: () => Buffer; ended: () => boolean; state: () => string } {
  const sock = client.connect({ host: VIP, port: 7 });
  const got: Buffer[] = [];
  sock.on('data', (d: Buffer) => void got.push(Buffer.from(d)));
  let ended = false;
  sock.on('end', () => (ended = true));
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
  return { received: () => Buffer.concat(got), ended: () => ended, state: () => sock.tcpState };
}
