// The TUN's virtio-net offloads end to end: our stack in this process, its tun device in the lab's
// primary namespace, Linux clients in the client namespace. With offload on, a 64 MiB HTTP
// download (curl) and a 64 MiB stream through echo (Python, so 64 MiB uploaded and 64 MiB back)
// must arrive byte-exact, and the device's own counters must show that super-packets were used
// both ways: GSO writes of ours that the kernel cut up, and GSO super-segments the kernel handed
// us. The same transfers with `offload: false` check the plain path still works without them.

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createService } from '../../src/services/spec.js';
import { createStack, type Stack } from '../../src/stack/stack.js';
import { disableProxyArp, enableProxyArp } from '../../src/tun/arp.js';
import { addRoute } from '../../src/tun/route.js';
import { openTun, type TunDevice } from '../../src/tun/tun-device.js';
import { curl, pythonEchoStream } from './helpers/clients.js';
import { useLab } from './helpers/lab-fixture.js';

const MiB = 1024 * 1024;
const FILE_BYTES = 64 * MiB;
const ECHO_BYTES = 64 * MiB;

const lab = useLab();
let workDir = '';
let fileSha256 = '';

beforeAll(() => {
  workDir = mkdtempSync(path.join(tmpdir(), 'understudy-offload-'));
  mkdirSync(path.join(workDir, 'www'));
  const data = randomBytes(FILE_BYTES);
  writeFileSync(path.join(workDir, 'www', 'big.bin'), data);
  fileSha256 = createHash('sha256').update(data).digest('hex');
});

afterAll(() => {
  if (workDir !== '') rmSync(workDir, { recursive: true, force: true });
});

interface Server {
  tun: TunDevice;
  stack: Stack;
  stop(): Promise<void>;
}

/** http-static on port 80 and echo on port 7, on the VIP, through a tun in the primary namespace. */
async function startServer(offload: boolean): Promise<Server> {
  const l = lab();
  const netns = l.ns.primary;
  const tun = await openTun({ name: 'usoff%d', netns, offload });
  const stack = createStack({ link: tun, addresses: [l.addr.vip] });
  const http = createService({ kind: 'http-static', dir: path.join(workDir, 'www') });
  const echo = createService({ kind: 'echo' });
  let proxyArp = false;
  const stop = async (): Promise<void> => {
    await Promise.allSettled([http.close(), echo.close()]);
    await stack.close();
    tun.close();
    await tun.closed;
    if (proxyArp) await disableProxyArp(l.addr.vip, l.lanIface, { netns }).catch(() => undefined);
  };
  try {
    for (const [svc, port] of [[http, 80], [echo, 7]] as const) {
      const server = stack.createServer((s) => svc.onConnection(s));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, l.addr.vip, () => resolve());
      });
    }
    await addRoute(l.addr.vip, tun.name, { netns });
    await enableProxyArp(l.addr.vip, l.lanIface, { netns });
    proxyArp = true;
  } catch (e) {
    await stop();
    throw e;
  }
  return { tun, stack, stop };
}

async function transfers(server: Server, label: string): Promise<void> {
  const l = lab();
  const out = path.join(workDir, `${label}.bin`);
  const r = await curl(l.ns.client, [`http://${l.addr.vip}/big.bin`], [out], 120_000);
  expect(r.exitCode, `curl: ${r.stderr}`).toBe(0);
  expect(r.transfers[0]?.httpCode).toBe(200);
  const got = readFileSync(out);
  expect(got.length).toBe(FILE_BYTES);
  expect(createHash('sha256').update(got).digest('hex'), 'downloaded file differs').toBe(fileSha256);
  rmSync(out);

  const e = await pythonEchoStream(l.ns.client, l.addr.vip, 7, ECHO_BYTES, { seed: 5, idleTimeoutS: 60, timeoutMs: 180_000 });
  expect(e.errors, 'echo client errors').toEqual([]);
  expect(e.sent).toBe(ECHO_BYTES);
  expect(e.received).toBe(ECHO_BYTES);
  expect(e.firstMismatch).toBe(-1);
  expect(e.receivedSha256).toBe(e.sentSha256);
  // Nothing the stack received was rejected for its checksum (a partial checksum verified by
  // mistake would be) and nothing it sent was too big for the link.
  const counters = server.stack.counters;
  expect(counters['tcp.bad-checksum'] ?? 0, JSON.stringify(counters)).toBe(0);
  expect(counters['ip.tx-oversize'] ?? 0, JSON.stringify(counters)).toBe(0);
  expect(server.tun.stats.txDropped).toBe(0);
}

describe('TUN with virtio-net offloads', () => {
  it('downloads and echoes 64 MiB byte-exact using super-packets both ways', async () => {
    const server = await startServer(true);
    try {
      expect(server.tun.offload, 'the kernel refused IFF_VNET_HDR or TUNSETOFFLOAD').toEqual({ tso: true, csum: true });
      expect(server.tun.rxOffload).toBe(true);
      await transfers(server, 'offload');
      const s = server.tun.stats;
      const detail = JSON.stringify(s);
      // Our writes: runs of data segments went as GSO_TCPV4 super-packets.
      expect(s.txGso, detail).toBeGreaterThan(0);
      expect(s.txGsoSegments, detail).toBeGreaterThan(s.txGso);
      // The kernel's: the client's TSO trains reached us whole, and with partial checksums.
      expect(s.rxGso, detail).toBeGreaterThan(0);
      expect(s.rxChecksumTrusted, detail).toBeGreaterThan(0);
      expect(s.rxOffloadDropped, detail).toBe(0);
    } finally {
      await server.stop();
    }
  }, 300_000);

  it('works the same without them (offload: false)', async () => {
    const server = await startServer(false);
    try {
      expect(server.tun.offload).toBeUndefined();
      expect(server.tun.rxOffload).toBe(false);
      await transfers(server, 'plain');
      const s = server.tun.stats;
      expect(s.txGso + s.rxGso + s.rxChecksumTrusted, JSON.stringify(s)).toBe(0);
      expect(s.rxBytes / s.rxPackets, 'packets above the MTU without offload').toBeLessThanOrEqual(1500);
    } finally {
      await server.stop();
    }
  }, 300_000);
});
