// Many concurrent echo connections: opens all of them first (so they really are open at the same
// time), then sends each its own byte pattern, half-closes, and checks that exactly those bytes
// come back. Used by the lab acceptance test.
// Usage: many-echo.ts --host H [--port 5003] [--conns 1000] [--bytes 65536] [--timeout-ms 120000]

import type net from 'node:net';
import { ECHO_PORT } from '../protocol.js';
import { connect, flags, numFlag, runClient, strFlag } from './common.js';

const f = flags();
const host = strFlag(f, 'host');
const port = numFlag(f, 'port', ECHO_PORT);
const conns = numFlag(f, 'conns', 1000);
const bytes = numFlag(f, 'bytes', 65536);

/** Each connection's payload differs, so bytes delivered to the wrong connection are caught. */
function payloadFor(index: number): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  for (let j = 0; j < bytes; j++) b[j] = (index * 97 + j * 13 + (j >>> 9)) & 0xff;
  return b;
}

interface Failure {
  index: number;
  localPort?: number;
  phase: 'connect' | 'exchange';
  received?: number;
  firstMismatch?: number;
  error?: string;
}

/** Where each connection is, reported if the whole run times out. */
const progress = Array.from({ length: conns }, () => ({ phase: 'connecting', received: 0, localPort: 0 }));

function exchange(index: number, sock: net.Socket, expected: Buffer): Promise<{ received: number; firstMismatch: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      received += d.length;
      progress[index]!.received = received;
    });
    sock.once('error', reject);
    sock.once('end', () => {
      const got = Buffer.concat(chunks);
      let firstMismatch = -1;
      const n = Math.min(got.length, expected.length);
      for (let j = 0; j < n; j++) {
        if (got[j] !== expected[j]) {
          firstMismatch = j;
          break;
        }
      }
      resolve({ received, firstMismatch });
      sock.end();
    });
    sock.end(expected);
  });
}

runClient(
  'many-echo',
  async () => {
    const failures: Failure[] = [];
    const opened = await Promise.allSettled(Array.from({ length: conns }, () => connect(host, port, 60_000)));
    const socks: (net.Socket | undefined)[] = opened.map((r, index) => {
      if (r.status === 'fulfilled') return r.value;
      failures.push({ index, phase: 'connect', error: r.reason instanceof Error ? r.reason.message : String(r.reason) });
      return undefined;
    });
    const connected = socks.filter((s) => s !== undefined).length;
    await Promise.all(
      socks.map(async (sock, index) => {
        if (sock === undefined) return;
        const localPort = sock.localPort;
        try {
          progress[index] = { phase: 'exchanging', received: 0, localPort: localPort ?? 0 };
          const r = await exchange(index, sock, payloadFor(index));
          progress[index]!.phase = 'done';
          if (r.received !== bytes || r.firstMismatch !== -1)
            failures.push({ index, localPort, phase: 'exchange', received: r.received, firstMismatch: r.firstMismatch });
        } catch (e) {
          failures.push({ index, localPort, phase: 'exchange', error: e instanceof Error ? e.message : String(e) });
          sock.destroy();
        }
      }),
    );
    failures.sort((a, b) => a.index - b.index);
    return { conns, bytes, connectedTogether: connected, ok: conns - failures.length, failed: failures.length, failures: failures.slice(0, 20) };
  },
  numFlag(f, 'timeout-ms', 180_000),
  () => {
    const stuck = progress.map((p, index) => ({ index, ...p })).filter((p) => p.phase !== 'done');
    return { stuckCount: stuck.length, stuck: stuck.slice(0, 20), bytesPerConnection: bytes };
  },
);
