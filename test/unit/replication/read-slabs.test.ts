import { describe, expect, it } from 'vitest';
import { sessionMac, parseKey } from '../../../src/replication/auth.js';
import { FrameDecoder, FrameSealer, type VerifiedFrame } from '../../../src/replication/framing.js';
import { ReadSlabs } from '../../../src/replication/read-slabs.js';

const KIB = 1024;

/** What a socket read does with the buffer ReadSlabs hands it. */
function read(slabs: ReadSlabs, data: Uint8Array): Uint8Array {
  const buf = slabs.next();
  buf.set(data);
  return slabs.filled(buf, data.length);
}

describe('read slabs', () => {
  it('put consecutive reads next to each other in one slab', () => {
    const slabs = new ReadSlabs(256 * KIB);
    const a = read(slabs, new Uint8Array(1000).fill(1));
    const b = read(slabs, new Uint8Array(3000).fill(2));
    expect(b.buffer).toBe(a.buffer);
    expect(b.byteOffset).toBe(a.byteOffset + a.length);
  });

  it('start a new slab when less than 64 KiB is left, and never write an old one again', () => {
    const slabs = new ReadSlabs(128 * KIB);
    const a = read(slabs, new Uint8Array(70 * KIB).fill(1));
    const b = read(slabs, new Uint8Array(10 * KIB).fill(2));
    expect(b.buffer).not.toBe(a.buffer);
    read(slabs, new Uint8Array(100 * KIB).fill(3));
    expect(a.every((x) => x === 1)).toBe(true);
    expect(b.every((x) => x === 2)).toBe(true);
  });

  it('a read that filled less than it was offered keeps the rest for the next read', () => {
    const slabs = new ReadSlabs(256 * KIB);
    const first = slabs.next();
    const a = slabs.filled(first, 10);
    const second = slabs.next();
    expect(second.byteOffset).toBe(a.byteOffset + 10);
  });
});

describe('frame decoder over read slabs', () => {
  const mac = sessionMac(parseKey(new Uint8Array(32).fill(3)), 'listener-to-dialer', new Uint8Array(16), new Uint8Array(16).fill(1));

  it('takes a frame split across adjacent reads as a view of the slab, not a copy', () => {
    const sealer = new FrameSealer(mac);
    const frame = Buffer.concat(sealer.seal({ type: 'heartbeat', epoch: 3, lsn: 77, clockUs: 123456 }));
    const slabs = new ReadSlabs(256 * KIB);
    const dec = new FrameDecoder({ mac });
    const cut = 20;
    dec.push(read(slabs, frame.subarray(0, cut)));
    expect(dec.next()).toBeNull();
    const tail = read(slabs, frame.subarray(cut));
    dec.push(tail);
    const f = dec.next() as VerifiedFrame;
    expect(f).toMatchObject({ type: 'heartbeat', counter: 0 });
    expect(f.body.buffer).toBe(tail.buffer);
    expect(dec.bufferedBytes).toBe(0);
  });

  it('still reassembles a frame split across two slabs', () => {
    const sealer = new FrameSealer(mac);
    const frame = Buffer.concat(sealer.seal({ type: 'ack', lsn: 5 }));
    const slabs = new ReadSlabs(128 * KIB);
    const dec = new FrameDecoder({ mac });
    // The frame's head is the last read to fit in the first slab: 64 KiB + 5 bytes are left before it.
    read(slabs, new Uint8Array(64 * KIB - 5));
    const head = read(slabs, frame.subarray(0, 10));
    const rest = read(slabs, frame.subarray(10));
    expect(rest.buffer).not.toBe(head.buffer);
    dec.push(head);
    dec.push(rest);
    expect(dec.next()).toMatchObject({ type: 'ack', counter: 0 });
  });
});
