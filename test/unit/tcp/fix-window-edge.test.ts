// The right edge of the receive window never moves left, window scaling or not.
//
// RFC 9293 3.8.6: "A TCP receiver SHOULD NOT shrink the window, i.e., move the right window edge
// to the left (SHLD-14)." RFC 7323 section 2.4 explains how scaling alone can retract it: "If the
// sequence number is then updated by a number of bytes smaller than 2^S, a TCP that is sending
// the window based on the scale factor and the current receive window may retract the window by
// a whole step", and asks the receiver to "track the actual maximum window sequence number".
// With wscale 7 a window field counts 128-byte units; free space that is not a multiple of 128,
// rounded down, would put RCV.NXT + (field << 7) left of an edge already advertised. The field
// is rounded up instead, so the edge stays at or right of every earlier one (RCV.ADV, the TCB's
// largest advertised edge).

import { describe, expect, it } from 'vitest';
import { seqAdd, seqLt } from '../../../src/stack/wire/seq.js';
import type { TcpSegment } from '../../../src/stack/wire/types.js';
import { MS, establishedScaled, seg } from './harness.js';

const SHIFT = 7;
// 100000 = 781 * 128 + 32: the free space is rarely a multiple of 128.
const RCVBUF = 100_000;

/** Right edge of a non-SYN segment we sent: SEG.ACK + (SEG.WND << Rcv.Wind.Shift). */
function edgeOf(s: TcpSegment): number {
  return seqAdd(s.ack, s.window << SHIFT);
}

describe('ESTABLISHED with wscale 7: the advertised right edge never moves left (RFC 9293 3.8.6, RFC 7323 2.4)', () => {
  it('segments arrive and the application reads odd amounts: every ACK edge >= every earlier one', () => {
    const c = establishedScaled(SHIFT, RCVBUF);
    let prev: number | null = null;
    let seq = 5001;
    let t = 20 * MS;
    let checked = 0;
    const check = (): void => {
      for (const s of c.takeOutput()) {
        const e = edgeOf(s);
        if (prev !== null) expect(seqLt(e, prev), `edge ${e} left of earlier ${prev} (ack ${s.ack} win ${s.window})`).toBe(false);
        // RCV.ADV tracks the largest edge advertised.
        expect(seqLt(c.v.rcvAdv, e)).toBe(false);
        prev = e;
        checked++;
      }
    };
    // Segment sizes and read sizes that are not multiples of 128, until the buffer is nearly full
    // and then while it drains and fills again.
    const sizes = [1000, 1460, 333, 1, 999, 1460, 77, 1205];
    const reads = [0, 500, 0, 129, 0, 0, 3000, 1];
    for (let i = 0; i < 400; i++) {
      const n = Math.min(sizes[i % sizes.length]!, Math.max(0, seqAdd(c.v.rcvAdv, -seq) | 0));
      if (n > 0) {
        c.onSegment((t += MS), seg('.', seq, 1001, { data: n }));
        seq = seqAdd(seq, n);
      } else {
        // Window closed: a zero-window probe draws an ACK.
        c.onSegment((t += MS), seg('.', seq, 1001, { data: 1 }));
      }
      check();
      const r = reads[i % reads.length]!;
      if (r > 0) {
        c.read((t += MS), r);
        check();
      }
      // Delayed ACKs go out too.
      const d = c.nextDeadline();
      if (d !== null && d <= t + 200 * MS) {
        c.onTimer((t = Math.max(t, d)));
        check();
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('free space 2010 after an advertised window of 2000: the field is rounded up to 16 units, not down to 15', () => {
    const c = establishedScaled(SHIFT, RCVBUF);
    const v = c.v;
    // The buffer holds all but 2010 bytes (above the SWS threshold of one MSS); the edge already
    // advertised is RCV.NXT + 2000. 2010 >> 7 = 15 units, 1920 bytes, would move it 80 bytes left.
    c.onSegment(20 * MS, seg('.', 5001, 1001, { data: RCVBUF - 2010 }));
    c.takeOutput();
    v.rcvAdv = seqAdd(v.rcvNxt, 2000);
    v.ackNow = true;
    c.onTimer(30 * MS);
    const [ack] = c.takeOutput();
    expect(ack).toBeDefined();
    expect(ack!.window).toBe(16);
    expect(seqLt(edgeOf(ack!), seqAdd(v.rcvNxt, 2000))).toBe(false);
  });
});
