// Acceptance of the stack with the Linux kernel as the peer, through the real TUN: an understudy
// node in the lab's primary namespace serves the VIP (answering ARP for it on the LAN), and real
// clients in the client namespace (curl, Python sockets, a Node client) talk to it. Every transfer
// is checked byte for byte, and a capture on the client's interface must show no RST.
//
// The http-static and plain echo phases run the real CLI (`bin/understudy.js node`); the phase
// with injected faults runs bench/servers/understudy-server.ts, which wraps the TUN link in a
// FaultLink. One node at a time: each owns the VIP's route while it runs.

import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNs, Service, tsNode } from '../../bench/proc.js';
import { Capture, describeRsts, RST_FILTER } from './helpers/capture.js';
import { curl, manyEcho, ping, pythonEchoStream } from './helpers/clients.js';
import { useLab } from './helpers/lab-fixture.js';

const MiB = 1024 * 1024;
const BIG_FILE_BYTES = 256 * MiB;
const ECHO_STREAM_BYTES = 64 * MiB;
const MANY_CONNS = 1000;
const MANY_BYTES = 64 * 1024;
const HTTP_PORT = 80;
const ECHO_PORT = 7;

const lab = useLab();
let workDir = '';
let bigSha256 = '';
/** The node serving the VIP right now; at most one. */
let node: Service | undefined;

beforeAll(async () => {
  workDir = mkdtempSync(path.join(tmpdir(), 'understudy-acceptance-'));
  const www = path.join(workDir, 'www');
  mkdirSync(www);
  bigSha256 = writeRandomFile(path.join(www, 'big.bin'), BIG_FILE_BYTES);
  writeFileSync(path.join(www, 'a.txt'), randomBytes(100_000));
  writeFileSync(path.join(www, 'b.txt'), randomBytes(150_000));
}, 120_000);

afterAll(async () => {
  await stopNode();
  if (workDir !== '') rmSync(workDir, { recursive: true, force: true });
}, 60_000);

function writeRandomFile(file: string, size: number): string {
  const h = createHash('sha256');
  const fd = openSync(file, 'w');
  try {
    for (let off = 0; off < size; off += MiB) {
      const chunk = randomBytes(Math.min(MiB, size - off));
      h.update(chunk);
      writeSync(fd, chunk);
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function vip(): string {
  return lab().addr.vip;
}

/** Starts `understudy node` in the primary namespace and waits until it says it is ready. */
async function startCliNode(port: number, service: string): Promise<Service> {
  await stopNode();
  const l = lab();
  const argv = inNs(l.ns.primary, [
    process.execPath,
    'bin/understudy.js',
    'node',
    '--vip', vip(),
    '--port', String(port),
    '--service', service,
    '--lan', l.lanIface,
    '--tun', 'usacc%d',
  ]);
  node = new Service(`understudy node ${service}`, argv);
  await node.waitFor(/node\.ready/, 30_000);
  return node;
}

/** Starts the bench server (echo only) with faults injected on its link. */
async function startFaultyEchoNode(lossPct: number, reorderPct: number, seed: number): Promise<Service> {
  await stopNode();
  const l = lab();
  const argv = inNs(
    l.ns.primary,
    tsNode('bench/servers/understudy-server.ts', [
      '--vip', vip(),
      '--lan', l.lanIface,
      '--tun', 'usaccf0',
      '--services', `echo:${ECHO_PORT}`,
      '--loss', String(lossPct),
      '--reorder', String(reorderPct),
      '--seed', String(seed),
    ]),
  );
  node = new Service('understudy bench server with FaultLink', argv);
  await node.waitFor(/"ready":true/, 30_000);
  return node;
}

async function stopNode(): Promise<void> {
  const n = node;
  node = undefined;
  if (n !== undefined) await n.stop(5000);
}

/** The node's recent output, appended to failure messages. */
function nodeTail(): string {
  return node === undefined ? '(no node running)' : node.tail(15);
}

/**
 * Runs a step with an RST capture on the client's interface. Any RST fails the test, but softly,
 * so that the byte checks after it still run and report what went wrong with the data.
 */
async function withoutRst<T>(step: string, fn: () => Promise<T>): Promise<T> {
  const l = lab();
  const cap = await Capture.start({ ns: l.ns.client, iface: l.lanIface, filter: RST_FILTER, label: step });
  try {
    const result = await fn();
    const seen = await cap.stop();
    expect.soft(seen.packets, describeRsts(step, seen)).toBe(0);
    return result;
  } finally {
    await cap.dispose();
  }
}

describe('http-static through the TUN, curl as the client', () => {
  beforeAll(async () => {
    await startCliNode(HTTP_PORT, `http-static:${path.join(workDir, 'www')}`);
  }, 60_000);
  afterAll(async () => {
    await stopNode();
  }, 30_000);

  it('downloads a 256 MiB file byte-exact', async () => {
    const out = path.join(workDir, 'big.out');
    try {
      const r = await withoutRst('256 MiB curl download', () =>
        curl(lab().ns.client, [`http://${vip()}:${HTTP_PORT}/big.bin`], [out], 180_000),
      );
      const t = r.transfers[0];
      const written = statSafe(out);
      const sha = written > 0 ? await sha256File(out) : '';
      expect(
        { curlExit: r.exitCode, httpCode: t?.httpCode, bytesWritten: written, sha256: sha },
        `curl: ${r.stderr || 'no error output'}${r.timedOut ? ' (killed after its timeout)' : ''}\n${nodeTail()}`,
      ).toEqual({ curlExit: 0, httpCode: 200, bytesWritten: BIG_FILE_BYTES, sha256: bigSha256 });
    } finally {
      rmSync(out, { force: true });
    }
  }, 240_000);

  it('keeps the connection alive for two URLs in one curl run', async () => {
    const outs = [path.join(workDir, 'a.out'), path.join(workDir, 'b.out')];
    const r = await withoutRst('keep-alive', () =>
      curl(lab().ns.client, [`http://${vip()}:${HTTP_PORT}/a.txt`, `http://${vip()}:${HTTP_PORT}/b.txt`], outs, 60_000),
    );
    const www = path.join(workDir, 'www');
    const detail = `curl: ${r.stderr || 'no error output'}\n${nodeTail()}`;
    expect(r.exitCode, detail).toBe(0);
    // num_connects is per transfer: the first opens the connection, the second must reuse it.
    expect(
      r.transfers.map((t) => ({ httpCode: t.httpCode, bytes: t.sizeDownload, newConnections: t.numConnects })),
      detail,
    ).toEqual([
      { httpCode: 200, bytes: 100_000, newConnections: 1 },
      { httpCode: 200, bytes: 150_000, newConnections: 0 },
    ]);
    expect(readFileSync(outs[0]!).equals(readFileSync(path.join(www, 'a.txt'))), 'a.txt differs from the served file').toBe(true);
    expect(readFileSync(outs[1]!).equals(readFileSync(path.join(www, 'b.txt'))), 'b.txt differs from the served file').toBe(true);
  }, 90_000);

  it('answers Range requests with exactly the requested bytes', async () => {
    const big = path.join(workDir, 'www', 'big.bin');
    const size = BIG_FILE_BYTES;
    const cases: { range: string; start: number; end: number }[] = [
      { range: '0-0', start: 0, end: 0 },
      { range: '1000-1999', start: 1000, end: 1999 },
      // Crosses several MSS-sized segments and a 64 KiB read-stream chunk boundary.
      { range: '65000-200000', start: 65000, end: 200000 },
      { range: `${size - 100}-`, start: size - 100, end: size - 1 },
      { range: '-500', start: size - 500, end: size - 1 },
      { range: '100000000-104857599', start: 100_000_000, end: 104_857_599 },
    ];
    const fd = openSync(big, 'r');
    try {
      await withoutRst('range requests', async () => {
        for (const c of cases) {
          const out = path.join(workDir, 'range.out');
          const r = await curl(lab().ns.client, [`http://${vip()}:${HTTP_PORT}/big.bin`], [out], 60_000, ['-r', c.range]);
          const want = Buffer.alloc(c.end - c.start + 1);
          readSync(fd, want, 0, want.length, c.start);
          const got = statSafe(out) >= 0 ? readFileSync(out) : Buffer.alloc(0);
          rmSync(out, { force: true });
          const detail = `range ${c.range}: curl exit ${r.exitCode}, ${r.stderr || 'no error output'}\n${nodeTail()}`;
          expect({ range: c.range, httpCode: r.transfers[0]?.httpCode, bytes: got.length }, detail).toEqual({
            range: c.range,
            httpCode: 206,
            bytes: want.length,
          });
          expect(firstDifference(got, want), `range ${c.range}: first differing byte offset (-1 = identical)`).toBe(-1);
        }
      });
    } finally {
      closeSync(fd);
    }
  }, 120_000);
});

describe('echo through the TUN with a FaultLink (2% loss and reordering, seeded) on the stack side', () => {
  beforeAll(async () => {
    await startFaultyEchoNode(2, 5, 7);
  }, 60_000);
  afterAll(async () => {
    await stopNode();
  }, 30_000);

  it('streams 64 MiB through echo and gets it back byte-exact', async () => {
    const r = await withoutRst('64 MiB echo with FaultLink loss', () =>
      pythonEchoStream(lab().ns.client, vip(), ECHO_PORT, ECHO_STREAM_BYTES, { seed: 11, idleTimeoutS: 60, timeoutMs: 240_000 }),
    );
    expectEchoExact(r, 'FaultLink 2% loss + 5% reordering');
    // The faults must really have happened, or this test proved nothing about recovery.
    const n = node!;
    await stopNode();
    const statsLine = n.stdout.split('\n').find((l) => l.startsWith('{"stats"'));
    expect(statsLine, `the bench server printed no statistics at exit\n${n.tail(10)}`).toBeDefined();
    const stats = JSON.parse(statsLine!) as { stats: { faults?: Record<'in' | 'out', { lost: number; reordered: number }> } };
    const f = stats.stats.faults;
    expect(f, 'the server ran without a FaultLink').toBeDefined();
    expect(f!.in.lost + f!.out.lost, `FaultLink counters: ${JSON.stringify(f)}`).toBeGreaterThan(0);
    expect(f!.in.reordered + f!.out.reordered, `FaultLink counters: ${JSON.stringify(f)}`).toBeGreaterThan(0);
  }, 300_000);
});

describe('echo through the TUN, served by the CLI', () => {
  beforeAll(async () => {
    await startCliNode(ECHO_PORT, 'echo');
  }, 60_000);
  afterAll(async () => {
    await stopNode();
  }, 30_000);

  it('answers ping on the VIP', async () => {
    const r = await ping(lab().ns.client, vip(), 3);
    expect({ transmitted: r.transmitted, received: r.received }, r.output).toEqual({ transmitted: 3, received: 3 });
  }, 30_000);

  it('streams 64 MiB byte-exact while nftables in the client namespace drops 2% each way', async () => {
    const l = lab();
    const table = 'usloss';
    const ruleset = `table inet ${table} {
  chain out { type filter hook output priority 0; policy accept; ip daddr ${vip()} tcp dport ${ECHO_PORT} numgen random mod 100 < 2 counter drop; }
  chain in { type filter hook input priority 0; policy accept; ip saddr ${vip()} tcp sport ${ECHO_PORT} numgen random mod 100 < 2 counter drop; }
}
`;
    await l.exec('client', 'nft', ['-f', '-'], { input: ruleset });
    try {
      const r = await withoutRst('64 MiB echo with nftables loss', () =>
        pythonEchoStream(l.ns.client, vip(), ECHO_PORT, ECHO_STREAM_BYTES, { seed: 12, idleTimeoutS: 60, timeoutMs: 240_000 }),
      );
      expectEchoExact(r, 'nftables 2% drop in the client namespace');
      const listed = await l.exec('client', 'nft', ['list', 'table', 'inet', table]);
      const dropped = [...listed.stdout.matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]));
      expect(dropped.reduce((a, b) => a + b, 0), `nftables dropped nothing:\n${listed.stdout}`).toBeGreaterThan(0);
    } finally {
      await l.exec('client', 'nft', ['delete', 'table', 'inet', table], { allowFailure: true });
    }
  }, 300_000);

  it(`serves ${MANY_CONNS} concurrent connections, each echoing 64 KiB byte-exact`, async () => {
    const r = await withoutRst(`${MANY_CONNS} concurrent echo connections`, () =>
      manyEcho(lab().ns.client, vip(), ECHO_PORT, MANY_CONNS, MANY_BYTES, 180_000),
    );
    const detail = JSON.stringify(
      { error: r.error, failed: r.failed, firstFailures: r.failures, stuckCount: r.stuckCount, stuck: r.stuck },
      null,
      1,
    );
    expect(
      { connectedTogether: r.connectedTogether, ok: r.ok, failed: r.failed },
      `${detail}\n${nodeTail()}`,
    ).toEqual({ connectedTogether: MANY_CONNS, ok: MANY_CONNS, failed: 0 });
  }, 240_000);
});

function expectEchoExact(r: Awaited<ReturnType<typeof pythonEchoStream>>, what: string): void {
  const detail =
    `${what}: sent ${r.sent} of ${ECHO_STREAM_BYTES} bytes, received ${r.received}, first differing offset ${r.firstMismatch}, ` +
    `client errors: ${r.errors.join('; ') || 'none'} (${r.seconds.toFixed(1)} s)\n${nodeTail()}`;
  expect({ sent: r.sent, received: r.received, firstMismatch: r.firstMismatch, errors: r.errors }, detail).toEqual({
    sent: ECHO_STREAM_BYTES,
    received: ECHO_STREAM_BYTES,
    firstMismatch: -1,
    errors: [],
  });
  expect(r.receivedSha256, detail).toBe(r.sentSha256);
}

function statSafe(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return -1;
  }
}

function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
