import { describe, expect, it } from 'vitest';
import { MS, TUPLE, bytes, established, out, plainConfig, seg, testEnv } from './harness.js';
import { createPassiveConnection } from '../../../src/stack/tcp/connection.js';
import { defaultTcpConfig } from '../../../src/stack/tcp/config.js';

function sackConn(cfg = plainConfig({ sack: true })) {
  const c = createPassiveConnection(0, TUPLE, seg('S', 0, 0, { options: { mss: 1460, sackPermitted: true } }), cfg, testEnv(), 0);
  c.takeOutput();
  c.onSegment(10 * MS, seg('.', 1, 1));
  c.takeEvents();
  return c;
}

describe('reassembly and SACK generation (RFC 2018, RFC 2883)', () => {
  it('established: out-of-order segments are ACKed at once with the newest block first', () => {
    const c = sackConn();
    c.onSegment(20 * MS, seg('.', 1, 1, { data: 99 }));
    expect(out(c)).toEqual([]);
    c.onSegment(21 * MS, seg('.', 200, 1, { data: 100 }));
    expect(out(c)).toEqual(['. 1:1(0) ack 100 win 65436 sack 200:300']);
    c.onSegment(22 * MS, seg('.', 400, 1, { data: 100 }));
    expect(out(c)).toEqual(['. 1:1(0) ack 100 win 65436 sack 400:500 200:300']);
    c.onSegment(23 * MS, seg('.', 600, 1, { data: 100 }));
    expect(out(c)).toEqual(['. 1:1(0) ack 100 win 65436 sack 600:700 400:500 200:300']);
  });

  it('established: a segment overlapping delivered data reports a D-SACK block first', () => {
    const c = sackConn();
    c.onSegment(20 * MS, seg('.', 1, 1, { data: 99 }));
    c.onSegment(21 * MS, seg('.', 200, 1, { data: 100 }));
    c.onSegment(22 * MS, seg('.', 400, 1, { data: 100 }));
    c.onSegment(23 * MS, seg('.', 600, 1, { data: 100 }));
    c.takeOutput();
    c.onSegment(24 * MS, seg('.', 50, 1, { data: 225 }));
    expect(out(c)).toEqual(['. 1:1(0) ack 300 win 65236 sack 50:100 600:700 400:500']);
    c.onSegment(25 * MS, seg('.', 1, 1, { data: 799 }));
    expect(out(c)).toEqual(['. 1:1(0) ack 800 win 64736 sack 1:300']);
    const got = c.read(26 * MS, 1 << 30);
    expect(got).toEqual(bytes(799, 1));
  });

  it('established: a segment covering queued data reports the duplicate, then the merged block', () => {
    const c = sackConn();
    c.onSegment(20 * MS, seg('.', 1, 1, { data: 99 }));
    c.onSegment(21 * MS, seg('.', 200, 1, { data: 100 }));
    c.onSegment(22 * MS, seg('.', 400, 1, { data: 100 }));
    c.takeOutput();
    c.onSegment(23 * MS, seg('.', 200, 1, { data: 32000 }));
    expect(out(c)).toEqual(['. 1:1(0) ack 100 win 65436 sack 200:300 200:32200']);
    c.onSegment(24 * MS, seg('.', 1, 1, { data: 199 }));
    expect(out(c)).toEqual(['. 1:1(0) ack 32200 win 33336 sack 1:100']);
    expect(c.read(25 * MS, 1 << 30)).toEqual(bytes(32199, 1));
  });

  it('established: with timestamps at most 3 SACK blocks are sent', () => {
    const cfg = { ...defaultTcpConfig(), windowScale: null };
    const c = createPassiveConnection(0, TUPLE, seg('S', 0, 0, { options: { mss: 1460, sackPermitted: true, timestamp: { tsval: 1, tsecr: 0 } } }), cfg, testEnv(), 0);
    c.takeOutput();
    const ts = (v: number) => ({ timestamp: { tsval: v, tsecr: 0 } });
    c.onSegment(10 * MS, seg('.', 1, 1, { options: ts(2) }));
    for (let i = 0; i < 5; i++) c.onSegment(20 * MS + i, seg('.', 100 + 200 * i, 1, { data: 100, options: ts(3) }));
    const last = c.takeOutput().pop()!;
    expect(last.options.sack).toEqual([
      { left: 900, right: 1000 },
      { left: 700, right: 800 },
      { left: 500, right: 600 },
    ]);
  });

  it('established: FIN beyond a hole is held until the hole fills', () => {
    const c = established();
    c.onSegment(20 * MS, seg('F.', 5011, 1001, { data: 10 }));
    expect(c.state).toBe('ESTABLISHED');
    expect(out(c)).toEqual(['. 1001:1001(0) ack 5001 win 65535']);
    c.onSegment(21 * MS, seg('.', 5001, 1001, { data: 10 }));
    expect(c.state).toBe('CLOSE-WAIT');
    expect(out(c)).toEqual(['. 1001:1001(0) ack 5022 win 65515']);
    expect(c.read(22 * MS, 1 << 30)).toEqual(Uint8Array.from([...bytes(10, 5001), ...bytes(10, 5011)]));
    expect(c.readEnded).toBe(true);
  });
});

describe('ACK policy and window', () => {
  it('established: delayed ACK covers one segment, the second forces an ACK', () => {
    const c = established();
    c.onSegment(20 * MS, seg('.', 5001, 1001, { data: 1460 }));
    expect(out(c)).toEqual([]);
    expect(c.nextDeadline()).toBe(60 * MS);
    c.onSegment(25 * MS, seg('.', 6461, 1001, { data: 1460 }));
    expect(out(c)).toEqual(['. 1001:1001(0) ack 7921 win 62615']);
    expect(c.nextDeadline()).toBeNull();
  });

  it('established: delayedAckUs 0 acknowledges every segment', () => {
    const c = established(plainConfig({ delayedAckUs: 0 }));
    c.onSegment(20 * MS, seg('.', 5001, 1001, { data: 100 }));
    expect(out(c)).toEqual(['. 1001:1001(0) ack 5101 win 65435']);
  });

  it('established: reading sends a window update only when the window grows by 2 MSS', () => {
    const c = established();
    c.onSegment(20 * MS, seg('.', 5001, 1001, { data: 1000 }));
    c.onSegment(21 * MS, seg('.', 6001, 1001, { data: 1000 }));
    c.takeOutput();
    c.read(22 * MS, 1000);
    expect(out(c)).toEqual([]);
    c.onSegment(23 * MS, seg('.', 7001, 1001, { data: 2000 }));
    c.onSegment(24 * MS, seg('.', 9001, 1001, { data: 2000 }));
    c.takeOutput();
    c.read(25 * MS, 1 << 30);
    expect(out(c)).toEqual(['. 1001:1001(0) ack 11001 win 65535']);
  });

  it('established: the right edge never moves left even when the buffer fills', () => {
    const c = established(plainConfig({ rcvBuf: 10000 }));
    // The handshake advertised 10000: right edge 15001.
    c.onSegment(20 * MS, seg('.', 5001, 1001, { data: 4000 }));
    c.onSegment(21 * MS, seg('.', 9001, 1001, { data: 4000 }));
    expect(out(c)).toEqual(['. 1001:1001(0) ack 13001 win 2000']);
    c.onSegment(22 * MS, seg('.', 13001, 1001, { data: 1500 }));
    c.onSegment(23 * MS, seg('.', 14501, 1001, { data: 500 }));
    expect(out(c)).toEqual(['. 1001:1001(0) ack 15001 win 0']);
  });

  it('established: receiver SWS avoidance advertises zero instead of a tiny window', () => {
    const c = established(plainConfig({ rcvBuf: 10000 }));
    c.onSegment(20 * MS, seg('.', 5001, 1001, { data: 5000 }));
    c.onSegment(21 * MS, seg('.', 10001, 1001, { data: 5000 }));
    expect(out(c)).toEqual(['. 1001:1001(0) ack 15001 win 0']);
    // 600 bytes free: below min(RCV.BUFF/4, MSS), so the window stays shut (an old duplicate
    // provokes an ACK that shows it).
    c.read(22 * MS, 600);
    expect(out(c)).toEqual([]);
    c.onSegment(23 * MS, seg('.', 5001, 1001, { data: 10 }));
    expect(out(c)).toEqual(['. 1001:1001(0) ack 15001 win 0']);
    // 2600 free: at least RCV.BUFF/4, so it is offered, though too little growth for an update.
    c.read(24 * MS, 2000);
    expect(out(c)).toEqual([]);
    c.onSegment(25 * MS, seg('.', 5001, 1001, { data: 10 }));
    expect(out(c)).toEqual(['. 1001:1001(0) ack 15001 win 2600']);
  });

  it('established: data beyond the window is trimmed and the rest ACKed', () => {
    const c = established(plainConfig({ rcvBuf: 1000 }));
    c.onSegment(20 * MS, seg('.', 5001, 1001, { data: 1500 }));
    expect(c.readableLength).toBe(1000);
    expect(out(c)).toEqual(['. 1001:1001(0) ack 6001 win 0']);
  });
});

describe('timestamps and PAWS (RFC 7323)', () => {
  function tsConn() {
    const cfg = { ...defaultTcpConfig(), windowScale: null, sack: false };
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0, { options: { mss: 1460, timestamp: { tsval: 100, tsecr: 0 } } }), cfg, testEnv(1000), 1000);
    c.takeOutput();
    c.onSegment(10 * MS, seg('.', 5001, 1001, { options: { timestamp: { tsval: 101, tsecr: 0 } } }));
    c.takeEvents();
    return c;
  }

  it('established: TS.Recent follows in-order segments', () => {
    const c = tsConn();
    c.onSegment(20 * MS, seg('.', 5001, 1001, { data: 10, options: { timestamp: { tsval: 150, tsecr: 10 } } }));
    expect(c.v.tsRecent).toBe(150);
    c.onTimer(60 * MS);
    const [ack] = c.takeOutput();
    expect(ack!.options.timestamp).toEqual({ tsval: 60, tsecr: 150 });
  });

  it('established: a segment with an old TSval is dropped and ACKed (PAWS)', () => {
    const c = tsConn();
    c.onSegment(20 * MS, seg('.', 5001, 1001, { data: 10, options: { timestamp: { tsval: 50, tsecr: 10 } } }));
    expect(c.readableLength).toBe(0);
    expect(out(c)).toEqual(['. 1001:1001(0) ack 5001 win 65535']);
  });

  it('established: PAWS compares modulo 2^32 (a TSval that wrapped is newer)', () => {
    const c = tsConn();
    c.v.tsRecent = 0xfffffff0;
    c.onSegment(20 * MS, seg('.', 5001, 1001, { data: 10, options: { timestamp: { tsval: 5, tsecr: 10 } } }));
    expect(c.readableLength).toBe(10);
    expect(c.v.tsRecent).toBe(5);
  });

  it('established: TS.Recent older than 24 days is invalid and PAWS lets the segment in', () => {
    const c = tsConn();
    const later = 25 * 24 * 3600 * 1_000_000;
    c.onSegment(later, seg('.', 5001, 1001, { data: 10, options: { timestamp: { tsval: 50, tsecr: 10 } } }));
    expect(c.readableLength).toBe(10);
  });

  it('established: a non-RST segment without TSopt is dropped when timestamps are on', () => {
    const c = tsConn();
    c.onSegment(20 * MS, seg('.', 5001, 1001, { data: 10 }));
    expect(c.readableLength).toBe(0);
    expect(out(c)).toEqual([]);
  });

  it('established: an RST without TSopt is still processed', () => {
    const c = tsConn();
    c.onSegment(20 * MS, seg('R', 5001, 0));
    expect(c.state).toBe('CLOSED');
  });

  it('established: out-of-window segments do not update TS.Recent', () => {
    const c = tsConn();
    c.onSegment(20 * MS, seg('.', 5001 + 100_000, 1001, { data: 10, options: { timestamp: { tsval: 999, tsecr: 10 } } }));
    expect(c.v.tsRecent).toBe(101);
  });
});

describe('close with unread data (RFC 9293 3.6, RFC 2525)', () => {
  it('established: close() with unread data sends RST instead of FIN', () => {
    const c = established();
    c.onSegment(20 * MS, seg('.', 5001, 1001, { data: 10 }));
    c.close(30 * MS);
    expect(out(c)).toEqual(['R. 1001:1001(0) ack 5011 win 0']);
    expect(c.state).toBe('CLOSED');
  });

  it('fin-wait-2: data arriving after close() is answered with RST', () => {
    const c = established();
    c.close(20 * MS);
    c.takeOutput();
    c.onSegment(30 * MS, seg('.', 5001, 1002));
    expect(c.state).toBe('FIN-WAIT-2');
    c.onSegment(40 * MS, seg('.', 5001, 1002, { data: 10 }));
    expect(out(c)).toEqual(['R. 1002:1002(0) ack 5011 win 0']);
    expect(c.state).toBe('CLOSED');
  });

  it('fin-wait-2: after shutdown() (half close) data is still received', () => {
    const c = established();
    c.shutdown(20 * MS);
    c.takeOutput();
    c.onSegment(30 * MS, seg('.', 5001, 1002, { data: 10 }));
    expect(c.readableLength).toBe(10);
  });
});

describe('missing timestamps tolerated on request', () => {
  it('established: tolerateMissingTimestamps accepts a segment without TSopt', () => {
    const cfg = { ...defaultTcpConfig(), windowScale: null, sack: false, tolerateMissingTimestamps: true };
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0, { options: { mss: 1460, timestamp: { tsval: 100, tsecr: 0 } } }), cfg, testEnv(1000), 1000);
    c.onSegment(10 * MS, seg('.', 5001, 1001, { options: { timestamp: { tsval: 101, tsecr: 0 } } }));
    c.onSegment(20 * MS, seg('.', 5001, 1001, { data: 10 }));
    expect(c.readableLength).toBe(10);
  });
});
