// A node over an in-memory link with its control socket and metrics endpoint, driven by the real
// `status` and `fault` commands in process. Crash and hang are replaced by recorders: the lab test
// runs the real ones.

import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../../src/control/status.js';
import { createLogger } from '../../../src/cli/log.js';
import { runStatusCommand } from '../../../src/cli/status-command.js';
import { startNode, type NodeDeps, type NodeTun, type RunningNode } from '../../../src/cli/node-runner.js';
import { runCli, type CliIo } from '../../../src/cli/program.js';
import { createStack, type Stack } from '../../../src/stack/stack.js';
import type { Socket } from '../../../src/stack/socket.js';
import { createMemoryLinkPair } from '../../../src/tun/memory-link.js';

const VIP = '198.18.0.100';

function capture(): CliIo & { out: string; err: string } {
  const io = { out: '', err: '', stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
  return io;
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a node answering status and fault on its control socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-ctl-node-'));
  const control = join(dir, 'run', 'fake0.sock');
  const lines: string[] = [];
  const processFaults: string[] = [];
  let node: RunningNode;
  let client: Stack;
  let conn: Socket;
  let echoed = '';

  const cli = async (...argv: string[]) => {
    const io = capture();
    const code = await runCli([...argv, '--control', control], io);
    return { code, ...io };
  };
  const status = async (): Promise<NodeStatus> => {
    const r = await cli('status', '--json');
    expect(r.code, r.err).toBe(0);
    return JSON.parse(r.out) as NodeStatus;
  };

  beforeAll(async () => {
    const [a, b] = createMemoryLinkPair(1500);
    const tun: NodeTun = { name: 'fake0', mtu: a.mtu, stats: a.stats, send: (p) => a.send(p), onReceive: (h) => a.onReceive(h), close: () => a.close() };
    const deps: NodeDeps = {
      log: createLogger({ level: 'info', format: 'pretty', write: (l) => lines.push(l) }),
      network: {
        openTun: async () => tun,
        addRoute: async () => undefined,
        removeRoute: async () => undefined,
        enableProxyArp: async () => undefined,
        disableProxyArp: async () => undefined,
        sendGratuitousArp: async () => undefined,
      },
      createStack: (opts) => createStack(opts),
      processFaults: { crash: () => void processFaults.push('crash'), hang: (ms) => void processFaults.push(`hang ${ms}`) },
    };
    node = await startNode(
      { vip: VIP, port: 7, service: { kind: 'echo' }, tun: 'fake%d', mtu: 1500, control: (t) => join(dir, 'run', `${t}.sock`), metrics: { host: '127.0.0.1', port: 0 } },
      deps,
    );
    client = createStack({ link: b, addresses: ['198.18.0.1'] });
    conn = client.connect({ host: VIP, port: 7 });
    conn.setEncoding('utf8');
    conn.on('data', (d: string) => (echoed += d));
    await once(conn, 'connect');
  });

  afterAll(async () => {
    conn?.destroy();
    await client?.close();
    await node?.stop('test over');
    rmSync(dir, { recursive: true, force: true });
  });

  it('listens on the control path named after the tun', () => {
    expect(node.controlPath).toBe(control);
  });

  it('status --json gives role, VIP, protection and one row per connection with its TCB', async () => {
    conn.write('hello');
    await waitFor('the echo', () => echoed === 'hello');
    // The client acknowledges the echo after its delayed-ACK timer.
    let s = await status();
    await waitFor('the echo to be acknowledged', async () => (s = await status()).connections[0]?.sendQueued === 0);
    expect(s).toMatchObject({ version: 1, role: 'standalone', epoch: 0, vip: VIP, port: 7, service: 'echo', tun: 'fake0', protected: false, protectedReason: 'no backup configured', control });
    expect(s.connections).toHaveLength(1);
    const c = s.connections[0]!;
    expect(c).toMatchObject({ local: `${VIP}:7`, remote: `198.18.0.1:${conn.localPort}`, state: 'ESTABLISHED', unread: 0, sendQueued: 0 });
    // One SYN plus five echoed bytes sent and acknowledged; five received after the peer's SYN.
    expect(c.sndUna.rel).toBe(6);
    expect(c.sndNxt.rel).toBe(6);
    expect(c.rcvNxt.rel).toBe(6);
    expect(c.sndUna.abs).toBe((c.iss + 6) >>> 0);
    expect(c.rcvWnd).toBeGreaterThan(0);
    expect(c.sndWnd).toBeGreaterThan(0);
    expect(c.cwnd).toBeGreaterThan(0);
    expect(c.rtoMs).toBeGreaterThan(0);
    expect(s.counters.packetsIn).toBeGreaterThanOrEqual(3);
    expect(s.counters.connectionsAccepted).toBe(1);
    expect(s.counters.connectionsOpen).toBe(1);
  });

  it('status prints an aligned table with a line for the connection', async () => {
    const r = await cli('status');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/role standalone {2}epoch 0/);
    expect(r.out).toContain('protected no (no backup configured)');
    const header = r.out.split('\n').find((l) => l.includes('LOCAL'));
    const row = r.out.split('\n').find((l) => l.includes('ESTABLISHED'));
    expect(header).toBeDefined();
    expect(row).toContain(`198.18.0.1:${conn.localPort}`);
    // Columns line up: STATE starts where ESTABLISHED does.
    expect(row!.indexOf('ESTABLISHED')).toBe(header!.indexOf('STATE'));
  });

  it('status --watch redraws in place on a terminal until stopped', async () => {
    const io = capture();
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const done = runStatusCommand({ control, watch: '100' }, { io, exitCode: 0 }, true, stopped);
    await waitFor('three frames', () => io.out.split('\x1b[H\x1b[J').length > 3);
    stop();
    expect(await done).toBe(0);
    const frames = io.out.split('\x1b[H\x1b[J').filter((f) => f !== '');
    expect(frames.length).toBeGreaterThanOrEqual(3);
    for (const f of frames) expect(f).toContain('role standalone');
  });

  it('fault loss 100 stops the traffic, shows in status and the log, and fault clear lets it through', async () => {
    const r = await cli('fault', 'loss', '100');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe('applied: loss 100 --link client --direction both\n');
    echoed = '';
    conn.write('lost?');
    await new Promise((res) => setTimeout(res, 300));
    expect(echoed).toBe('');
    const s = await status();
    expect(s.links[0]?.faults.in.lossPct).toBe(100);
    expect(s.links[0]?.faults.out.lossPct).toBe(100);
    expect(s.links[0]?.faultSpec).toEqual({ in: 'loss=100', out: 'loss=100' });
    expect(s.counters.drops['fault.lost']).toBeGreaterThan(0);
    expect(s.faultLog.at(-1)?.description).toBe('loss 100 --link client --direction both');
    expect(lines.some((l) => / fault\.set fault="loss 100 --link client --direction both"/.test(l))).toBe(true);

    expect((await cli('fault', 'clear')).code).toBe(0);
    await waitFor('the retransmitted bytes to be echoed', () => echoed === 'lost?', 10_000);
    expect((await status()).links[0]?.faultSpec).toEqual({ in: '', out: '' });
  });

  it('faults combine per direction: delay on out only, then duplicate on both', async () => {
    expect((await cli('fault', 'delay', '30', '--jitter', '5', '--direction', 'out')).code).toBe(0);
    expect((await cli('fault', 'duplicate', '50')).code).toBe(0);
    const list = await cli('fault', 'list', '--json');
    const r = JSON.parse(list.out) as { links: NodeStatus['links'] };
    expect(r.links[0]?.faultSpec).toEqual({ in: 'dup=50', out: 'delay=30,jitter=5,dup=50' });
    const human = await cli('fault', 'list');
    expect(human.out).toContain('faults in: dup=50  out: delay=30,jitter=5,dup=50');
    expect(human.out).toContain('delay 30 --jitter 5 --link client --direction out');
    echoed = '';
    conn.write('x'.repeat(100));
    await waitFor('the echo through delay and duplication', () => echoed.length === 100);
    const s = await status();
    expect(s.links[0]!.faultCounters.out.delayed).toBeGreaterThan(0);
    expect((await cli('fault', 'clear')).code).toBe(0);
  });

  it('reorder, corrupt and partition apply to the client link', async () => {
    for (const argv of [['reorder', '10'], ['corrupt', '1'], ['partition']]) {
      const r = await cli('fault', ...argv);
      expect(r.code, r.err).toBe(0);
    }
    const s = await status();
    expect(s.links[0]?.faults.in).toMatchObject({ reorderPct: 10, corruptPct: 1, partition: true });
    expect(s.links[0]?.faults.out).toMatchObject({ reorderPct: 10, corruptPct: 1, partition: true });
    expect((await cli('fault', 'clear')).code).toBe(0);
  });

  it('the replication link does not exist yet: a clear error and exit 1', async () => {
    const r = await cli('fault', 'loss', '5', '--link', 'replication');
    expect(r.code).toBe(1);
    expect(r.err).toBe('understudy: no replication link: this node is standalone (no backup configured)\n');
    const p = await cli('fault', 'partition', '--link', 'both');
    expect(p.code).toBe(0);
    expect(p.out).toContain('note: no replication link');
    expect((await status()).links[0]?.faults.in.partition).toBe(true);
    expect((await cli('fault', 'clear')).code).toBe(0);
  });

  it('switchover on a standalone node: a clear error and exit 1', async () => {
    const r = await cli('switchover');
    expect(r.code).toBe(1);
    expect(r.err).toBe('understudy: no replication link: this node is standalone (no backup configured)\n');
    expect(r.out).toBe('');
  });

  it('crash and hang answer first, then act on the process', async () => {
    processFaults.length = 0;
    const c = await cli('fault', 'crash');
    expect(c.code, c.err).toBe(0);
    expect(c.out).toContain('applied: crash');
    const h = await cli('fault', 'hang', '1500');
    expect(h.code, h.err).toBe(0);
    await waitFor('the process faults', () => processFaults.length === 2);
    expect(processFaults).toEqual(['crash', 'hang 1500']);
    expect(lines.some((l) => / fault\.crash /.test(l))).toBe(true);
    expect(lines.some((l) => / fault\.hang /.test(l))).toBe(true);
  });

  it('serves Prometheus metrics with the status counters', async () => {
    const res = await fetch(`http://${node.metricsAddress}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^understudy_info\{role="standalone",vip="198\.18\.0\.100",port="7",service="echo",tun="fake0"\} 1$/m);
    expect(text).toMatch(/^understudy_connections\{state="ESTABLISHED"\} 1$/m);
    expect(text).toMatch(/^understudy_connections\{state="TIME-WAIT"\} 0$/m);
    expect(text).toMatch(/^understudy_drops_total\{reason="fault\.lost"\} [1-9]\d*$/m);
    expect(text).toMatch(/^understudy_packets_total\{direction="in"\} [1-9]\d*$/m);
    expect(text).toMatch(/^# TYPE understudy_bytes_total counter$/m);
    expect(text).toMatch(/^understudy_fault_setting\{link="client",direction="in",setting="lossPct"\} 0$/m);
    expect((await fetch(`http://${node.metricsAddress}/other`)).status).toBe(404);
  });
});
