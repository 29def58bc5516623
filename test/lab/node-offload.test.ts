// The TUN offloads through the real `understudy node`, which always wraps its tun in a FaultLink for
// the `fault` command: the wrapper must pass them on. A 64 MiB curl download must arrive byte-exact
// with the tun's own counters (status --json, links[0].stats) showing GSO super-packets written;
// then, with `fault corrupt 5` (both directions), a 16 MiB download must still arrive byte-exact:
// a corrupted packet must never pass as valid on either side, whichever checksum offload it rode.

import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../src/control/status.js';
import type { TunStats } from '../../src/tun/tun-device.js';
import { fault as faultCmd, spawnSoloNode, statusJson } from './helpers/cli.js';
import { curl } from './helpers/clients.js';
import { useLab } from './helpers/lab-fixture.js';
import { OutputWatch } from './helpers/output-watch.js';

const TUN = 'usnoff0';
const MiB = 1024 * 1024;
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('understudy node with TUN offloads behind its FaultLink', () => {
  const lab = useLab();
  const dir = mkdtempSync(join(tmpdir(), 'understudy-node-offload-'));
  const www = join(dir, 'www');
  const out = join(dir, 'out');
  const control = join(dir, 'control.sock');
  const big = randomBytes(64 * MiB);
  const mid = randomBytes(16 * MiB);
  mkdirSync(www, { recursive: true });
  mkdirSync(out, { recursive: true });
  writeFileSync(join(www, 'big.bin'), big);
  writeFileSync(join(www, 'mid.bin'), mid);
  writeFileSync(join(www, 'index.html'), 'offload\n');
  let child: ChildProcess | undefined;
  let exited: Promise<[number | null, NodeJS.Signals | null]> = new Promise(() => {});
  let output: OutputWatch | undefined;
  const lines = (): string => output?.text() ?? '';
  /** The tun's GSO writes after the clean download. */
  let gsoAfterClean = 0;

  afterAll(() => {
    // lab.destroy() (in useLab) kills what still runs in the namespaces; this covers the rest.
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const status = (): Promise<NodeStatus> => statusJson(control);
  const fault = async (...args: string[]): Promise<void> => {
    await faultCmd(control, args);
  };
  /** The tun's own counters as status shows them (the TunStats spread into links[0].stats). */
  const tunStats = (s: NodeStatus): Partial<TunStats> => (s.links[0]?.stats ?? {}) as Partial<TunStats>;
  const download = async (name: string, expected: Buffer): Promise<void> => {
    const l = lab();
    const file = join(out, name);
    const r = await curl(l.ns.client, [`http://${l.addr.vip}/${name}`], [file], 270_000);
    expect(r.exitCode, `curl: ${r.stderr}\n${lines()}`).toBe(0);
    expect(r.transfers[0]?.httpCode).toBe(200);
    const got = readFileSync(file);
    expect(got.length).toBe(expected.length);
    expect(sha256(got) === sha256(expected), `${name} arrived with different bytes`).toBe(true);
    rmSync(file);
  };

  it('starts and answers on the VIP', async () => {
    const l = lab();
    child = spawnSoloNode(l, { service: `http-static:${www}`, tun: TUN, control });
    exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    output = new OutputWatch(child);
    await output.waitFor(/ node\.ready /, 30_000, exited);
    // Ready means routed; the first ARP exchange may still be under way.
    const answerBy = Date.now() + 20_000;
    for (;;) {
      const r = await curl(l.ns.client, [`http://${l.addr.vip}/index.html`], [join(out, 'probe.html')], 5_000);
      if (r.exitCode === 0 && r.transfers[0]?.httpCode === 200) break;
      if (Date.now() > answerBy) throw new Error(`the VIP never answered HTTP: ${r.stderr}\n${lines()}`);
      await sleep(250);
    }
  });

  it('serves 64 MiB byte-exact with GSO super-packets written through the FaultLink', async () => {
    await download('big.bin', big);
    const s = await status();
    const t = tunStats(s);
    const detail = JSON.stringify(t);
    // The FaultLink showed the tun's offload to the stack, which then sent partial checksums and
    // let the tun merge runs of segments.
    expect(t.txGso, detail).toBeGreaterThan(0);
    expect(t.txGsoSegments, detail).toBeGreaterThan(t.txGso ?? 0);
    // It asked the tun for receive offloads on the stack's behalf: the client's packets came with
    // checksums the kernel vouched for, and none of them was rejected by the host.
    expect(t.rxChecksumTrusted, detail).toBeGreaterThan(0);
    expect(t.rxOffloadDropped ?? 0, detail).toBe(0);
    expect(s.counters.drops['tcp.bad-checksum'], JSON.stringify(s.counters.drops)).toBeUndefined();
    gsoAfterClean = t.txGso ?? 0;
  }, 180_000);

  it('with `fault corrupt 5` serves 16 MiB still byte-exact, dropping the corrupted packets', async () => {
    await fault('corrupt', '5');
    try {
      await download('mid.bin', mid);
      const s = await status();
      const link = s.links[0]!;
      expect(link.faultSpec).toEqual({ in: 'corrupt=5', out: 'corrupt=5' });
      const fc = link.faultCounters;
      expect(fc.out.corrupted, JSON.stringify(fc)).toBeGreaterThan(0);
      expect(fc.in.corrupted, JSON.stringify(fc)).toBeGreaterThan(0);
      // Incoming packets the kernel had vouched for lost that on corruption, so the host checked
      // them and threw the bad ones away (those not already refused for a broken IP header).
      expect(s.counters.drops['tcp.bad-checksum'], JSON.stringify(s.counters.drops)).toBeGreaterThan(0);
      // Offloads stayed in use for the packets the fault left alone.
      expect(tunStats(s).txGso, JSON.stringify(tunStats(s))).toBeGreaterThan(gsoAfterClean);
    } finally {
      await fault('clear');
    }
    // Generous: 5% of packets lost both ways is slow going for any TCP (tens of seconds here).
  }, 300_000);

  it('stops on SIGTERM with exit 0', async () => {
    if (child === undefined) throw new Error('the node was not started');
    child.kill('SIGTERM');
    const [code, signal] = await exited;
    expect({ code, signal }, lines()).toEqual({ code: 0, signal: null });
  }, 30_000);
});
