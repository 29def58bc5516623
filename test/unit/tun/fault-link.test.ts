import { afterEach, describe, expect, it, vi } from 'vitest';
import { FaultLink, formatFaultSpec, noFaults, parseFaultSpec, type FaultLinkOptions } from '../../../src/tun/fault-link.js';
import { emptyLinkStats, type Link, type ReceiveHandler } from '../../../src/tun/link.js';
import { createMemoryLinkPair } from '../../../src/tun/memory-link.js';

/** A link that records what is sent and lets the test inject received batches synchronously. */
class StubLink implements Link {
  readonly mtu = 1500;
  readonly stats = emptyLinkStats();
  sent: Uint8Array[][] = [];
  handler: ReceiveHandler | undefined;
  closed = false;
  send(packets: readonly Uint8Array[]): void {
    this.sent.push([...packets]);
  }
  onReceive(handler: ReceiveHandler): void {
    this.handler = handler;
  }
  close(): void {
    this.closed = true;
  }
  deliver(batch: Uint8Array[]): void {
    this.handler?.(batch);
  }
}

/** A packet whose identity is its 32-bit number at offset 0. */
function numbered(i: number): Uint8Array {
  const p = new Uint8Array(40);
  new DataView(p.buffer).setUint32(0, i);
  return p;
}
const idOf = (p: Uint8Array): number => new DataView(p.buffer, p.byteOffset).getUint32(0);
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

function sendAll(opts: FaultLinkOptions, n: number, perBatch = 10): { ids: number[]; link: FaultLink; stub: StubLink } {
  const stub = new StubLink();
  const link = new FaultLink(stub, opts);
  for (let i = 0; i < n; i += perBatch) link.send(range(Math.min(perBatch, n - i)).map((k) => numbered(i + k)));
  return { ids: stub.sent.flat().map(idOf), link, stub };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('FaultLink', () => {
  it('passes everything unchanged, in order, when no faults are set', () => {
    const { ids, link } = sendAll({}, 100);
    expect(ids).toEqual(range(100));
    expect(link.counters().out.passed).toBe(100);
  });

  it('drops the same packets for the same seed, and different ones for another seed', () => {
    const a = sendAll({ seed: 42, out: { lossPct: 30 } }, 1000).ids;
    const b = sendAll({ seed: 42, out: { lossPct: 30 } }, 1000).ids;
    const c = sendAll({ seed: 43, out: { lossPct: 30 } }, 1000).ids;
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    // 30% of 1000 with a fair generator: far from 0 and far from everything.
    expect(a.length).toBeGreaterThan(600);
    expect(a.length).toBeLessThan(800);
  });

  it('drops every packet at 100% loss and counts them', () => {
    const { ids, link } = sendAll({ out: { lossPct: 100 } }, 50);
    expect(ids).toEqual([]);
    expect(link.counters().out.lost).toBe(50);
    expect(link.stats.txDropped).toBe(50);
  });

  it('drops everything during a partition and recovers when it is lifted', () => {
    const stub = new StubLink();
    const link = new FaultLink(stub);
    link.setFaults('out', { partition: true });
    link.send([numbered(1), numbered(2)]);
    link.clearFaults();
    link.send([numbered(3)]);
    expect(stub.sent.flat().map(idOf)).toEqual([3]);
    expect(link.counters().out.partitioned).toBe(2);
  });

  it('reorders without losing or adding packets', () => {
    vi.useFakeTimers();
    const { link, stub } = sendAll({ seed: 7, out: { reorderPct: 25, reorderDistance: 3 } }, 400);
    vi.runAllTimers(); // packets still held at the end are released by the hold timer
    const all = stub.sent.flat().map(idOf);
    expect(all).not.toEqual(range(400));
    expect([...all].sort((x, y) => x - y)).toEqual(range(400));
    expect(link.counters().out.reordered).toBeGreaterThan(0);
  });

  it('releases a held packet right behind the next N packets', () => {
    const stub = new StubLink();
    const link = new FaultLink(stub);
    link.setFaults('out', { reorderPct: 100, reorderDistance: 2 });
    link.send([numbered(0)]); // held
    expect(stub.sent.flat()).toHaveLength(0);
    // Keep settings but stop holding new packets without flushing: a tiny non-zero percentage
    // with this seed holds none of the next three.
    link.setFaults('out', { reorderPct: 1e-9, reorderDistance: 2 });
    link.send([numbered(1), numbered(2), numbered(3)]);
    expect(stub.sent.flat().map(idOf)).toEqual([1, 2, 0, 3]);
  });

  it('releases held packets when reordering is switched off or the hold time runs out', () => {
    vi.useFakeTimers();
    const stub = new StubLink();
    const link = new FaultLink(stub);
    link.setFaults('out', { reorderPct: 100, reorderDistance: 5, reorderMaxHoldMs: 20 });
    link.send([numbered(0), numbered(1)]);
    expect(stub.sent.flat()).toHaveLength(0);
    vi.advanceTimersByTime(25);
    expect(stub.sent.flat().map(idOf)).toEqual([0, 1]);
    link.send([numbered(2)]);
    link.setFaults('out', { reorderPct: 0 });
    expect(stub.sent.flat().map(idOf)).toEqual([0, 1, 2]);
  });

  it('counts duplicates and delivers each packet once or twice', () => {
    const { ids, link } = sendAll({ seed: 3, out: { duplicatePct: 50 } }, 200);
    const dup = link.counters().out.duplicated;
    expect(dup).toBeGreaterThan(50);
    expect(dup).toBeLessThan(150);
    expect(ids.length).toBe(200 + dup);
    const seen = new Map<number, number>();
    for (const id of ids) seen.set(id, (seen.get(id) ?? 0) + 1);
    expect([...seen.keys()].sort((x, y) => x - y)).toEqual(range(200));
    expect([...seen.values()].filter((v) => v === 2).length).toBe(dup);
  });

  it('corrupts exactly one byte of a copy, leaving the caller buffer intact', () => {
    const stub = new StubLink();
    const link = new FaultLink(stub, { out: { corruptPct: 100 } });
    const originals = range(20).map((i) => numbered(i).fill(0xaa, 4));
    const before = originals.map((p) => p.slice());
    link.send(originals);
    const got = stub.sent.flat();
    expect(got).toHaveLength(20);
    got.forEach((p, i) => {
      const diff = p.reduce((n, byte, k) => n + (byte !== before[i]![k] ? 1 : 0), 0);
      expect(diff).toBe(1);
      expect(originals[i]).toEqual(before[i]);
    });
    expect(link.counters().out.corrupted).toBe(20);
  });

  it('holds packets for the configured delay', () => {
    vi.useFakeTimers();
    const stub = new StubLink();
    const link = new FaultLink(stub, { out: { delayMs: 100 } });
    link.send([numbered(1), numbered(2)]);
    vi.advanceTimersByTime(50);
    expect(stub.sent.flat()).toHaveLength(0);
    vi.advanceTimersByTime(60);
    expect(stub.sent.flat().map(idOf)).toEqual([1, 2]);
    expect(stub.sent).toHaveLength(1); // released together, as one batch
    expect(link.counters().out.delayed).toBe(2);
  });

  it('applies faults to the receive direction independently', () => {
    const stub = new StubLink();
    const link = new FaultLink(stub, { in: { lossPct: 100 } });
    const got: number[] = [];
    link.onReceive((b) => got.push(...b.map(idOf)));
    stub.deliver([numbered(1), numbered(2)]);
    link.send([numbered(3)]);
    expect(got).toEqual([]);
    expect(stub.sent.flat().map(idOf)).toEqual([3]);
    link.setFaults('in', {});
    stub.deliver([numbered(4)]);
    expect(got).toEqual([4]);
    expect(link.counters().in.lost).toBe(2);
  });

  it('lists the current settings and rejects impossible ones', () => {
    const link = new FaultLink(new StubLink());
    link.setFaults('in', { lossPct: 5, delayMs: 10 });
    expect(link.faults().in.lossPct).toBe(5);
    expect(link.faults().in.delayMs).toBe(10);
    expect(link.faults().out.lossPct).toBe(0);
    expect(() => link.setFaults('out', { lossPct: 101 })).toThrow(RangeError);
    expect(() => link.setFaults('out', { reorderDistance: 0 })).toThrow(RangeError);
    link.clearFaults();
    expect(link.faults().in.lossPct).toBe(0);
  });

  it('works over a real in-memory wire and closes the wrapped link', async () => {
    const [a, b] = createMemoryLinkPair(1500);
    const faulty = new FaultLink(a, { seed: 9, out: { lossPct: 50 } });
    const got: number[] = [];
    const done = new Promise<void>((resolve) => b.onReceive((batch) => (got.push(...batch.map(idOf)), resolve())));
    faulty.send(range(100).map(numbered));
    await done;
    expect(got.length).toBe(100 - faulty.counters().out.lost);
    faulty.close();
    faulty.send([numbered(1)]);
    expect(a.stats.txPackets).toBe(got.length);
  });
});

describe('fault specs for the command line', () => {
  it('parses every kind and round-trips through formatting', () => {
    const s = parseFaultSpec('loss=5, delay=20,jitter=5,dup=1,reorder=2,reorder-distance=3,corrupt=0.5,partition');
    expect(s).toEqual({
      lossPct: 5,
      delayMs: 20,
      jitterMs: 5,
      duplicatePct: 1,
      reorderPct: 2,
      reorderDistance: 3,
      corruptPct: 0.5,
      partition: true,
    });
    const full = { ...noFaults(), ...s };
    expect(parseFaultSpec(formatFaultSpec(full))).toEqual(s);
    expect(formatFaultSpec(noFaults())).toBe('');
    expect(parseFaultSpec('')).toEqual({});
    expect(parseFaultSpec('partition=off')).toEqual({ partition: false });
  });

  it('rejects unknown kinds, missing numbers and out-of-range values', () => {
    expect(() => parseFaultSpec('lose=5')).toThrow(/unknown fault "lose"/);
    expect(() => parseFaultSpec('loss=')).toThrow(/needs a number/);
    expect(() => parseFaultSpec('loss=abc')).toThrow(/needs a number/);
    expect(() => parseFaultSpec('loss=150')).toThrow(RangeError);
    expect(() => parseFaultSpec('partition=maybe')).toThrow(/on\/off/);
  });
});

describe('FaultLink subscription', () => {
  it('leaves packets with the wrapped link until someone listens', async () => {
    const [a, b] = createMemoryLinkPair(1500);
    const faulty = new FaultLink(b);
    a.send([numbered(1)]);
    await new Promise((r) => setImmediate(r));
    const got = await new Promise<number[]>((resolve) => faulty.onReceive((batch) => resolve(batch.map(idOf))));
    expect(got).toEqual([1]);
    expect(faulty.stats.rxDropped).toBe(0);
  });
});
