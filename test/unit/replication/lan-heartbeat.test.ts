import { afterEach, describe, expect, it } from 'vitest';
import { parseKey } from '../../../src/replication/auth.js';
import { decodeLanHeartbeat, encodeLanHeartbeat, LanHeartbeatReceiver, type LanHeartbeat } from '../../../src/replication/lan-heartbeat.js';
import { LanBeacon } from '../../../src/replication/node/lan-beacon.js';

const KEY = parseKey(new Uint8Array(32).fill(0xa1));
const OTHER = parseKey(new Uint8Array(32).fill(0xa2));
const HB: LanHeartbeat = { role: 'primary', epoch: 3, counter: 2 ** 40 + 5, clockUs: 1_700_000_000_000_000, nodeId: 'node-a' };

const closers: (() => void)[] = [];
afterEach(() => closers.splice(0).forEach((c) => c()));

describe('LAN heartbeat datagrams', () => {
  it('round-trip under the shared key', () => {
    expect(decodeLanHeartbeat(KEY, encodeLanHeartbeat(KEY, HB))).toEqual(HB);
  });

  it('are refused under another key, altered, or truncated', () => {
    const d = encodeLanHeartbeat(KEY, HB);
    expect(decodeLanHeartbeat(OTHER, d)).toMatchObject({ error: expect.stringMatching(/MAC/) });
    const altered = Buffer.from(d);
    altered[9] ^= 1;
    expect(decodeLanHeartbeat(KEY, altered)).toMatchObject({ error: expect.stringMatching(/MAC/) });
    expect(decodeLanHeartbeat(KEY, d.subarray(0, 20))).toMatchObject({ error: expect.stringMatching(/too short/) });
  });
});

describe('LAN heartbeat over UDP', () => {
  it('delivers heartbeats and refuses a replayed one', async () => {
    const rx = new LanHeartbeatReceiver(KEY, { host: '127.0.0.1', port: 0 });
    await rx.start();
    closers.push(() => rx.close());
    const seen: LanHeartbeat[] = [];
    rx.on('heartbeat', (h) => seen.push(h));
    const tx = new LanBeacon({ key: KEY, nodeId: 'node-a', role: () => 'primary', epoch: () => 1, target: { host: '127.0.0.1', port: rx.port, broadcast: false }, intervalMs: 10 });
    closers.push(() => tx.close());
    await tx.start();
    const deadline = Date.now() + 5000;
    while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen[1]!.counter).toBeGreaterThan(seen[0]!.counter);
    // Someone replays the first heartbeat it overheard.
    const replay = encodeLanHeartbeat(KEY, seen[0]!);
    const { createSocket } = await import('node:dgram');
    const s = createSocket('udp4');
    closers.push(() => s.close());
    const refused = new Promise<string>((r) => rx.once('refused', (e) => r(e)));
    s.send(replay, rx.port, '127.0.0.1');
    expect(await refused).toMatch(/replay/);
  });
});
