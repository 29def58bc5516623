import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createStack, type Stack } from '../../../src/stack/stack.js';
import { createMemoryLinkPair } from '../../../src/tun/memory-link.js';
import type { Link } from '../../../src/tun/link.js';
import { parseIpv4 } from '../../../src/stack/wire/ipv4.js';
import { parseTcp } from '../../../src/stack/wire/tcp.js';
import { TCP_SYN } from '../../../src/stack/wire/types.js';

/** Wraps a link and records every batch handed to send(). */
function recording(inner: Link): Link & { batches: Uint8Array[][] } {
  const batches: Uint8Array[][] = [];
  return {
    batches,
    get mtu() {
      return inner.mtu;
    },
    get stats() {
      return inner.stats;
    },
    send(packets) {
      batches.push([...packets]);
      inner.send(packets);
    },
    onReceive: (h) => inner.onReceive(h),
    close: () => inner.close(),
  };
}

function payloadBytes(batch: Uint8Array[]): number {
  let n = 0;
  for (const p of batch) {
    const ip = parseIpv4(p);
    if ('error' in ip) continue;
    const seg = parseTcp(ip.payload, ip.header.src, ip.header.dst, false);
    if (!('error' in seg)) n += seg.payload.length;
  }
  return n;
}

let stacks: Stack[] = [];
afterEach(async () => {
  for (const s of stacks) await s.close();
  stacks = [];
});

describe('driver', () => {
  it('ESTABLISHED, a burst of writes in one turn: all its segments leave in one link batch', async () => {
    const [a, b] = createMemoryLinkPair(1500);
    const clientLink = recording(b);
    const server = createStack({ link: a, addresses: ['198.18.0.1'] });
    const client = createStack({ link: clientLink, addresses: ['198.18.0.2'] });
    stacks.push(server, client);
    let received = 0;
    server.createServer((s) => s.on('data', (d: Buffer) => (received += d.length))).listen(7);
    const s = client.connect({ host: '198.18.0.1', port: 7 });
    s.setNoDelay(true);
    await once(s, 'connect');
    const before = clientLink.batches.length;
    for (let i = 0; i < 10; i++) s.write(Buffer.alloc(1000, i));
    for (let i = 0; received < 10_000 && i < 2000; i++) await new Promise((r) => setImmediate(r));
    expect(received).toBe(10_000);
    const withData = clientLink.batches.slice(before).filter((batch) => payloadBytes(batch) > 0);
    expect(withData).toHaveLength(1);
    expect(payloadBytes(withData[0]!)).toBe(10_000);
  });

  it('SYN-SENT with no answer: the driver timer fires the SYN retransmissions without any input', async () => {
    const [a, b] = createMemoryLinkPair(1500);
    const clientLink = recording(b);
    a.onReceive(() => {}); // a silent peer
    const client = createStack({ link: clientLink, addresses: ['198.18.0.2'], tcp: { initialRtoUs: 10_000, synRetries: 2 } });
    stacks.push(client);
    const s = client.connect({ host: '198.18.0.1', port: 7 });
    const [err] = (await once(s, 'error')) as [Error & { code: string }];
    expect(err.code).toBe('ETIMEDOUT');
    const syns = clientLink.batches.flat().filter((p) => {
      const ip = parseIpv4(p);
      if ('error' in ip) return false;
      const seg = parseTcp(ip.payload, ip.header.src, ip.header.dst, false);
      return !('error' in seg) && (seg.flags & TCP_SYN) !== 0;
    });
    expect(syns).toHaveLength(3);
  });
});
