import { describe as suite, expect, it } from 'vitest';
import { MS, TUPLE, active, bytes, established, out, plainConfig, seg, testEnv } from './harness.js';
import { createPassiveConnection } from '../../../src/stack/tcp/connection.js';

suite('handshake', () => {
  it('closed: active open sends SYN and enters SYN-SENT', () => {
    const c = active();
    expect(c.state).toBe('SYN-SENT');
    expect(out(c)).toEqual(['S 1000:1000(0) win 65535']);
    expect(c.nextDeadline()).toBe(1_000_000);
  });

  it('syn-sent: SYN-ACK acknowledging the SYN establishes and ACKs', () => {
    const c = active();
    c.takeOutput();
    c.onSegment(50 * MS, seg('S.', 7000, 1001, { win: 30000, options: { mss: 1000 } }));
    expect(c.state).toBe('ESTABLISHED');
    expect(out(c)).toEqual(['. 1001:1001(0) ack 7001 win 65535']);
    expect(c.takeEvents()).toEqual([{ type: 'connected' }]);
    expect(c.nextDeadline()).toBeNull();
  });

  it('listen: SYN creates SYN-RECEIVED with a SYN-ACK; the ACK establishes', () => {
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0, { options: { mss: 1460 } }), plainConfig(), testEnv(1000), 1000);
    expect(c.state).toBe('SYN-RECEIVED');
    expect(out(c)).toEqual(['S. 1000:1000(0) ack 5001 win 65535']);
    c.onSegment(5 * MS, seg('.', 5001, 1001));
    expect(c.state).toBe('ESTABLISHED');
    expect(c.takeEvents()).toEqual([{ type: 'connected' }]);
    expect(out(c)).toEqual([]);
  });

  it('syn-sent: SYN retransmitted with exponential backoff, then ETIMEDOUT', () => {
    const c = active(plainConfig({ synRetries: 2 }));
    c.takeOutput();
    c.onTimer(1_000_000);
    expect(out(c)).toEqual(['S 1000:1000(0) win 65535']);
    expect(c.nextDeadline()).toBe(3_000_000);
    c.onTimer(3_000_000);
    expect(out(c)).toEqual(['S 1000:1000(0) win 65535']);
    expect(c.nextDeadline()).toBe(7_000_000);
    c.onTimer(7_000_000);
    expect(c.state).toBe('CLOSED');
    expect(c.takeEvents()).toEqual([{ type: 'error', code: 'ETIMEDOUT' }, { type: 'closed' }]);
  });

  it('syn-sent: RST with acceptable ACK refuses the connection', () => {
    const c = active();
    c.takeOutput();
    c.onSegment(10 * MS, seg('R.', 0, 1001));
    expect(c.state).toBe('CLOSED');
    expect(c.takeEvents()).toEqual([{ type: 'error', code: 'ECONNREFUSED' }, { type: 'closed' }]);
  });
});

suite('data transfer', () => {
  it('established: write sends a segment, ACK frees the buffer and stops the timer', () => {
    const c = established();
    expect(c.write(20 * MS, bytes(100))).toBe(100);
    expect(out(c)).toEqual(['P. 1001:1101(100) ack 5001 win 65535']);
    // The handshake measured 10 ms, so the RTO is the 200 ms floor.
    expect(c.nextDeadline()).toBe(20 * MS + 200 * MS);
    c.onSegment(30 * MS, seg('.', 5001, 1101));
    expect(c.nextDeadline()).toBeNull();
    expect(c.takeEvents()).toEqual([{ type: 'writable' }]);
  });

  it('established: large write is cut into full-sized segments within the initial window', () => {
    const c = established();
    c.write(20 * MS, bytes(20000));
    const o = out(c);
    expect(o.length).toBe(10);
    expect(o[0]).toBe('. 1001:2461(1460) ack 5001 win 65535');
    expect(o[9]).toBe('. 14141:15601(1460) ack 5001 win 65535');
  });

  it('established: in-order data is readable and ACKed on the second segment', () => {
    const c = established();
    c.onSegment(20 * MS, seg('.', 5001, 1001, { data: 1000 }));
    expect(out(c)).toEqual([]);
    expect(c.nextDeadline()).toBe(20 * MS + 40 * MS);
    c.onSegment(21 * MS, seg('.', 6001, 1001, { data: 1000 }));
    expect(out(c)).toEqual(['. 1001:1001(0) ack 7001 win 63535']);
    const got = c.read(22 * MS, 1 << 30);
    expect(got).toEqual(Uint8Array.from([...bytes(1000, 5001), ...bytes(1000, 6001)]));
  });

  it('established: delayed ACK fires after the delay', () => {
    const c = established();
    c.onSegment(20 * MS, seg('.', 5001, 1001, { data: 10 }));
    c.onTimer(60 * MS);
    expect(out(c)).toEqual(['. 1001:1001(0) ack 5011 win 65525']);
  });

  it('established: RTO retransmits the first segment and backs off', () => {
    const c = established();
    c.write(20 * MS, bytes(100));
    c.takeOutput();
    c.onTimer(219 * MS);
    expect(out(c)).toEqual([]);
    c.onTimer(220 * MS);
    expect(out(c)).toEqual(['P. 1001:1101(100) ack 5001 win 65535']);
    expect(c.nextDeadline()).toBe(220 * MS + 400 * MS);
    c.onTimer(620 * MS);
    expect(out(c)).toEqual(['P. 1001:1101(100) ack 5001 win 65535']);
    expect(c.nextDeadline()).toBe(620 * MS + 800 * MS);
    c.onSegment(1100 * MS, seg('.', 5001, 1101));
    expect(c.nextDeadline()).toBeNull();
  });
});

suite('close', () => {
  it('established: shutdown sends FIN, FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT -> CLOSED', () => {
    const c = established();
    c.shutdown(20 * MS);
    expect(c.state).toBe('FIN-WAIT-1');
    expect(out(c)).toEqual(['F. 1001:1001(0) ack 5001 win 65535']);
    c.onSegment(30 * MS, seg('.', 5001, 1002));
    expect(c.state).toBe('FIN-WAIT-2');
    c.onSegment(40 * MS, seg('F.', 5001, 1002));
    expect(c.state).toBe('TIME-WAIT');
    expect(out(c)).toEqual(['. 1002:1002(0) ack 5002 win 65535']);
    expect(c.nextDeadline()).toBe(40 * MS + 60_000_000);
    c.onTimer(40 * MS + 60_000_000);
    expect(c.state).toBe('CLOSED');
    expect(c.takeEvents().map((e) => e.type)).toEqual(['peer-fin', 'closed']);
  });

  it('established: peer FIN -> CLOSE-WAIT, close -> LAST-ACK, ACK -> CLOSED', () => {
    const c = established();
    c.onSegment(20 * MS, seg('F.', 5001, 1001));
    expect(c.state).toBe('CLOSE-WAIT');
    expect(out(c)).toEqual(['. 1001:1001(0) ack 5002 win 65535']);
    expect(c.readEnded).toBe(true);
    c.close(30 * MS);
    expect(c.state).toBe('LAST-ACK');
    expect(out(c)).toEqual(['F. 1001:1001(0) ack 5002 win 65535']);
    c.onSegment(40 * MS, seg('.', 5002, 1002));
    expect(c.state).toBe('CLOSED');
  });

  it('established: RST at RCV.NXT resets the connection', () => {
    const c = established();
    c.onSegment(20 * MS, seg('R', 5001, 0));
    expect(c.state).toBe('CLOSED');
    expect(c.takeEvents()).toEqual([{ type: 'error', code: 'ECONNRESET' }, { type: 'closed' }]);
  });

  it('established: abort sends RST and closes', () => {
    const c = established();
    c.abort(20 * MS);
    expect(out(c)).toEqual(['R. 1001:1001(0) ack 5001 win 0']);
    expect(c.state).toBe('CLOSED');
  });

  it('established: abort after a retransmission timeout resets at SND.MAX, not at the rewound SND.NXT', () => {
    // The peer may hold everything up to SND.MAX; a RST below its RCV.NXT would be dropped
    // silently (RFC 5961 3.2) and leave it waiting.
    const c = established();
    c.setNoDelay(true);
    c.write(20 * MS, bytes(3000));
    c.takeOutput();
    c.onTimer(c.nextDeadline()!);
    const resent = out(c);
    expect(resent[0]).toMatch(/^\. 1001:/);
    expect(c.v.sndNxt).not.toBe(c.v.sndMax);
    c.abort(c.nextDeadline()! - 1);
    expect(out(c)).toEqual(['R. 4001:4001(0) ack 5001 win 0']);
  });
});

suite('sequence wrap-around', () => {
  it('established: ISS and IRS near 2^32, data and ACKs cross the wrap', () => {
    const iss = 0xfffffff0;
    const irs = 0xffffffe0;
    const c = createPassiveConnection(0, TUPLE, seg('S', irs, 0, { options: { mss: 1460 } }), plainConfig(), testEnv(), iss);
    expect(out(c)).toEqual([`S. ${iss}:${iss}(0) ack ${irs + 1} win 65535`]);
    c.onSegment(10 * MS, seg('.', irs + 1, iss + 1));
    expect(c.state).toBe('ESTABLISHED');
    c.setNoDelay(true);
    c.write(20 * MS, bytes(100));
    expect(out(c)).toEqual([`P. ${iss + 1}:${(iss + 101) >>> 0}(100) ack ${irs + 1} win 65535`]);
    // The peer's 100 bytes go from 0xffffffe1 across 0 to 0x45.
    c.onSegment(30 * MS, seg('.', irs + 1, (iss + 101) >>> 0, { data: 100 }));
    c.onSegment(31 * MS, seg('.', (irs + 101) >>> 0, (iss + 101) >>> 0, { data: 100 }));
    expect(out(c)).toEqual([`. ${(iss + 101) >>> 0}:${(iss + 101) >>> 0}(0) ack ${(irs + 201) >>> 0} win 65335`]);
    expect(c.nextDeadline()).toBeNull();
    expect(c.readableLength).toBe(200);
  });

  it('established: an out-of-order segment just after the wrap is held and delivered', () => {
    const irs = 0xffffff00;
    const c = established(plainConfig(), testEnv(), irs, 1000);
    c.onSegment(20 * MS, seg('.', 0x10, 1001, { data: 16 }));
    expect(c.readableLength).toBe(0);
    c.onSegment(21 * MS, seg('.', irs + 1, 1001, { data: 0xff + 0x10 }));
    expect(c.readableLength).toBe(0xff + 0x20);
    expect(c.v.rcvNxt).toBe(0x20);
  });
});
