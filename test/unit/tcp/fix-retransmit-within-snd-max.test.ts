// Every retransmission path resends only sequence space that was sent before: nothing past
// SND.MAX. Bytes beyond it are new data, which must respect the peer's window and advance
// SND.MAX (sendNew, or the persist timer's one-octet probe, RFC 9293 3.8.6.1); a segment past
// SND.MAX that does not advance it leaves the TCB contradicting the wire (the peer's ACK of it
// would be "an ACK for something not yet sent", RFC 9293 3.10.7.4).

import { describe, expect, it } from 'vitest';
import type { Connection } from '../../../src/stack/tcp/connection.js';
import { seqAdd, seqLe } from '../../../src/stack/wire/seq.js';
import type { TcpSegment } from '../../../src/stack/wire/types.js';
import { MS, bytes, established, out, seg } from './harness.js';

/** Data segments of `segs` that end beyond SND.MAX, described; [] when all are within it. */
function beyondSndMax(c: Connection, segs: TcpSegment[]): string[] {
  return segs.filter((s) => !seqLe(seqAdd(s.seq, s.payload.length), c.v.sndMax)).map((s) => `${s.seq}+${s.payload.length} past SND.MAX ${c.v.sndMax}`);
}

describe('retransmission timeout with the peer window closed', () => {
  it('established, RTO after the peer acked half and closed its window: resends only SND.UNA..SND.MAX, the queued data stays unsent', () => {
    const c = established(); // ISS 1000, IRS 5000
    c.write(20 * MS, bytes(100, 1001)); // 1001..1101 on the wire
    c.takeOutput();
    c.onSegment(30 * MS, seg('.', 5001, 1051, { win: 0 })); // half acked, window shrinks to zero
    c.write(31 * MS, bytes(3000)); // queued behind the closed window
    expect(out(c)).toEqual([]);
    expect(c.v.sndMax).toBe(1101);

    c.onTimer(c.v.rtxDeadline!);
    const sent = c.takeOutput();
    // RFC 6298 5.4: "Retransmit the earliest segment that has not been acknowledged": the 50
    // bytes that were sent, not an MSS of the send buffer.
    expect(sent.map((s) => `${s.seq}:${s.seq + s.payload.length}`)).toEqual(['1051:1101']);
    expect(Array.from(sent[0]!.payload)).toEqual(Array.from(bytes(50, 1051)));
    expect(beyondSndMax(c, sent)).toEqual([]);
    expect(c.v.sndMax).toBe(1101);
    expect(c.v.sndNxt).toBe(1101);
    // Still outstanding, so the retransmission timer runs (backed off), not the persist timer.
    expect(c.v.rtxDeadline).not.toBeNull();
    expect(c.v.persistDeadline).toBeNull();
  });

  it('established, the peer acks everything sent but keeps its window closed: the persist timer takes over and probes with one octet that advances SND.MAX', () => {
    const c = established();
    c.write(20 * MS, bytes(100, 1001));
    c.takeOutput();
    c.onSegment(30 * MS, seg('.', 5001, 1051, { win: 0 }));
    c.write(31 * MS, bytes(3000));
    c.onTimer(c.v.rtxDeadline!);
    c.takeOutput();

    c.onSegment(1500 * MS, seg('.', 5001, 1101, { win: 0 }));
    expect(out(c)).toEqual([]);
    // RFC 6298 5.2: all outstanding data acknowledged, so the retransmission timer is off; the
    // queued data is the persist timer's (RFC 9293 3.8.6.1).
    expect(c.v.rtxDeadline).toBeNull();
    expect(c.v.persistDeadline).not.toBeNull();

    c.onTimer(c.v.persistDeadline!);
    const probe = c.takeOutput();
    expect(probe.map((s) => `${s.seq}:${s.seq + s.payload.length}`)).toEqual(['1101:1102']);
    expect(c.v.sndMax).toBe(1102);
    expect(beyondSndMax(c, probe)).toEqual([]);
  });

  it('FIN-WAIT-1, RTO with the window closed over data and FIN: resends the rest of the data with the FIN and nothing more', () => {
    const c = established();
    c.write(20 * MS, bytes(100, 1001));
    c.shutdown(21 * MS);
    expect(out(c)).toEqual(['P. 1001:1101(100) ack 5001 win 65535', 'F. 1101:1101(0) ack 5001 win 65535']);
    expect(c.v.sndMax).toBe(1102);
    c.onSegment(30 * MS, seg('.', 5001, 1051, { win: 0 }));
    expect(c.state).toBe('FIN-WAIT-1');

    c.onTimer(c.v.rtxDeadline!);
    expect(out(c)).toEqual(['FP. 1051:1101(50) ack 5001 win 65535']);
    expect(c.v.sndNxt).toBe(1102);
    expect(c.v.sndMax).toBe(1102);
  });
});

describe('fast retransmit and NewReno partial ACKs', () => {
  it('established, third duplicate ACK with a Nagle-held tail queued: the fast retransmission stops at SND.MAX', () => {
    const c = established();
    c.write(20 * MS, bytes(100, 1001)); // 1001..1101 sent
    c.write(21 * MS, bytes(500, 1101)); // held by Nagle: data is unacknowledged
    expect(out(c)).toEqual(['P. 1001:1101(100) ack 5001 win 65535']);
    for (let i = 0; i < 3; i++) c.onSegment((30 + i) * MS, seg('.', 5001, 1001));
    const sent = c.takeOutput();
    // RFC 5681 3.2 step 2: "retransmit the lost segment" -- the one that was sent, 1001..1101.
    expect(sent.map((s) => `${s.seq}:${s.seq + s.payload.length}`)).toEqual(['1001:1101']);
    expect(beyondSndMax(c, sent)).toEqual([]);
    expect(c.v.sndMax).toBe(1101);
  });

  it('established in NewReno recovery, partial ACK with a Nagle-held tail queued: the retransmission of the next hole stops at SND.MAX', () => {
    const c = established();
    c.setNoDelay(true);
    c.write(20 * MS, bytes(1560, 1001)); // 1001..2461 and 2461..2561
    c.setNoDelay(false);
    c.write(21 * MS, bytes(500, 2561)); // held by Nagle
    expect(out(c)).toEqual(['. 1001:2461(1460) ack 5001 win 65535', 'P. 2461:2561(100) ack 5001 win 65535']);
    for (let i = 0; i < 3; i++) c.onSegment((30 + i) * MS, seg('.', 5001, 1001));
    expect(out(c)).toEqual(['. 1001:2461(1460) ack 5001 win 65535']);
    expect(c.v.inRecovery).toBe(true);

    // RFC 6582 3.2 step 5: a partial ACK retransmits "the first unacknowledged segment", 2461..2561.
    c.onSegment(40 * MS, seg('.', 5001, 2461));
    const sent = c.takeOutput();
    expect(sent.filter((s) => s.payload.length > 0).map((s) => `${s.seq}:${s.seq + s.payload.length}`)).toEqual(['2461:2561']);
    expect(beyondSndMax(c, sent)).toEqual([]);
    expect(c.v.sndMax).toBe(2561);
  });
});
