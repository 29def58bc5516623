import { describe, expect, it } from 'vitest';
import { MS, TUPLE, bytes, established, out, plainConfig, seg, testEnv } from './harness.js';
import { createPassiveConnection } from '../../../src/stack/tcp/connection.js';
import { defaultTcpConfig } from '../../../src/stack/tcp/config.js';

describe('segmentation and Nagle', () => {
  it('established: Nagle holds a small segment while data is unacknowledged', () => {
    const c = established();
    c.write(20 * MS, bytes(100));
    expect(out(c)).toEqual(['P. 1001:1101(100) ack 5001 win 65535']);
    c.write(21 * MS, bytes(100));
    expect(out(c)).toEqual([]);
    c.onSegment(30 * MS, seg('.', 5001, 1101));
    expect(out(c)).toEqual(['P. 1101:1201(100) ack 5001 win 65535']);
  });

  it('established: with no-delay small segments go out at once', () => {
    const c = established();
    c.setNoDelay(true);
    c.write(20 * MS, bytes(100));
    c.write(21 * MS, bytes(100));
    expect(out(c)).toEqual(['P. 1001:1101(100) ack 5001 win 65535', 'P. 1101:1201(100) ack 5001 win 65535']);
  });

  it('established: Nagle still sends full-sized segments and holds only the tail', () => {
    const c = established();
    c.write(20 * MS, bytes(100));
    c.takeOutput();
    c.write(21 * MS, bytes(3000));
    expect(out(c)).toEqual(['. 1101:2561(1460) ack 5001 win 65535', '. 2561:4021(1460) ack 5001 win 65535']);
  });

  it('established: timestamps take 12 bytes from every segment (1448 of 1460)', () => {
    const cfg = { ...defaultTcpConfig(), windowScale: null, sack: false };
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0, { options: { mss: 1460, timestamp: { tsval: 1, tsecr: 0 } } }), cfg, testEnv(), 1000);
    c.takeOutput();
    c.onSegment(10 * MS, seg('.', 5001, 1001, { options: { timestamp: { tsval: 2, tsecr: 0 } } }));
    c.write(20 * MS, bytes(3000));
    // Nagle holds the 104-byte tail while the full segments are unacknowledged.
    expect(c.takeOutput().map((s) => s.payload.length)).toEqual([1448, 1448]);
  });

  it('established: the peer window limits what is sent', () => {
    const c = established();
    c.onSegment(15 * MS, seg('.', 5001, 1001, { win: 2000 }));
    c.write(20 * MS, bytes(5000));
    expect(out(c)).toEqual(['. 1001:2461(1460) ack 5001 win 65535']);
  });

  it('established: write returns only what fits in the send buffer', () => {
    const c = established(plainConfig({ sndBuf: 1000 }));
    expect(c.write(20 * MS, bytes(1500))).toBe(1000);
    expect(c.writableSpace).toBe(0);
    expect(c.write(21 * MS, bytes(10))).toBe(0);
  });

  it('established: ICMP frag-needed lowers the segment size and resends at the new size', () => {
    const c = established();
    c.write(20 * MS, bytes(2920));
    c.takeOutput();
    c.onIcmpError(25 * MS, { kind: 'frag-needed', mtu: 1040 });
    expect(c.sendMss).toBe(1000);
    c.onSegment(30 * MS, seg('.', 5001, 1001));
    expect(c.takeOutput().map((s) => s.payload.length)).toEqual([1000, 1000, 920]);
  });
});

describe('zero window and persist', () => {
  it('established: a zero window arms persist; probes carry one byte with backoff', () => {
    const c = established();
    c.onSegment(15 * MS, seg('.', 5001, 1001, { win: 0 }));
    c.write(20 * MS, bytes(100));
    expect(out(c)).toEqual([]);
    // RTO is 200 ms (handshake measured 10 ms).
    expect(c.nextDeadline()).toBe(220 * MS);
    c.onTimer(220 * MS);
    expect(out(c)).toEqual(['. 1001:1002(1) ack 5001 win 65535']);
    expect(c.nextDeadline()).toBe(620 * MS);
    // The probe is answered with the window still closed: no retransmission timer, no dup ACK.
    c.onSegment(300 * MS, seg('.', 5001, 1001, { win: 0 }));
    expect(out(c)).toEqual([]);
    expect(c.nextDeadline()).toBe(620 * MS);
    c.onTimer(620 * MS);
    expect(out(c)).toEqual(['. 1001:1002(1) ack 5001 win 65535']);
    expect(c.nextDeadline()).toBe(620 * MS + 800 * MS);
  });

  it('established: the window opening stops persist and sends the data', () => {
    const c = established();
    c.onSegment(15 * MS, seg('.', 5001, 1001, { win: 0 }));
    c.write(20 * MS, bytes(100));
    c.onTimer(220 * MS);
    c.takeOutput();
    c.onSegment(300 * MS, seg('.', 5001, 1002, { win: 5000 }));
    expect(out(c)).toEqual(['P. 1002:1101(99) ack 5001 win 65535']);
  });
});

describe('keepalive', () => {
  it('established: keepalive probes with SEQ = SND.NXT - 1 after idle, then ETIMEDOUT', () => {
    const c = established();
    c.setKeepAlive(true, 10_000 * MS);
    const idle = 10 * MS + 10_000 * MS;
    expect(c.nextDeadline()).toBe(idle);
    c.onTimer(idle);
    expect(out(c)).toEqual(['. 1000:1000(0) ack 5001 win 65535']);
    expect(c.nextDeadline()).toBe(idle + 75_000 * MS);
    let t = idle;
    for (let i = 1; i < 9; i++) {
      t += 75_000 * MS;
      c.onTimer(t);
      expect(out(c)).toEqual(['. 1000:1000(0) ack 5001 win 65535']);
    }
    c.onTimer(t + 75_000 * MS);
    expect(out(c)).toEqual(['R. 1001:1001(0) ack 5001 win 0']);
    expect(c.takeEvents()).toEqual([{ type: 'error', code: 'ETIMEDOUT' }, { type: 'closed' }]);
  });

  it('established: an answer to a keepalive probe restarts the idle wait', () => {
    const c = established();
    c.setKeepAlive(true, 1000 * MS);
    c.onTimer(1010 * MS);
    c.takeOutput();
    c.onSegment(1020 * MS, seg('.', 5001, 1001));
    expect(c.nextDeadline()).toBe(2020 * MS);
    expect(c.v.keepaliveProbes).toBe(0);
  });

  it('established: keepalive off means no timer', () => {
    const c = established();
    c.setKeepAlive(true);
    c.setKeepAlive(false);
    expect(c.nextDeadline()).toBeNull();
  });
});

describe('loss recovery', () => {
  function withFlight(cfg = plainConfig()) {
    const c = established(cfg);
    c.write(20 * MS, bytes(10 * 1460));
    c.takeOutput();
    return c;
  }

  it('established: three duplicate ACKs trigger a fast retransmit (RFC 5681)', () => {
    const c = withFlight();
    c.onSegment(30 * MS, seg('.', 5001, 1001 + 1460));
    c.takeOutput();
    for (let i = 0; i < 2; i++) c.onSegment(31 * MS + i, seg('.', 5001, 2461));
    expect(out(c)).toEqual([]);
    c.onSegment(33 * MS, seg('.', 5001, 2461));
    expect(out(c)[0]).toBe('. 2461:3921(1460) ack 5001 win 65535');
    expect(c.v.inRecovery).toBe(true);
  });

  it('established: a partial ACK retransmits the next hole at once (RFC 6582)', () => {
    const c = withFlight();
    for (let i = 0; i < 3; i++) c.onSegment(30 * MS + i, seg('.', 5001, 1001));
    c.takeOutput();
    c.onSegment(40 * MS, seg('.', 5001, 1001 + 2920));
    expect(out(c)[0]).toBe('. 3921:5381(1460) ack 5001 win 65535');
    expect(c.v.inRecovery).toBe(true);
    c.onSegment(50 * MS, seg('.', 5001, 1001 + 14600));
    expect(c.v.inRecovery).toBe(false);
  });

  it('established: with SACK the first hole is retransmitted on loss evidence, then the next hole', () => {
    const cfg = plainConfig({ sack: true });
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0, { options: { mss: 1460, sackPermitted: true } }), cfg, testEnv(), 1000);
    c.takeOutput();
    c.onSegment(10 * MS, seg('.', 5001, 1001));
    c.write(20 * MS, bytes(10 * 1460));
    c.takeOutput();
    const at = (k: number) => 1001 + k * 1460;
    // Segments 0 and 2 lost; the peer SACKs 1 and 3..5.
    const sacks = [[{ left: at(1), right: at(2) }], [{ left: at(3), right: at(4) }, { left: at(1), right: at(2) }], [{ left: at(3), right: at(5) }, { left: at(1), right: at(2) }], [{ left: at(3), right: at(6) }, { left: at(1), right: at(2) }]];
    for (const [i, s] of sacks.entries()) c.onSegment(30 * MS + i, seg('.', 5001, 1001, { options: { sack: s } }));
    // RFC 6675: the first hole is lost (3 segments SACKed above it); pipe then fills cwnd.
    expect(out(c)).toEqual(['. 1001:2461(1460) ack 5001 win 65535']);
    // More SACKed data shrinks pipe, and the second hole goes out.
    c.onSegment(40 * MS, seg('.', 5001, 1001, { options: { sack: [{ left: at(3), right: at(8) }, { left: at(1), right: at(2) }] } }));
    expect(out(c)).toEqual(['. 3921:5381(1460) ack 5001 win 65535']);
  });

  it('established: RTO goes back to SND.UNA, collapses cwnd and doubles the timer', () => {
    const c = withFlight();
    c.onTimer(220 * MS);
    expect(out(c)).toEqual(['. 1001:2461(1460) ack 5001 win 65535']);
    expect(c.cc.cwnd).toBe(1460);
    expect(c.nextDeadline()).toBe(620 * MS);
    // The ACK of the retransmission opens cwnd to 2 segments and resends from there.
    c.onSegment(640 * MS, seg('.', 5001, 2461));
    expect(out(c)).toEqual(['. 2461:3921(1460) ack 5001 win 65535', '. 3921:5381(1460) ack 5001 win 65535']);
  });

  it('established: Karn - an ACK after a retransmission gives no RTT sample', () => {
    const c = withFlight();
    const srtt = c.rto.srttUs;
    c.onTimer(220 * MS);
    c.onSegment(900 * MS, seg('.', 5001, 2461));
    expect(c.rto.srttUs).toBe(srtt);
  });

  it('established: maxRetransmits timeouts end the connection with ETIMEDOUT and RST', () => {
    const c = established(plainConfig({ maxRetransmits: 2 }));
    c.write(20 * MS, bytes(100));
    c.takeOutput();
    c.onTimer(220 * MS);
    c.onTimer(620 * MS);
    c.takeOutput();
    c.onTimer(1420 * MS);
    expect(out(c)).toEqual(['R. 1101:1101(0) ack 5001 win 0']);
    expect(c.takeEvents()).toEqual([{ type: 'error', code: 'ETIMEDOUT' }, { type: 'closed' }]);
  });
});

describe('options and payload share the MSS', () => {
  it('established: with out-of-order data pending, data segments shrink to carry the SACK blocks', () => {
    const cfg = plainConfig({ sack: true });
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0, { options: { mss: 1460, sackPermitted: true } }), cfg, testEnv(), 1000);
    c.takeOutput();
    c.onSegment(10 * MS, seg('.', 5001, 1001));
    c.onSegment(20 * MS, seg('.', 5101, 1001, { data: 100 }));
    c.takeOutput();
    c.write(30 * MS, bytes(3000));
    const sent = c.takeOutput();
    // One SACK block: 4 + 8 = 12 option bytes, so 1448 bytes of payload (Nagle holds the tail).
    expect(sent.map((s) => s.payload.length)).toEqual([1448, 1448]);
    for (const s of sent) expect(s.options.sack).toEqual([{ left: 5101, right: 5201 }]);
  });
});

describe('RTT measurement', () => {
  function tsEstablished() {
    const cfg = { ...defaultTcpConfig(), windowScale: null, sack: false };
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0, { options: { mss: 1460, timestamp: { tsval: 1, tsecr: 0 } } }), cfg, testEnv(), 1000);
    c.takeOutput();
    c.onSegment(10 * MS, seg('.', 5001, 1001, { options: { timestamp: { tsval: 2, tsecr: 0 } } }));
    return c;
  }

  it('established: the timed segment gives a sample in microseconds', () => {
    const c = tsEstablished();
    c.write(20 * MS, bytes(100));
    c.onSegment(20 * MS + 3500, seg('.', 5001, 1101, { options: { timestamp: { tsval: 3, tsecr: 20 } } }));
    // srtt: 10 ms from the handshake, then 7/8 * 10 + 1/8 * 3.5 ms.
    expect(c.rto.srttUs).toBe(10_000 * 7 / 8 + 3500 / 8);
  });

  it('established: after a retransmission, TSecr still gives a sample (RFC 7323 RTTM) where Karn gives none', () => {
    const c = tsEstablished();
    c.write(20 * MS, bytes(100));
    c.onTimer(220 * MS);
    const [rtx] = c.takeOutput().slice(-1);
    expect(rtx!.options.timestamp!.tsval).toBe(220);
    const before = c.rto.srttUs!;
    // The ACK echoes the retransmission's TSval: the sample is 30 ms, not 230 ms.
    c.onSegment(250 * MS, seg('.', 5001, 1101, { options: { timestamp: { tsval: 3, tsecr: 220 } } }));
    expect(c.rto.srttUs).toBe(before * 7 / 8 + 30_000 / 8);
  });
});

describe('persist gives up on a silent peer', () => {
  it('established: unanswered zero-window probes end with ETIMEDOUT; answered ones go on', () => {
    const c = established(plainConfig({ maxRetransmits: 3 }));
    c.onSegment(15 * MS, seg('.', 5001, 1001, { win: 0 }));
    c.write(20 * MS, bytes(100));
    for (let i = 0; i < 3; i++) {
      c.onTimer(c.nextDeadline()!);
      expect(c.takeOutput().length).toBe(1);
    }
    // An answer (window still zero) resets the count.
    c.onSegment(c.now + 1, seg('.', 5001, 1001, { win: 0 }));
    for (let i = 0; i < 3; i++) c.onTimer(c.nextDeadline()!);
    expect(c.state).toBe('ESTABLISHED');
    c.takeOutput();
    c.onTimer(c.nextDeadline()!);
    expect(out(c)).toEqual(['R. 1001:1001(0) ack 5001 win 0']);
    expect(c.state).toBe('CLOSED');
  });
});

describe('limited transmit (RFC 3042)', () => {
  it('established: each of the first two duplicate ACKs lets one new segment out beyond cwnd', () => {
    const c = established();
    c.write(20 * MS, bytes(14 * 1460));
    expect(c.takeOutput().length).toBe(10);
    c.onSegment(30 * MS, seg('.', 5001, 1001));
    expect(out(c)).toEqual(['. 15601:17061(1460) ack 5001 win 65535']);
    c.onSegment(31 * MS, seg('.', 5001, 1001));
    expect(out(c)).toEqual(['. 17061:18521(1460) ack 5001 win 65535']);
  });
});
