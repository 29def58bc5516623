import { describe, expect, it } from 'vitest';
import { createMemoryLinkPair } from '../../../src/tun/memory-link.js';

function packet(tag: number, len = 20): Uint8Array {
  const p = new Uint8Array(len);
  p[0] = 0x45;
  p[len - 1] = tag;
  return p;
}

function nextBatch(link: { onReceive(h: (p: Uint8Array[]) => void): void }): Promise<Uint8Array[]> {
  return new Promise((resolve) => link.onReceive(resolve));
}

describe('memory link pair', () => {
  it('delivers what one end sends to the other, in order, as one batch per turn', async () => {
    const [a, b] = createMemoryLinkPair(1500);
    const got = nextBatch(b);
    a.send([packet(1), packet(2)]);
    a.send([packet(3)]);
    const batch = await got;
    expect(batch.map((p) => p[19])).toEqual([1, 2, 3]);
    expect(b.stats.rxBatches).toBe(1);
    expect(b.stats.rxPackets).toBe(3);
    expect(a.stats.txPackets).toBe(3);
    expect(a.stats.txBytes).toBe(60);
  });

  it('does not call the handler synchronously from send', () => {
    const [a, b] = createMemoryLinkPair(1500);
    let called = false;
    b.onReceive(() => {
      called = true;
    });
    a.send([packet(1)]);
    expect(called).toBe(false);
  });

  it('copies packets so the sender may reuse its buffer', async () => {
    const [a, b] = createMemoryLinkPair(1500);
    const got = nextBatch(b);
    const buf = packet(7);
    a.send([buf]);
    buf[19] = 99;
    expect((await got)[0]![19]).toBe(7);
  });

  it('works in both directions', async () => {
    const [a, b] = createMemoryLinkPair(1500);
    const got = nextBatch(a);
    b.send([packet(5)]);
    expect((await got)[0]![19]).toBe(5);
  });

  it('drops packets larger than the MTU and counts them', async () => {
    const [a, b] = createMemoryLinkPair(100);
    const got = nextBatch(b);
    a.send([packet(1, 101), packet(2, 100)]);
    const batch = await got;
    expect(batch).toHaveLength(1);
    expect(batch[0]![99]).toBe(2);
    expect(a.stats.txDropped).toBe(1);
  });

  it('holds packets until a handler is attached', async () => {
    const [a, b] = createMemoryLinkPair(1500);
    a.send([packet(1)]);
    await new Promise((r) => setImmediate(r));
    const batch = await nextBatch(b);
    expect(batch).toHaveLength(1);
  });

  it('stops delivering after close, on either end', async () => {
    const [a, b] = createMemoryLinkPair(1500);
    let received = 0;
    b.onReceive((p) => (received += p.length));
    a.send([packet(1)]);
    b.close();
    await new Promise((r) => setImmediate(r));
    expect(received).toBe(0);
    a.send([packet(2)]);
    expect(a.stats.txDropped).toBe(1);
  });

  it('rejects an impossible MTU', () => {
    expect(() => createMemoryLinkPair(10)).toThrow(RangeError);
  });
});

describe('memory link copies', () => {
  it('copies a Node Buffer too (whose slice() would share memory)', async () => {
    const [a, b] = createMemoryLinkPair(1500);
    const got = new Promise<Uint8Array[]>((resolve) => b.onReceive(resolve));
    const buf = Buffer.alloc(20, 1);
    a.send([buf]);
    buf.fill(2);
    expect((await got)[0]![0]).toBe(1);
  });
});
