// The pieces of a sliced takeover (docs/replication.md "Takeover of many connections"): promotion
// in slices of bounded time, the hold link keeping the input of connections not yet promoted (a
// segment reaching one would meet a RST) while letting that of promoted ones go up in order.

import { describe, expect, it } from 'vitest';
import { HoldLink } from '../../../src/replication/node/hold-link.js';
import { inboundKey, PendingTuples } from '../../../src/replication/node/pending-tuples.js';
import { forEachInSlices } from '../../../src/replication/node/time-slices.js';
import type { FourTuple } from '../../../src/stack/wire/types.js';
import type { Link, ReceiveHandler, ReceiveInfo } from '../../../src/tun/link.js';

const VIP = 0xc6120064; // 198.18.0.100
const CLIENT = 0xc612000a; // 198.18.0.10

/** A client's TCP segment to the VIP: a 20-byte IPv4 header, ports, and `tag` as its only payload byte. */
function segment(clientPort: number, tag: number, opts: { proto?: number; fragmentOffset?: number } = {}): Uint8Array {
  const p = new Uint8Array(41);
  p[0] = 0x45;
  p[3] = p.length;
  p[6] = (opts.fragmentOffset ?? 0) >> 8;
  p[7] = (opts.fragmentOffset ?? 0) & 0xff;
  p[9] = opts.proto ?? 6;
  new DataView(p.buffer).setUint32(12, CLIENT);
  new DataView(p.buffer).setUint32(16, VIP);
  new DataView(p.buffer).setUint16(20, clientPort);
  new DataView(p.buffer).setUint16(22, 80);
  p[32] = 0x50;
  p[40] = tag;
  return p;
}

const tuple = (clientPort: number): FourTuple => ({ localAddr: VIP, localPort: 80, remoteAddr: CLIENT, remotePort: clientPort });

/** A link whose receive side the test drives: deliver() is the device handing up a batch. */
function drivenLink(): Link & { deliver(packets: Uint8Array[], info?: ReceiveInfo): void } {
  let handler: ReceiveHandler = () => undefined;
  return {
    mtu: 1500,
    stats: { rxPackets: 0, rxBytes: 0, rxBatches: 0, rxDropped: 0, txPackets: 0, txBytes: 0, txDropped: 0 },
    send: () => undefined,
    onReceive: (h) => void (handler = h),
    close: () => undefined,
    deliver: (packets, info) => handler(packets, info),
  };
}

/** What went up to the stack: [port, tag, checksum trusted] per packet, in order. */
function stackSide(link: HoldLink): [number, number, number][] {
  const got: [number, number, number][] = [];
  link.onReceive((packets, info) => {
    packets.forEach((p, i) => got.push([(p[20]! << 8) | p[21]!, p[40]!, info?.checksumValid[i] ?? 0]));
  });
  return got;
}

describe('sliced promotion', () => {
  it('time slices: every item once, in order, a new slice each time the slice time is used up', async () => {
    let clock = 0;
    const seen: number[] = [];
    const sliceStarts: number[] = [];
    let turns = 0;
    const slices = await forEachInSlices(
      Array.from({ length: 100 }, (_, i) => i),
      (i) => {
        seen.push(i);
        clock += 0.5;
      },
      { sliceMs: 20, now: () => clock, nextTurn: async () => void turns++, onSlice: () => sliceStarts.push(seen.length) },
    );
    expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => i));
    // The clock is read every 16 items: a slice ends at the first look past 20 ms (48 items, 24 ms).
    expect(sliceStarts).toEqual([0, 48, 96]);
    expect(slices).toBe(3);
    expect(turns).toBe(2);
  });

  it('time slices: no items, no slice and no yield', async () => {
    let turns = 0;
    expect(await forEachInSlices([], () => undefined, { sliceMs: 5, nextTurn: async () => void turns++ })).toBe(0);
    expect(turns).toBe(0);
  });

  it('pending tuples: a segment of a connection not yet promoted waits, one promoted or unknown goes; no TCP header of its own waits', () => {
    const pending = new PendingTuples([tuple(1000), tuple(1001)]);
    expect(pending.ready(segment(1000, 1))).toBe(false);
    expect(pending.ready(segment(2000, 1))).toBe(true);
    pending.done(tuple(1000));
    expect(pending.ready(segment(1000, 1))).toBe(true);
    expect(pending.ready(segment(1001, 1))).toBe(false);
    expect(pending.size).toBe(1);
    expect(inboundKey(segment(1000, 1, { proto: 17 }))).toBeNull();
    expect(inboundKey(segment(1000, 1, { fragmentOffset: 0x2000 }))).toBeNull();
    expect(inboundKey(segment(1000, 1).subarray(0, 22))).toBeNull();
    expect(pending.ready(segment(2000, 1, { fragmentOffset: 3 }))).toBe(false);
  });

  it('hold link: input of pending connections waits, the rest goes up at once with its checksum flags', () => {
    const inner = drivenLink();
    const link = new HoldLink(inner);
    const got = stackSide(link);
    const pending = new PendingTuples([tuple(1000)]);
    link.holdInput((p) => pending.ready(p));
    inner.deliver([segment(1000, 1), segment(2000, 2), segment(1000, 3)], { checksumValid: Uint8Array.of(1, 1, 0) });
    expect(got).toEqual([[2000, 2, 1]]);
    expect(link.heldInputPackets).toBe(2);
    expect(link.inputHeld).toBe(2);
    pending.done(tuple(1000));
    expect(link.flushReadyInput()).toBe(2);
    expect(got).toEqual([[2000, 2, 1], [1000, 1, 1], [1000, 3, 0]]);
  });

  it('hold link: a segment arriving after its connection was promoted does not overtake the held ones', () => {
    const inner = drivenLink();
    const link = new HoldLink(inner);
    const got = stackSide(link);
    const pending = new PendingTuples([tuple(1000), tuple(1001)]);
    link.holdInput((p) => pending.ready(p));
    inner.deliver([segment(1000, 1), segment(1001, 2)]);
    pending.done(tuple(1000));
    inner.deliver([segment(1000, 3), segment(1001, 4)]);
    expect(got.map(([port, tag]) => [port, tag])).toEqual([[1000, 1], [1000, 3]]);
    expect(link.releaseInput()).toBe(2);
    expect(got.map(([port, tag]) => [port, tag])).toEqual([[1000, 1], [1000, 3], [1001, 2], [1001, 4]]);
    // Released: input passes straight through again.
    inner.deliver([segment(1001, 5)]);
    expect(got.at(-1)?.slice(0, 2)).toEqual([1001, 5]);
    expect(link.heldInputPackets).toBe(0);
  });

  it('hold link: beyond its bound held input is dropped and counted, never handed up out of turn', () => {
    const inner = drivenLink();
    const link = new HoldLink(inner, { packets: 3, bytes: 1 << 20 });
    const got = stackSide(link);
    link.holdInput();
    inner.deliver([1, 2, 3, 4, 5].map((t) => segment(1000, t)));
    expect(got).toEqual([]);
    expect(link.inputDropped).toBe(2);
    expect(link.releaseInput()).toBe(3);
    expect(got.map(([, tag]) => tag)).toEqual([1, 2, 3]);
  });
});
