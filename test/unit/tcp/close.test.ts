import { describe, expect, it } from 'vitest';
import { MS, active, bytes, established, out, plainConfig, seg } from './harness.js';
import { freebsdProfileConfig } from '../../../src/stack/tcp/config.js';

describe('closing states', () => {
  it('fin-wait-1: peer FIN before our FIN is acked -> CLOSING, then ACK -> TIME-WAIT (simultaneous close)', () => {
    const c = established();
    c.shutdown(20 * MS);
    expect(out(c)).toEqual(['F. 1001:1001(0) ack 5001 win 65535']);
    c.onSegment(25 * MS, seg('F.', 5001, 1001));
    expect(c.state).toBe('CLOSING');
    expect(out(c)).toEqual(['. 1002:1002(0) ack 5002 win 65535']);
    c.onSegment(30 * MS, seg('.', 5002, 1002));
    expect(c.state).toBe('TIME-WAIT');
    expect(c.nextDeadline()).toBe(30 * MS + 60_000 * MS);
  });

  it('fin-wait-1: FIN that also acknowledges our FIN goes straight to TIME-WAIT', () => {
    const c = established();
    c.shutdown(20 * MS);
    c.takeOutput();
    c.onSegment(25 * MS, seg('F.', 5001, 1002));
    expect(c.state).toBe('TIME-WAIT');
    expect(out(c)).toEqual(['. 1002:1002(0) ack 5002 win 65535']);
  });

  it('fin-wait-1: FIN goes after queued data, on the last data segment', () => {
    const c = established();
    c.write(20 * MS, bytes(100));
    c.takeOutput();
    c.write(21 * MS, bytes(50));
    c.shutdown(22 * MS);
    // Nagle would hold the 50 bytes; the FIN pushes them out (nothing more will come).
    expect(out(c)).toEqual(['FP. 1101:1151(50) ack 5001 win 65535']);
    c.onSegment(30 * MS, seg('.', 5001, 1152));
    expect(c.state).toBe('FIN-WAIT-2');
  });

  it('fin-wait-1: an unacknowledged FIN is retransmitted by the RTO', () => {
    const c = established();
    c.shutdown(20 * MS);
    c.takeOutput();
    c.onTimer(220 * MS);
    expect(out(c)).toEqual(['F. 1001:1001(0) ack 5001 win 65535']);
    expect(c.state).toBe('FIN-WAIT-1');
  });

  it('last-ack: the FIN is retransmitted until acknowledged', () => {
    const c = established();
    c.onSegment(20 * MS, seg('F.', 5001, 1001));
    c.shutdown(25 * MS);
    c.takeOutput();
    c.onTimer(225 * MS);
    expect(out(c)).toEqual(['F. 1001:1001(0) ack 5002 win 65535']);
    c.onSegment(300 * MS, seg('.', 5002, 1002));
    expect(c.state).toBe('CLOSED');
    expect(c.takeEvents().map((e) => e.type)).toEqual(['peer-fin', 'closed']);
  });

  it('time-wait: a retransmitted FIN is ACKed and restarts the 2MSL timer', () => {
    const c = established();
    c.shutdown(20 * MS);
    c.onSegment(30 * MS, seg('F.', 5001, 1002));
    c.takeOutput();
    c.onSegment(5000 * MS, seg('F.', 5001, 1002));
    expect(out(c)).toEqual(['. 1002:1002(0) ack 5002 win 65535']);
    expect(c.nextDeadline()).toBe(5000 * MS + 60_000 * MS);
  });

  it('time-wait: an exact duplicate ACK is not answered, another segment is', () => {
    const c = established();
    c.shutdown(20 * MS);
    c.onSegment(30 * MS, seg('F.', 5001, 1002));
    c.takeOutput();
    c.onSegment(40 * MS, seg('.', 5002, 1002));
    expect(out(c)).toEqual([]);
    c.onSegment(50 * MS, seg('.', 5003, 1002));
    expect(out(c)).toEqual(['. 1002:1002(0) ack 5002 win 65535']);
  });

  for (const [where, seq] of [['above', 100_000], ['at', 5002], ['below', 4000]] as const) {
    it(`time-wait: a SYN ${where} RCV.NXT gets a challenge ACK (RFC 5961 4.2) and TIME-WAIT stays`, () => {
      const c = established(plainConfig({ timeWaitReuse: false }));
      c.shutdown(20 * MS);
      c.onSegment(30 * MS, seg('F.', 5001, 1002));
      c.takeOutput();
      c.onSegment(40 * MS, seg('S', seq, 0));
      expect(c.state).toBe('TIME-WAIT');
      expect(out(c)).toEqual(['. 1002:1002(0) ack 5002 win 65535']);
    });
  }

  it('close-wait: data from the peer after its FIN is ignored', () => {
    const c = established();
    c.onSegment(20 * MS, seg('F.', 5001, 1001));
    c.takeOutput();
    c.onSegment(30 * MS, seg('.', 5002, 1001, { data: 10 }));
    expect(c.readableLength).toBe(0);
  });

  it('closing: the FreeBSD profile repeats the FIN on its ACKs while the FIN is unacknowledged', () => {
    const c = established(freebsdProfileConfig());
    c.shutdown(20 * MS);
    c.takeOutput();
    c.onSegment(25 * MS, seg('F.', 5001, 1001));
    expect(c.state).toBe('CLOSING');
    expect(c.takeOutput().map((s) => [s.seq, s.flags & 1])).toEqual([[1001, 1]]);
  });

  it('syn-sent: close deletes the TCB without sending anything', () => {
    const c = active();
    c.takeOutput();
    c.close(10 * MS);
    expect(c.state).toBe('CLOSED');
    expect(out(c)).toEqual([]);
    expect(c.nextDeadline()).toBeNull();
  });
});

describe('abort', () => {
  const states: [string, (c: ReturnType<typeof established>) => void, string[]][] = [
    ['established', () => undefined, ['R. 1001:1001(0) ack 5001 win 0']],
    ['close-wait', (c) => c.onSegment(20 * MS, seg('F.', 5001, 1001)), ['R. 1001:1001(0) ack 5002 win 0']],
    ['fin-wait-2', (c) => { c.shutdown(20 * MS); c.onSegment(25 * MS, seg('.', 5001, 1002)); }, ['R. 1002:1002(0) ack 5001 win 0']],
    ['time-wait', (c) => { c.shutdown(20 * MS); c.onSegment(25 * MS, seg('F.', 5001, 1002)); }, []],
    ['last-ack', (c) => { c.onSegment(20 * MS, seg('F.', 5001, 1001)); c.shutdown(21 * MS); }, []],
  ];
  for (const [name, setup, want] of states) {
    it(`${name}: abort ${want.length ? 'sends RST' : 'sends nothing'} and reaches CLOSED`, () => {
      const c = established();
      setup(c);
      c.takeOutput();
      c.abort(30 * MS);
      expect(out(c)).toEqual(want);
      expect(c.state).toBe('CLOSED');
      expect(c.nextDeadline()).toBeNull();
    });
  }
});

describe('close in SYN-RECEIVED', () => {
  it('syn-rcvd: shutdown defers the FIN until the handshake completes, then FIN-WAIT-1', async () => {
    const { createPassiveConnection } = await import('../../../src/stack/tcp/connection.js');
    const { TUPLE, plainConfig, testEnv } = await import('./harness.js');
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig(), testEnv(), 1000);
    c.takeOutput();
    c.shutdown(5 * MS);
    expect(c.state).toBe('SYN-RECEIVED');
    expect(out(c)).toEqual([]);
    c.onSegment(10 * MS, seg('.', 5001, 1001));
    expect(c.state).toBe('FIN-WAIT-1');
    expect(out(c)).toEqual(['F. 1001:1001(0) ack 5001 win 65535']);
  });
});

describe('FIN-WAIT-2 timeout', () => {
  it('fin-wait-2: after close() the connection gives up waiting for the peer FIN after the timeout', () => {
    const c = established();
    c.close(20 * MS);
    c.onSegment(30 * MS, seg('.', 5001, 1002));
    expect(c.state).toBe('FIN-WAIT-2');
    expect(c.nextDeadline()).toBe(30 * MS + 60_000 * MS);
    c.onTimer(30 * MS + 60_000 * MS);
    expect(c.state).toBe('CLOSED');
  });

  it('fin-wait-2: after shutdown() (still reading) there is no timeout', () => {
    const c = established();
    c.shutdown(20 * MS);
    c.onSegment(30 * MS, seg('.', 5001, 1002));
    expect(c.state).toBe('FIN-WAIT-2');
    expect(c.nextDeadline()).toBeNull();
  });
});

describe('close in SYN-SENT', () => {
  it('syn-sent: shutdown with data written keeps both; after the SYN-ACK data and FIN go out', () => {
    const c = active();
    c.takeOutput();
    expect(c.write(5 * MS, bytes(100))).toBe(100);
    c.shutdown(6 * MS);
    expect(c.state).toBe('SYN-SENT');
    c.onSegment(10 * MS, seg('S.', 500, 1001));
    expect(c.state).toBe('FIN-WAIT-1');
    expect(out(c)).toEqual(['FP. 1001:1101(100) ack 501 win 65535']);
  });
});

describe('TIME-WAIT reuse (timeWaitReuse)', () => {
  function timeWait(over: Partial<import('../../../src/stack/tcp/api.js').TcpConfig> = {}) {
    const c = established({ ...plainConfig(), timeWaitReuse: true, ...over });
    c.shutdown(20 * MS);
    c.onSegment(30 * MS, seg('F.', 5001, 1002));
    c.takeOutput();
    c.takeEvents();
    return c;
  }

  it('time-wait: a SYN above RCV.NXT ends TIME-WAIT and is left for the listener', () => {
    const c = timeWait();
    c.onSegment(40 * MS, seg('S', 900_000, 0));
    expect(c.state).toBe('CLOSED');
    expect(c.endedBySyn).toBe(true);
    expect(out(c)).toEqual([]);
    expect(c.takeEvents()).toEqual([{ type: 'closed' }]);
  });

  it('time-wait: a SYN at RCV.NXT still gets a challenge ACK', () => {
    const c = timeWait();
    c.onSegment(40 * MS, seg('S', 5002, 0));
    expect(c.state).toBe('TIME-WAIT');
    expect(c.endedBySyn).toBe(false);
    expect(out(c)).toEqual(['. 1002:1002(0) ack 5002 win 65535']);
  });

  it('time-wait: with timestamps the SYN must carry a newer TSval (RFC 6191), whatever its sequence number', async () => {
    const { createPassiveConnection } = await import('../../../src/stack/tcp/connection.js');
    const { TUPLE, testEnv } = await import('./harness.js');
    const { defaultTcpConfig } = await import('../../../src/stack/tcp/config.js');
    const cfg = { ...defaultTcpConfig(), windowScale: null, sack: false };
    const ts = (v: number) => ({ timestamp: { tsval: v, tsecr: 0 } });
    const mk = () => {
      const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0, { options: { mss: 1460, ...ts(100) } }), cfg, testEnv(), 1000);
      c.onSegment(10 * MS, seg('.', 5001, 1001, { options: ts(101) }));
      c.shutdown(20 * MS);
      c.onSegment(30 * MS, seg('F.', 5001, 1002, { options: ts(102) }));
      c.takeOutput();
      return c;
    };
    const older = mk();
    older.onSegment(40 * MS, seg('S', 900_000, 0, { options: ts(50) }));
    expect(older.state).toBe('TIME-WAIT');
    const newer = mk();
    newer.onSegment(40 * MS, seg('S', 10, 0, { options: ts(500) }));
    expect(newer.state).toBe('CLOSED');
    expect(newer.endedBySyn).toBe(true);
  });
});
