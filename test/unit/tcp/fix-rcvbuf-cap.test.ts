// A hard cap on a connection's receive memory (receiver.ts, rcvMemoryCap): unread bytes plus the
// reassembly queue never exceed rcvBuf + max(2^Rcv.Wind.Shift, rcvBuf / 16).
//
// The right edge never moves left, so with window scaling the field is rounded up from the last
// edge (RFC 7323 2.4) and may overshoot the free space by up to 2^shift - 1 bytes. A peer that
// stops each burst one byte short of the edge while our application reads nothing makes every
// ACK overshoot again: without a cap the buffer grows without limit. Data beyond the cap is
// dropped, not acknowledged, and counted; a normal bulk transfer never meets it.

import { describe, expect, it } from 'vitest';
import { defaultTcpConfig } from '../../../src/stack/tcp/config.js';
import { rcvMemoryCap, rcvbufDropsOf } from '../../../src/stack/tcp/receiver.js';
import { seqAdd, seqDiff } from '../../../src/stack/wire/seq.js';
import { MS, establishedScaled, seg } from './harness.js';
import { Pair, concat, pattern, sameBytes } from './pair.js';

const SHIFT = 7;
const RCVBUF = 100_000;

describe('receive memory cap: rcvBuf + max(2^wscale, rcvBuf / 16), drops counted', () => {
  it('a peer stopping a byte short of every edge, reader never reads: buffered bytes stay <= the cap over 2,000 rounds', () => {
    const c = establishedScaled(SHIFT, RCVBUF);
    const cap = rcvMemoryCap(c);
    expect(cap).toBe(RCVBUF + RCVBUF / 16);
    let t = 20 * MS;
    let seq = 5001;
    // The edge the peer knows: from our last ACK.
    let edge = 5001;
    let sawEdge = false;
    const readAcks = (): void => {
      for (const s of c.takeOutput()) {
        edge = seqAdd(s.ack, s.window << SHIFT);
        sawEdge = true;
      }
    };
    // The SYN-ACK was taken with the handshake; a first byte draws an ACK with the current edge.
    c.onSegment((t += MS), seg('.', seq, 1001, { data: 1 }));
    seq += 1;
    c.onTimer((t += 200 * MS));
    readAcks();
    expect(sawEdge).toBe(true);
    let maxHeld = 0;
    for (let round = 0; round < 2000; round++) {
      // Send up to one byte short of the edge, in MSS-sized pieces.
      let room = seqDiff(edge, seq) - 1;
      while (room > 0) {
        const before = c.v.rcvNxt;
        c.onSegment((t += MS), seg('.', seq, 1001, { data: Math.min(room, 1460) }));
        readAcks();
        maxHeld = Math.max(maxHeld, c.rcvBuf.length + c.ooo.size);
        // Dropped at the cap (not acknowledged): the peer would retransmit it in a later round.
        if (c.v.rcvNxt === before) break;
        seq = c.v.rcvNxt;
        room = seqDiff(edge, seq) - 1;
      }
      // Any delayed ACK goes out.
      c.onTimer((t += 200 * MS));
      readAcks();
      expect(c.rcvBuf.length + c.ooo.size).toBeLessThanOrEqual(cap);
    }
    expect(maxHeld).toBeLessThanOrEqual(cap);
    // The peer did get beyond rcvBuf (the rounding overshoots), up to the cap and no further.
    expect(c.rcvBuf.length).toBeGreaterThan(cap - 1460);
    expect(c.rcvBuf.drops).toBeGreaterThan(1000);
    expect(rcvbufDropsOf(c)).toBe(c.rcvBuf.drops);
    expect(c.state).toBe('ESTABLISHED');
  });

  it('out-of-order data is held to the same cap: a hole at RCV.NXT and the window filled beyond it', () => {
    const c = establishedScaled(SHIFT, RCVBUF);
    const cap = rcvMemoryCap(c);
    let t = 20 * MS;
    // In order: all but 1000 bytes of the buffer.
    c.onSegment((t += MS), seg('.', 5001, 1001, { data: RCVBUF - 1000 }));
    c.onTimer((t += 200 * MS));
    const start = c.v.rcvNxt;
    // Out of order, byte after byte with one-byte holes, repeatedly at the advertised edge.
    for (let i = 0; i < 2000; i++) {
      const edge = c.v.rcvAdv;
      const at = seqAdd(start, 1 + ((i * 2) % Math.max(1, seqDiff(edge, start) - 1)));
      c.onSegment((t += MS), seg('.', at, 1001, { data: 1 }));
      c.takeOutput();
      expect(c.rcvBuf.length + c.ooo.size).toBeLessThanOrEqual(cap);
    }
    // Filling the hole moves the queue into the read buffer, still within the cap.
    c.onSegment((t += MS), seg('.', start, 1001, { data: 1 }));
    expect(c.rcvBuf.length + c.ooo.size).toBeLessThanOrEqual(cap);
  });

  it('a bulk transfer to a slow, pausing reader with wscale 7 never drops anything', () => {
    const cfg = { ...defaultTcpConfig(), rcvBuf: RCVBUF, sndBuf: 256 * 1024, windowScale: SHIFT };
    const p = new Pair(cfg, cfg, { delayUs: 5 * MS }, { delayUs: 5 * MS });
    const data = pattern(4 * 1024 * 1024, 7);
    let off = 0;
    const got: Uint8Array[] = [];
    let lastRead = 0;
    let reads = 0;
    let maxHeld = 0;
    p.run(600_000 * MS, () => {
      const a = p.a;
      if (off < data.length && a.state === 'ESTABLISHED') off += a.write(p.now, data.subarray(off, Math.min(data.length, off + 65536)));
      if (off >= data.length && a.state === 'ESTABLISHED') a.shutdown(p.now);
      const b = p.b;
      if (!b) return;
      maxHeld = Math.max(maxHeld, b.rcvBuf.length + b.ooo.size);
      // Slow: an odd amount every 3 ms, with a pause of 400 ms or 10 s every 100 reads (the buffer fills).
      if (p.now - lastRead >= (reads % 100 === 99 ? (reads % 200 === 199 ? 10_000 : 400) * MS : 3 * MS)) {
        lastRead = p.now;
        reads++;
        const x = b.read(p.now, 1000 + (reads % 7) * 111);
        if (x) got.push(x.slice());
      }
    });
    // Whatever is left.
    for (let x = p.b!.read(p.now); x; x = p.b!.read(p.now)) got.push(x.slice());
    expect(sameBytes(concat(got), data)).toBe('equal');
    expect(p.b!.rcvBuf.drops).toBe(0);
    expect(maxHeld).toBeGreaterThan(RCVBUF - 2000);
    expect(maxHeld).toBeLessThanOrEqual(rcvMemoryCap(p.b!));
  });
});
