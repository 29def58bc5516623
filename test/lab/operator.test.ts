// The operator's commands against a real node in the lab: `node --config`, then `status` (human
// and --json) during a live curl download, every fault kind through `fault` with its effect seen
// by real clients, the metrics endpoint from inside the namespace, `fault crash` leaving its
// litter behind and a restart cleaning it up, and the errors an operator can run into.

import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunResult } from '../../bench/proc.js';
import type { ConnectionStatus, NodeStatus } from '../../src/control/status.js';
import { fault as faultCmd, statusJson, understudy } from './helpers/cli.js';
import { paceToNode } from '../../scripts/lab/pace.js';
import { curl, ping } from './helpers/clients.js';
import { useLab } from './helpers/lab-fixture.js';
import { OutputWatch } from './helpers/output-watch.js';

const TUN = 'usop0';
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function poll<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, describeLast?: () => string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${describeLast ? `\n${describeLast()}` : ''}`);
    await sleep(200);
  }
}

describe('the operator commands against a lab node', () => {
  const lab = useLab();
  const dir = mkdtempSync(join(tmpdir(), 'understudy-operator-lab-'));
  const www = join(dir, 'www');
  const out = join(dir, 'out');
  const control = join(dir, 'run', `${TUN}.sock`);
  const configFile = join(dir, 'node.yaml');
  const blob = randomBytes(2 * 1024 * 1024);
  let child: ChildProcess | undefined;
  let exited: Promise<[number | null, NodeJS.Signals | null]> = new Promise(() => {});
  let output: OutputWatch | undefined;
  mkdirSync(www, { recursive: true });
  mkdirSync(out, { recursive: true });
  writeFileSync(join(www, 'blob.bin'), blob);
  // Larger than the client kernel's receive buffer can absorb (tcp_rmem tops out near 6 MiB), so
  // that a rate-limited curl keeps the server's SND.UNA well short of the end for many seconds.
  const bigBlob = randomBytes(32 * 1024 * 1024);
  writeFileSync(join(www, 'big.bin'), bigBlob);
  writeFileSync(join(www, 'index.html'), 'operator\n');

  afterAll(async () => {
    // lab.destroy() kills what is still running in the namespaces; this covers a child outside.
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const status = (): Promise<NodeStatus> => statusJson(control);
  const fault = (...args: string[]): Promise<RunResult> => faultCmd(control, args);
  const clientConn = (s: NodeStatus): ConnectionStatus | undefined => s.connections.find((c) => c.remote.startsWith(`${lab().addr.client}:`) && c.state === 'ESTABLISHED');

  const startNode = async (): Promise<void> => {
    const l = lab();
    child = l.spawn('primary', process.execPath, ['bin/understudy.js', 'node', '--config', configFile, '--log-format', 'pretty']);
    exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    output = new OutputWatch(child);
    await output.waitFor(/ node\.ready /, 30_000, exited);
    // Ready means routed; a first ARP exchange may still be under way.
    await poll('the VIP to answer HTTP', 20_000, async () => {
      const r = await curl(l.ns.client, [`http://${l.addr.vip}/index.html`], [join(out, 'probe.html')], 5_000);
      return r.exitCode === 0 && r.transfers[0]?.httpCode === 200 ? true : undefined;
    });
  };

  it('refuses a bad config file with the key at fault, exit 2, before touching the network', async () => {
    const l = lab();
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, `vip: ${l.addr.vip}\nport: 99999\nservice: echo\n`);
    const r = await l.exec('primary', process.execPath, ['bin/understudy.js', 'node', '--config', bad], { allowFailure: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`understudy: ${bad}: port: expected an integer 1..65535\n`);
    const links = await l.exec('primary', 'ip', ['-o', 'link', 'show']);
    expect(links.stdout).not.toContain('understudy');
  });

  it('starts from a config file, with a root-only control socket', async () => {
    const l = lab();
    writeFileSync(
      configFile,
      [`vip: ${l.addr.vip}`, 'port: 80', `service: http-static:${www}`, `tun: ${TUN}`, `lan: ${l.lanIface}`, `control: ${control}`, 'metrics: 127.0.0.1:9464', 'log-level: info', ''].join('\n'),
    );
    await startNode();
    expect(statSync(control).isSocket()).toBe(true);
    expect(statSync(control).mode & 0o777).toBe(0o600);
    expect(statSync(join(control, '..')).mode & 0o777).toBe(0o700);
    expect(output?.text()).toMatch(/ node\.ready .*control=\S+usop0\.sock metrics=127\.0\.0\.1:9464/);
  });

  it('a second node on the same control socket refuses to start, in one line', async () => {
    const l = lab();
    const r = await l.exec('primary', process.execPath, ['bin/understudy.js', 'node', '--config', configFile, '--tun', 'usop1', '--port', '81'], { allowFailure: true, timeoutMs: 30_000 });
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe(`understudy: another node is running on control socket ${control}`);
    expect((await status()).vip).toBe(l.addr.vip);
  });

  it('status shows a live download as a connection line, human and --json', async () => {
    const l = lab();
    const download = l.exec('client', 'curl', ['-sS', '--max-time', '8', '--limit-rate', '300K', '-o', '/dev/null', `http://${l.addr.vip}/big.bin`], { allowFailure: true, timeoutMs: 20_000 });
    try {
      const conn = await poll('a connection sending data', 10_000, async () => {
        const c = clientConn(await status());
        return c !== undefined && c.sndUna.rel > 10_000 ? c : undefined;
      });
      expect(conn.local).toBe(`${l.addr.vip}:80`);
      expect(conn.sndNxt.abs).toBe((conn.iss + conn.sndNxt.rel) >>> 0);
      expect(conn.rcvNxt.rel).toBeGreaterThan(50); // the GET request
      expect(conn.cwnd).toBeGreaterThan(0);
      expect(conn.srttMs).not.toBeNull();
      const s = await status();
      expect(s).toMatchObject({ role: 'standalone', epoch: 0, protected: false, protectedReason: 'no backup configured', port: 80, tun: TUN });
      expect(s.counters.segmentsIn).toBeGreaterThan(0);
      expect(s.counters.bytesOut).toBeGreaterThan(10_000);

      const human = await understudy(['status', '--control', control]);
      expect(human.code, human.stderr).toBe(0);
      expect(human.stdout).toContain('role standalone');
      expect(human.stdout).toContain('protected no (no backup configured)');
      const row = human.stdout.split('\n').find((x) => x.includes(`${l.addr.client}:`) && x.includes('ESTABLISHED'));
      expect(row, human.stdout).toBeDefined();
      expect(row).toMatch(/\d+ \(\d+\)/); // relative (absolute) sequence numbers

      // --watch redraws until interrupted: several frames before it is killed.
      const watch = await understudy(['status', '--json', '--watch', '500', '--control', control], 3_000);
      const frames = watch.stdout.trim().split('\n').filter((x) => x !== '');
      expect(frames.length).toBeGreaterThanOrEqual(2);
      expect((JSON.parse(frames[1]!) as NodeStatus).uptimeMs).toBeGreaterThan((JSON.parse(frames[0]!) as NodeStatus).uptimeMs);
    } finally {
      await download;
    }
  });

  it('fault loss 100 stalls a download mid-way; fault clear lets it finish byte-exact', async () => {
    const l = lab();
    const file = join(out, 'lossy.bin');
    // The wire is paced, not curl's reads (scripts/lab/pace.ts): with --limit-rate the node
    // filled the client's receive buffer with the whole 32 MiB before the fault, leaving nothing
    // for the loss to stall.
    const paced = await paceToNode(l, 'client', 4 * 1024 * 1024);
    try {
      const download = curl(l.ns.client, [`http://${l.addr.vip}/big.bin`], [file], 60_000);
      const before = await poll('the download to be under way', 10_000, async () => {
        const c = clientConn(await status());
        return c !== undefined && c.sndUna.rel > 100_000 ? c : undefined;
      });
      await fault('loss', '100');
      // Cleared whatever happens, so that a failure here does not leave the next tests without a link.
      try {
        await sleep(1000);
        const stalledAt = clientConn(await status());
        await sleep(1500);
        const s = await status();
        const still = clientConn(s);
        expect(still?.sndUna.rel, 'nothing is acknowledged while every packet is lost').toBe(stalledAt?.sndUna.rel);
        expect(still!.sndUna.rel).toBeLessThan(bigBlob.length);
        expect(still!.sndUna.rel).toBeGreaterThanOrEqual(before.sndUna.rel);
        expect(s.counters.drops['fault.lost']).toBeGreaterThan(0);
        expect(s.links[0]?.faultSpec).toEqual({ in: 'loss=100', out: 'loss=100' });
        expect(s.faultLog.at(-1)?.description).toBe('loss 100 --link client --direction both');
      } finally {
        await fault('clear');
      }
      const r = await download;
      expect(r.exitCode, r.stderr).toBe(0);
      expect(sha256(readFileSync(file))).toBe(sha256(bigBlob));
      expect(output?.text()).toMatch(/ fault\.set fault="loss 100 --link client --direction both"/);
      expect(output?.text()).toMatch(/ fault\.clear /);
    } finally {
      await paced.undo();
    }
  }, 90_000);

  it('fault delay 200 --direction out adds 200 ms to the ping RTT', async () => {
    const l = lab();
    await fault('delay', '200', '--direction', 'out');
    try {
      const p = await ping(l.ns.client, l.addr.vip, 3);
      expect(p.received, p.output).toBe(3);
      const min = Number(/= ([\d.]+)\//.exec(p.output)?.[1]);
      expect(min, p.output).toBeGreaterThanOrEqual(195);
    } finally {
      await fault('clear');
    }
    const after = await ping(l.ns.client, l.addr.vip, 2);
    expect(Number(/= ([\d.]+)\//.exec(after.output)?.[1])).toBeLessThan(195);
  });

  it('duplicate, reorder and corrupt together: the download is still byte-exact, and each fault shows its work', async () => {
    const l = lab();
    await fault('duplicate', '20');
    await fault('reorder', '20');
    await fault('corrupt', '2');
    const file = join(out, 'mangled.bin');
    try {
      const r = await curl(l.ns.client, [`http://${l.addr.vip}/blob.bin`], [file], 60_000);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(sha256(readFileSync(file))).toBe(sha256(blob));
      const list = await understudy(['fault', 'list', '--json', '--control', control]);
      const link = (JSON.parse(list.stdout) as { links: NodeStatus['links'] }).links[0]!;
      expect(link.faultSpec.out).toBe('dup=20,reorder=20,corrupt=2');
      for (const d of ['in', 'out'] as const) {
        expect(link.faultCounters[d].duplicated, d).toBeGreaterThan(0);
        expect(link.faultCounters[d].reordered, d).toBeGreaterThan(0);
        expect(link.faultCounters[d].corrupted, d).toBeGreaterThan(0);
      }
      const human = await understudy(['fault', 'list', '--control', control]);
      expect(human.stdout).toContain('faults in: dup=20,reorder=20,corrupt=2');
    } finally {
      await fault('clear');
    }
  }, 90_000);

  it('partition drops everything until cleared; the replication link is refused with exit 1', async () => {
    const l = lab();
    await fault('partition');
    const cut = await ping(l.ns.client, l.addr.vip, 3);
    expect(cut.received, cut.output).toBe(0);
    expect((await status()).links[0]?.faults.in.partition).toBe(true);
    await fault('clear');
    const back = await ping(l.ns.client, l.addr.vip, 3);
    expect(back.received, back.output).toBeGreaterThan(0);

    const repl = await understudy(['fault', 'loss', '10', '--link', 'replication', '--control', control]);
    expect(repl.code).toBe(1);
    expect(repl.stderr).toBe('understudy: no replication link: this node is standalone (no backup configured)\n');
    const usage = await understudy(['fault', 'loss', '150', '--control', control]);
    expect(usage.code).toBe(2);
    expect(usage.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('fault hang blocks the node: nothing, not even status, is answered until it ends', async () => {
    const started = Date.now();
    await fault('hang', '2000');
    const s = await status();
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(s.faultLog.at(-1)?.description).toBe('hang 2000');
    await poll('the hang-ended log line', 5_000, async () => (output?.text().includes('fault.hang-ended') ? true : undefined));
  });

  it('serves Prometheus metrics inside the namespace', async () => {
    const l = lab();
    const r = await l.exec('primary', 'curl', ['-sS', '--max-time', '5', 'http://127.0.0.1:9464/metrics']);
    expect(r.stdout).toMatch(/^understudy_info\{role="standalone",vip="198\.18\.0\.100",port="80",service="http-static:[^"]+",tun="usop0"\} 1$/m);
    expect(r.stdout).toMatch(/^understudy_connections\{state="ESTABLISHED"\} \d+$/m);
    expect(r.stdout).toMatch(/^understudy_drops_total\{reason="fault\.lost"\} [1-9]\d*$/m);
    expect(r.stdout).toMatch(/^understudy_bytes_total\{direction="out"\} [1-9]\d*$/m);
    expect(r.stdout).toMatch(/^understudy_connections_accepted_total [1-9]\d*$/m);
    expect(r.stdout).toMatch(/^understudy_fault_packets_total\{link="client",direction="in",outcome="duplicated"\} [1-9]\d*$/m);
  });

  it('fault crash kills the node with no cleanup; a restart replaces what it left', async () => {
    const l = lab();
    const r = await fault('crash');
    expect(r.stdout).toContain('applied: crash');
    const [code, signal] = await Promise.race([exited, sleep(10_000).then(() => [null, null] as const)]);
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' });
    expect(output?.text()).toMatch(/ fault\.crash /);
    expect(output?.text()).not.toMatch(/ node\.stopping /);
    // Left behind: the control socket and the proxy ARP entry. (The route went with the tun
    // device, which the kernel removes when its last descriptor closes.)
    expect(statSync(control).isSocket()).toBe(true);
    const proxy = await l.exec('primary', 'ip', ['neigh', 'show', 'proxy']);
    expect(proxy.stdout).toContain(l.addr.vip);
    const dead = await understudy(['status', '--control', control]);
    expect(dead.code).toBe(1);
    expect(dead.stderr).toBe(`understudy: no node at ${control} (nobody listening)\n`);

    await startNode();
    expect(output?.text()).toMatch(/ control\.stale-replaced /);
    expect((await status()).faultLog).toEqual([]);
    const again = await curl(l.ns.client, [`http://${l.addr.vip}/blob.bin`], [join(out, 'again.bin')], 30_000);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(sha256(readFileSync(join(out, 'again.bin')))).toBe(sha256(blob));
  }, 90_000);

  it('SIGTERM stops the node and removes its control socket and proxy entry', async () => {
    const l = lab();
    child?.kill('SIGTERM');
    const [code] = await Promise.race([exited, sleep(15_000).then(() => [null, null] as const)]);
    expect(code, output?.text()).toBe(0);
    expect(existsSync(control)).toBe(false);
    const proxy = await l.exec('primary', 'ip', ['neigh', 'show', 'proxy']);
    expect(proxy.stdout).not.toContain(l.addr.vip);
  });
});
