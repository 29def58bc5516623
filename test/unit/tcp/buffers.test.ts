import { describe, expect, it } from 'vitest';
import { SendBuffer } from '../../../src/stack/tcp/send-buffer.js';
import { RecvBuffer } from '../../../src/stack/tcp/recv-buffer.js';
import { ReassemblyQueue } from '../../../src/stack/tcp/reassembly.js';
import { bytes } from './harness.js';

describe('send buffer', () => {
  it('slice inside one large chunk is a view, not a copy', () => {
    const b = new SendBuffer();
    const data = bytes(10_000);
    b.append(data);
    const s = b.slice(100, 1000);
    expect(s.buffer).toBe(data.buffer);
    expect(s).toEqual(bytes(1000, 100));
  });

  it('slice across chunks copies the bytes in order', () => {
    const b = new SendBuffer();
    b.append(bytes(3000, 0));
    b.append(bytes(3000, 3000));
    expect(b.slice(2500, 1000)).toEqual(bytes(1000, 2500));
  });

  it('small writes coalesce into one tail chunk and stay in order', () => {
    const b = new SendBuffer();
    for (let i = 0; i < 100; i++) b.append(bytes(10, i * 10));
    expect(b.length).toBe(1000);
    const s = b.slice(0, 1000);
    expect(s).toEqual(bytes(1000, 0));
  });

  it('consume drops acknowledged bytes and later slices start after them', () => {
    const b = new SendBuffer();
    b.append(bytes(3000, 0));
    b.append(bytes(10, 3000));
    b.append(bytes(3000, 3010));
    b.consume(2990);
    expect(b.length).toBe(3020);
    expect(b.slice(0, 30)).toEqual(bytes(30, 2990));
    b.consume(3020);
    expect(b.length).toBe(0);
    b.append(bytes(5, 9));
    expect(b.slice(0, 5)).toEqual(bytes(5, 9));
  });

  it('slices going backwards after forward ones still find the right chunk', () => {
    const b = new SendBuffer();
    for (let i = 0; i < 10; i++) b.append(bytes(4096, i * 4096));
    expect(b.slice(30_000, 100)).toEqual(bytes(100, 30_000));
    expect(b.slice(5000, 100)).toEqual(bytes(100, 5000));
  });
});

describe('receive buffer', () => {
  it('read without max hands out chunks as they arrived', () => {
    const r = new RecvBuffer();
    const a = bytes(10, 0);
    r.push(a);
    r.push(bytes(10, 10));
    expect(r.take()).toBe(a);
    expect(r.take()).toEqual(bytes(10, 10));
    expect(r.take()).toBeNull();
  });

  it('read with max joins chunks up to max', () => {
    const r = new RecvBuffer();
    r.push(bytes(10, 0));
    r.push(bytes(10, 10));
    expect(r.take(15)).toEqual(bytes(15, 0));
    expect(r.length).toBe(5);
    expect(r.take(100)).toEqual(bytes(5, 15));
  });
});

describe('reassembly queue', () => {
  it('fills gaps without duplicating bytes and reports the first duplicate range', () => {
    const q = new ReassemblyQueue();
    q.insert(200, bytes(100, 200));
    q.insert(400, bytes(100, 400));
    const dup = q.insert(150, bytes(400, 150));
    expect(dup).toEqual({ left: 200, right: 300 });
    expect(q.size).toBe(400);
    expect(q.sackBlocks(4)).toEqual([{ left: 150, right: 550 }]);
    const parts = q.takeInOrder(150);
    let joined: number[] = [];
    for (const p of parts) joined = joined.concat([...p]);
    expect(Uint8Array.from(joined)).toEqual(bytes(400, 150));
    expect(q.isEmpty).toBe(true);
  });

  it('reports blocks most recent first and forgets those below RCV.NXT', () => {
    const q = new ReassemblyQueue();
    q.insert(100, bytes(10));
    q.insert(300, bytes(10));
    q.insert(200, bytes(10));
    expect(q.sackBlocks(4)).toEqual([
      { left: 200, right: 210 },
      { left: 300, right: 310 },
      { left: 100, right: 110 },
    ]);
    q.takeInOrder(100);
    expect(q.sackBlocks(4)).toEqual([
      { left: 200, right: 210 },
      { left: 300, right: 310 },
    ]);
  });

  it('works across the 2^32 wrap', () => {
    const q = new ReassemblyQueue();
    const base = 0xffffff00;
    q.insert((base + 0x200) >>> 0, bytes(0x100, 1));
    q.insert((base + 0x100) >>> 0, bytes(0x100, 2));
    expect(q.sackBlocks(4)).toEqual([{ left: 0, right: 0x200 }]);
    const parts = q.takeInOrder((base + 0x100) >>> 0);
    expect(parts.map((p) => p.length)).toEqual([0x100, 0x100]);
  });
});
