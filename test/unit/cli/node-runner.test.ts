// The node lifecycle with the host side faked: the "tun" is one end of a memory link, routes and
// ARP are recorded calls, the stack is ours. A client stack on the other end speaks HTTP to the VIP.

import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/cli/log.js';
import { runNodeCommand } from '../../../src/cli/node-command.js';
import { createNode, NodeStartError, startNode, type NodeConfig, type NodeDeps, type NodeTun, type RunningNode } from '../../../src/cli/node-runner.js';
import { createStack, type Stack } from '../../../src/stack/stack.js';
import { createMemoryLinkPair } from '../../../src/tun/memory-link.js';
import { RawHttpClient } from '../services/helpers.js';

const VIP = '198.18.0.100';

interface Harness {
  deps: NodeDeps;
  calls: string[];
  lines: string[];
  client: Stack;
  failTun: (err: Error) => void;
}

function harness(failAt?: string, slowAt?: string): Harness {
  const [a, b] = createMemoryLinkPair(1500);
  const calls: string[] = [];
  const lines: string[] = [];
  let tunError: ((err: Error) => void) | undefined;
  const step = async (name: string) => {
    calls.push(name);
    if (name.startsWith(slowAt ?? '\0')) await new Promise((r) => setTimeout(r, 200));
    if (name.startsWith(failAt ?? '\0')) throw new Error(`${name} refused`);
  };
  let tunClosed = false;
  const tun: NodeTun = {
    name: 'fake0',
    mtu: a.mtu,
    stats: a.stats,
    send: (p) => a.send(p),
    onReceive: (h) => a.onReceive(h),
    onError: (h: (err: Error) => void) => void (tunError = h),
    close: () => {
      // The stack closes its link too; record the first close only, as the device would act once.
      if (!tunClosed) calls.push('tun.close');
      tunClosed = true;
      a.close();
    },
  };
  const deps: NodeDeps = {
    log: createLogger({ level: 'info', format: 'pretty', write: (l) => lines.push(l) }),
    network: {
      openTun: async (o) => {
        await step(`openTun ${o.name} ${o.mtu}`);
        return tun;
      },
      addRoute: (vip, dev) => step(`addRoute ${vip} ${dev}`),
      removeRoute: (vip, dev) => step(`removeRoute ${vip} ${dev}`),
      enableProxyArp: (vip, lan) => step(`enableProxyArp ${vip} ${lan}`),
      disableProxyArp: (vip, lan) => step(`disableProxyArp ${vip} ${lan}`),
      sendGratuitousArp: (vip, lan, n) => step(`sendGratuitousArp ${vip} ${lan} ${n}`),
    },
    createStack: (opts) => {
      calls.push(`createStack ${opts.addresses.join(',')}`);
      return createStack(opts);
    },
  };
  const client = createStack({ link: b, addresses: ['198.18.0.1'] });
  return { deps, calls, lines, client, failTun: (e) => tunError?.(e) };
}

describe('node lifecycle', () => {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-node-'));
  writeFileSync(join(dir, 'index.html'), 'hello from the VIP\n');
  const config: NodeConfig = { vip: VIP, port: 80, service: { kind: 'http-static', dir }, tun: 'fake%d', lan: 'eth0', mtu: 1500 };
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) await c();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('brings the VIP up in order, serves, logs connections, and tears down in order', async () => {
    const h = harness();
    cleanup.push(() => h.client.close());
    const node: RunningNode = await startNode(config, h.deps);
    expect(h.calls).toEqual([
      'openTun fake%d 1500',
      `createStack ${VIP}`,
      `addRoute ${VIP} fake0`,
      `enableProxyArp ${VIP} eth0`,
      `sendGratuitousArp ${VIP} eth0 3`,
    ]);
    expect(h.lines.some((l) => / node\.ready /.test(l))).toBe(true);

    const s = h.client.connect({ host: VIP, port: 80 });
    await once(s, 'connect');
    const http = new RawHttpClient(s);
    const r = await http.request('GET', '/');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('hello from the VIP\n');
    const closed = once(s, 'close');
    s.end();
    await closed;
    await new Promise((r) => setTimeout(r, 50));
    const open = h.lines.find((l) => / conn\.open /.test(l));
    expect(open).toMatch(new RegExp(`remote=198\\.18\\.0\\.1:\\d+ local=${VIP.replace(/\./g, '\\.')}:80`));
    const close = h.lines.find((l) => / conn\.close /.test(l));
    expect(close).toMatch(/ in=\d+ out=\d+ ms=\d+/);
    expect(Number(/ out=(\d+)/.exec(close ?? '')?.[1])).toBeGreaterThan(r.body.length);

    h.calls.length = 0;
    expect(await node.stop('SIGTERM')).toBe(0);
    expect(await node.stopped).toBe(0);
    expect(h.calls).toEqual([`disableProxyArp ${VIP} eth0`, `removeRoute ${VIP} fake0`, 'tun.close']);
    expect(h.lines.at(-1)).toMatch(/ node\.stopped reason=SIGTERM exit=0/);
    // Stopping twice is harmless and does not repeat the teardown.
    expect(await node.stop('SIGINT')).toBe(0);
    expect(h.calls).toHaveLength(3);
  });

  it('undoes what it set up when a later step fails', async () => {
    const h = harness('enableProxyArp');
    cleanup.push(() => h.client.close());
    await expect(startNode(config, h.deps)).rejects.toThrow(NodeStartError);
    await expect(startNode(config, harness('enableProxyArp').deps)).rejects.toThrow(/cannot answer ARP for 198\.18\.0\.100 on eth0: enableProxyArp .* refused/);
    expect(h.calls).toEqual([
      'openTun fake%d 1500',
      `createStack ${VIP}`,
      `addRoute ${VIP} fake0`,
      `enableProxyArp ${VIP} eth0`,
      `removeRoute ${VIP} fake0`,
      'tun.close',
    ]);
  });

  it('a failed tun open leaves nothing behind', async () => {
    const h = harness('openTun');
    cleanup.push(() => h.client.close());
    await expect(startNode(config, h.deps)).rejects.toThrow(/cannot open tun device "fake%d": openTun .* refused/);
    expect(h.calls).toEqual(['openTun fake%d 1500']);
  });

  it('stops with exit 1 and a reason when the tun device fails', async () => {
    const h = harness();
    cleanup.push(() => h.client.close());
    const node = await startNode({ ...config, lan: undefined }, h.deps);
    h.failTun(new Error('interface vanished'));
    expect(await node.stopped).toBe(1);
    expect(h.lines.some((l) => / node\.fatal .*interface vanished/.test(l))).toBe(true);
    expect(h.calls).toContain(`removeRoute ${VIP} fake0`);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('the node command stops cleanly on %s and exits 0', async (signal) => {
    const h = harness();
    cleanup.push(() => h.client.close());
    const io = { stdout: () => {}, stderr: () => {} };
    const before = process.listenerCount(signal);
    const done = runNodeCommand({ vip: VIP, port: 80, service: { kind: 'echo' }, tun: 'fake%d', mtu: 1500, logLevel: 'info', control: join(dir, 'ctl.sock') }, { io, exitCode: 0 }, h.deps);
    while (!h.lines.some((l) => / node\.ready /.test(l))) await new Promise((r) => setTimeout(r, 5));
    expect(process.listenerCount(signal)).toBe(before + 1);
    process.emit(signal, signal);
    expect(await done).toBe(0);
    expect(h.calls).toContain(`removeRoute ${VIP} fake0`);
    expect(h.lines.some((l) => new RegExp(` node\\.stopped reason=${signal} exit=0`).test(l))).toBe(true);
    // The handlers go away with the node, so a later signal is not swallowed.
    expect(process.listenerCount(signal)).toBe(before);
  });

  it('the node command prints one line and returns 1 when startup fails', async () => {
    const h = harness('openTun');
    cleanup.push(() => h.client.close());
    let err = '';
    const io = { stdout: () => {}, stderr: (t: string) => void (err += t) };
    const code = await runNodeCommand({ vip: VIP, port: 80, service: { kind: 'echo' }, tun: 'fake%d', mtu: 1500, logLevel: 'info', control: join(dir, 'ctl.sock') }, { io, exitCode: 0 }, h.deps);
    expect(code).toBe(1);
    expect(err).toMatch(/^understudy: cannot open tun device "fake%d": openTun fake%d 1500 refused\n$/);
  });

  it('a stop during startup waits for the step in flight and undoes it', async () => {
    const h = harness(undefined, 'addRoute');
    cleanup.push(() => h.client.close());
    const node = createNode(config, h.deps);
    const started = node.start();
    while (!h.calls.some((c) => c.startsWith('addRoute'))) await new Promise((r) => setTimeout(r, 5));
    const stopped = node.stop('SIGTERM');
    await expect(started).rejects.toMatchObject({ name: 'NodeStartError', interrupted: true });
    expect(await stopped).toBe(0);
    // The route was added after the signal; it must still be removed, and nothing after it done.
    expect(h.calls.slice(2)).toEqual([`addRoute ${VIP} fake0`, `removeRoute ${VIP} fake0`, 'tun.close']);
  });

  it('the node command exits 0 when a signal arrives during startup', async () => {
    const h = harness(undefined, 'addRoute');
    cleanup.push(() => h.client.close());
    let err = '';
    const io = { stdout: () => {}, stderr: (t: string) => void (err += t) };
    const done = runNodeCommand({ vip: VIP, port: 80, service: { kind: 'echo' }, tun: 'fake%d', mtu: 1500, logLevel: 'info', control: join(dir, 'ctl.sock') }, { io, exitCode: 0 }, h.deps);
    while (!h.calls.some((c) => c.startsWith('addRoute'))) await new Promise((r) => setTimeout(r, 5));
    process.emit('SIGTERM', 'SIGTERM');
    expect(await done).toBe(0);
    expect(err).toBe('');
    expect(h.calls).toContain(`removeRoute ${VIP} fake0`);
  });
});
