import { describe, expect, it } from 'vitest';
import { MS, TUPLE, active, describe as show, out, plainConfig, seg, testEnv } from './harness.js';
import { createCookieConnection, createPassiveConnection } from '../../../src/stack/tcp/connection.js';
import { defaultTcpConfig, freebsdProfileConfig } from '../../../src/stack/tcp/config.js';

describe('options negotiation', () => {
  it('closed: active open offers mss, wscale, sackOK and TS in the configured layout', () => {
    const c = active(defaultTcpConfig());
    const [syn] = c.takeOutput();
    expect(syn!.options).toEqual({ mss: 1460, wscale: 7, sackPermitted: true, timestamp: { tsval: 0, tsecr: 0 }, layout: 'linux' });
    expect(syn!.window).toBe(65535);
  });

  it('syn-sent: SYN-ACK without wscale disables scaling on both sides', () => {
    const c = active(defaultTcpConfig());
    c.takeOutput();
    c.onSegment(10 * MS, seg('S.', 500, 1001, { win: 1000, options: { mss: 1200, sackPermitted: true } }));
    expect(c.v.sndShift).toBe(0);
    expect(c.v.rcvShift).toBe(0);
    expect(c.v.tsEnabled).toBe(false);
    expect(c.v.sackEnabled).toBe(true);
    expect(c.sendMss).toBe(1200);
    // The window field of our ACK is unscaled and capped at 65535.
    expect(out(c)).toEqual(['. 1001:1001(0) ack 501 win 65535']);
  });

  it('syn-sent: both sides scale, the SYN-ACK window itself is not scaled, later ones are', () => {
    const c = active(defaultTcpConfig());
    c.takeOutput();
    c.onSegment(10 * MS, seg('S.', 500, 1001, { win: 1000, options: { mss: 1460, wscale: 3, timestamp: { tsval: 77, tsecr: 0 } } }));
    expect(c.v.sndWnd).toBe(1000);
    expect(c.v.sndShift).toBe(3);
    expect(c.v.rcvShift).toBe(7);
    const [ack] = c.takeOutput();
    // 256 KiB buffer >> 7 = 2048.
    expect(ack!.window).toBe(2048);
    expect(ack!.options.timestamp).toEqual({ tsval: 10, tsecr: 77 });
    c.onSegment(20 * MS, seg('.', 501, 1001, { win: 1000, options: { timestamp: { tsval: 78, tsecr: 10 } } }));
    expect(c.v.sndWnd).toBe(8000);
  });

  it('syn-sent: wscale above 14 is clamped to 14 (RFC 7323 2.3)', () => {
    const c = active(defaultTcpConfig());
    c.takeOutput();
    c.onSegment(10 * MS, seg('S.', 500, 1001, { options: { wscale: 20, timestamp: { tsval: 1, tsecr: 0 } } }));
    expect(c.v.sndShift).toBe(14);
  });

  it('listen: SYN without MSS option means a send MSS of 536', () => {
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig(), testEnv(), 1000);
    expect(c.sendMss).toBe(536);
  });

  it('listen: SYN-ACK echoes only the options the SYN carried', () => {
    const cfg = defaultTcpConfig();
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0, { options: { mss: 1400, sackPermitted: true } }), cfg, testEnv(), 1000);
    const [sa] = c.takeOutput();
    expect(sa!.options).toEqual({ mss: 1460, sackPermitted: true, layout: 'linux' });
    const c2 = createPassiveConnection(0, TUPLE, seg('S', 5000, 0, { options: { mss: 1400, wscale: 2, timestamp: { tsval: 9, tsecr: 0 } } }), cfg, testEnv(), 1000);
    const [sa2] = c2.takeOutput();
    expect(sa2!.options).toEqual({ mss: 1460, wscale: 7, timestamp: { tsval: 0, tsecr: 9 }, layout: 'linux' });
  });

  it('closed: the FreeBSD profile offers wscale 6 in the freebsd layout with window 65535', () => {
    const c = active(freebsdProfileConfig());
    const [syn] = c.takeOutput();
    expect(syn!.options.wscale).toBe(6);
    expect(syn!.options.layout).toBe('freebsd');
    expect(syn!.window).toBe(65535);
  });
});

describe('syn-sent', () => {
  it('syn-sent: ACK outside (ISS, SND.NXT] gets <SEQ=SEG.ACK><CTL=RST>', () => {
    const c = active();
    c.takeOutput();
    c.onSegment(10 * MS, seg('.', 500, 5000));
    expect(out(c)).toEqual(['R 5000:5000(0) win 0']);
    expect(c.state).toBe('SYN-SENT');
  });

  it('syn-sent: RST without ACK is ignored', () => {
    const c = active();
    c.takeOutput();
    c.onSegment(10 * MS, seg('R', 500, 0));
    expect(c.state).toBe('SYN-SENT');
    expect(out(c)).toEqual([]);
  });

  it('syn-sent: RST with an unacceptable ACK is dropped silently', () => {
    const c = active();
    c.takeOutput();
    c.onSegment(10 * MS, seg('R.', 500, 1000));
    expect(c.state).toBe('SYN-SENT');
    expect(out(c)).toEqual([]);
  });

  it('syn-sent: SYN without ACK is a simultaneous open: SYN-RECEIVED and SYN-ACK, then ESTABLISHED', () => {
    const c = active();
    c.takeOutput();
    c.onSegment(10 * MS, seg('S', 500, 0, { options: { mss: 1460 } }));
    expect(c.state).toBe('SYN-RECEIVED');
    expect(out(c)).toEqual(['S. 1000:1000(0) ack 501 win 65535']);
    // The peer's SYN-ACK (it saw our SYN too) completes the open without further segments.
    c.onSegment(20 * MS, seg('S.', 500, 1001, { options: { mss: 1460 } }));
    expect(c.state).toBe('ESTABLISHED');
    expect(out(c)).toEqual([]);
    expect(c.takeEvents()).toEqual([{ type: 'connected' }]);
  });

  it('syn-sent: simultaneous open completed by a plain ACK', () => {
    const c = active();
    c.takeOutput();
    c.onSegment(10 * MS, seg('S', 500, 0));
    c.takeOutput();
    c.onSegment(30 * MS, seg('.', 501, 1001));
    expect(c.state).toBe('ESTABLISHED');
  });

  it('syn-sent: data on a simultaneous-open SYN is delivered once the handshake completes', () => {
    const c = active();
    c.takeOutput();
    c.onSegment(10 * MS, seg('S', 500, 0, { data: 3 }));
    expect(out(c)).toEqual(['S. 1000:1000(0) ack 501 win 65535']);
    expect(c.readableLength).toBe(0);
    c.onSegment(20 * MS, seg('.', 504, 1001));
    expect(c.readableLength).toBe(3);
  });

  it('syn-sent: data on the SYN-ACK is delivered and acknowledged', () => {
    const c = active();
    c.takeOutput();
    c.onSegment(10 * MS, seg('S.', 500, 1001, { data: 5 }));
    expect(c.readableLength).toBe(5);
    expect(out(c)).toEqual(['. 1001:1001(0) ack 506 win 65530']);
  });

  it('syn-sent: ICMP port unreachable is a hard error (ECONNREFUSED)', () => {
    const c = active();
    c.onIcmpError(10 * MS, { kind: 'unreachable', code: 3 });
    expect(c.state).toBe('CLOSED');
    expect(c.takeEvents()).toEqual([{ type: 'error', code: 'ECONNREFUSED' }, { type: 'closed' }]);
  });

  it('syn-sent: ICMP host unreachable is soft, reported when the SYN finally times out', () => {
    const c = active(plainConfig({ synRetries: 1 }));
    c.onIcmpError(10 * MS, { kind: 'unreachable', code: 1 });
    expect(c.state).toBe('SYN-SENT');
    c.onTimer(1_000_000);
    c.onTimer(3_000_000);
    expect(c.takeEvents()).toEqual([{ type: 'error', code: 'EHOSTUNREACH' }, { type: 'closed' }]);
  });
});

describe('syn-received', () => {
  it('syn-rcvd: ACK not acknowledging our SYN gets <SEQ=SEG.ACK><CTL=RST>', () => {
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig(), testEnv(), 1000);
    c.takeOutput();
    c.onSegment(10 * MS, seg('.', 5001, 7777));
    expect(out(c)).toEqual(['R 7777:7777(0) win 0']);
    expect(c.state).toBe('SYN-RECEIVED');
  });

  it('syn-rcvd: SYN-ACK is retransmitted on RTO, then the connection is dropped after synRetries', () => {
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig({ synRetries: 1 }), testEnv(), 1000);
    c.takeOutput();
    c.onTimer(1_000_000);
    expect(out(c)).toEqual(['S. 1000:1000(0) ack 5001 win 65535']);
    c.onTimer(3_000_000);
    expect(c.state).toBe('CLOSED');
    // A passive half-open connection dies quietly: the application never saw it.
    expect(c.takeEvents()).toEqual([{ type: 'closed' }]);
  });

  it('syn-rcvd: RST at RCV.NXT on a passive open closes without error (back to LISTEN)', () => {
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig(), testEnv(), 1000);
    c.takeOutput();
    c.onSegment(10 * MS, seg('R', 5001, 0));
    expect(c.state).toBe('CLOSED');
    expect(c.takeEvents()).toEqual([{ type: 'closed' }]);
  });

  it('syn-rcvd: data in the SYN is delivered after the handshake', () => {
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0, { data: 10 }), plainConfig(), testEnv(), 1000);
    expect(out(c)).toEqual(['S. 1000:1000(0) ack 5001 win 65535']);
    c.onSegment(10 * MS, seg('.', 5011, 1001));
    expect(c.state).toBe('ESTABLISHED');
    expect(c.readableLength).toBe(10);
  });

  it('syn-cookie: a validated cookie ACK creates an ESTABLISHED connection with the cookie options', () => {
    const cfg = defaultTcpConfig();
    const ack = seg('.', 5001, 1001, { win: 100, data: 20, options: { timestamp: { tsval: 50, tsecr: 3 } } });
    const c = createCookieConnection(40 * MS, TUPLE, ack, { mss: 1000, wscale: 2, sackPermitted: true, timestamps: true }, cfg, testEnv());
    expect(c.state).toBe('ESTABLISHED');
    expect(c.sendMss).toBe(1000);
    expect(c.v.sndWnd).toBe(400);
    expect(c.v.sackEnabled).toBe(true);
    expect(c.v.tsRecent).toBe(50);
    expect(c.readableLength).toBe(20);
    expect(c.takeEvents()[0]).toEqual({ type: 'connected' });
    expect(c.takeOutput().map(show)).toEqual([]);
  });
});

describe('ICMP errors in SYN-SENT (FreeBSD rcv-icmp)', () => {
  const hard: [string, { kind: 'unreachable'; code: number } | { kind: 'time-exceeded' }, string][] = [
    ['protocol unreachable', { kind: 'unreachable', code: 2 }, 'ECONNREFUSED'],
    ['net prohibited', { kind: 'unreachable', code: 9 }, 'ECONNREFUSED'],
    ['host prohibited', { kind: 'unreachable', code: 10 }, 'ECONNREFUSED'],
    ['communication prohibited', { kind: 'unreachable', code: 13 }, 'ECONNREFUSED'],
    ['TTL exceeded', { kind: 'time-exceeded' }, 'EHOSTUNREACH'],
  ];
  for (const [name, err, code] of hard) {
    it(`syn-sent: ${name} quoting the ISS is a hard error (${code})`, () => {
      const c = active();
      c.onIcmpError(10 * MS, err, 1000);
      expect(c.takeEvents()).toEqual([{ type: 'error', code }, { type: 'closed' }]);
    });
  }

  it('syn-sent: an ICMP error quoting a sequence number outside [SND.UNA, SND.NXT) is ignored', () => {
    const c = active();
    c.onIcmpError(10 * MS, { kind: 'unreachable', code: 3 }, 999);
    c.onIcmpError(10 * MS, { kind: 'unreachable', code: 3 }, 1001);
    expect(c.state).toBe('SYN-SENT');
    expect(c.takeEvents()).toEqual([]);
  });

  it('established: port unreachable is only a soft error', () => {
    const c = active();
    c.takeOutput();
    c.onSegment(10 * MS, seg('S.', 500, 1001));
    c.write(15 * MS, new Uint8Array(10));
    c.onIcmpError(20 * MS, { kind: 'unreachable', code: 3 }, 1001);
    expect(c.state).toBe('ESTABLISHED');
    expect(c.v.softError).toBe('ECONNREFUSED');
  });
});

describe('option knobs', () => {
  it('closed: noOptions sends a bare SYN and negotiates nothing from the SYN-ACK', () => {
    const c = active({ ...defaultTcpConfig(), noOptions: true });
    const [syn] = c.takeOutput();
    expect(syn!.options).toEqual({});
    c.onSegment(10 * MS, seg('S.', 500, 1001, { options: { mss: 1460, wscale: 7, sackPermitted: true, timestamp: { tsval: 5, tsecr: 0 } } }));
    expect([c.v.sndShift, c.v.sackEnabled, c.v.tsEnabled]).toEqual([0, false, false]);
    expect(c.sendMss).toBe(1460);
  });

  it('syn-sent: icmpMayReset false keeps even port unreachable soft', () => {
    const c = active({ ...plainConfig(), icmpMayReset: false });
    c.onIcmpError(10 * MS, { kind: 'unreachable', code: 3 }, 1000);
    expect(c.state).toBe('SYN-SENT');
    expect(c.v.softError).toBe('ECONNREFUSED');
  });
});

describe('handshake RTT', () => {
  it('syn-sent: the SYN-ACK gives an RTT sample measured from the first SYN', () => {
    const c = active(plainConfig());
    c.takeOutput();
    c.onSegment(300 * MS, seg('S.', 500, 1001));
    expect(c.rto.srttUs).toBe(300 * MS);
  });

  it('syn-sent: after a SYN retransmission no sample is taken and the RTO becomes 3 s (RFC 6298 5.7)', () => {
    const c = active(plainConfig());
    c.takeOutput();
    c.onTimer(1_000_000);
    c.onSegment(1_100 * MS, seg('S.', 500, 1001));
    expect(c.rto.srttUs).toBeNull();
    expect(c.rto.rtoUs).toBe(3_000_000);
  });
});

describe('SYN retransmissions without options', () => {
  it('syn-sent: from the configured retransmission on the SYN carries only MSS', () => {
    const c = active({ ...defaultTcpConfig(), dropSynOptionsAfterRetries: 3 });
    const opts: string[] = [];
    let t = 0;
    for (let i = 0; i < 5; i++) {
      const segs = c.takeOutput();
      opts.push(Object.keys(segs[0]!.options).filter((k) => k !== 'layout').join(','));
      t = c.nextDeadline()!;
      c.onTimer(t);
    }
    expect(opts).toEqual(['mss,wscale,sackPermitted,timestamp', 'mss,wscale,sackPermitted,timestamp', 'mss,wscale,sackPermitted,timestamp', 'mss', 'mss']);
  });
});

describe('duplicate SYN', () => {
  it('syn-rcvd: a retransmitted SYN is answered with the SYN-ACK again', async () => {
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig(), testEnv(), 1000);
    c.takeOutput();
    c.onSegment(1000 * MS, seg('S', 5000, 0));
    expect(out(c)).toEqual(['S. 1000:1000(0) ack 5001 win 65535']);
    expect(c.state).toBe('SYN-RECEIVED');
  });

  it('syn-rcvd: a SYN with another sequence number gets a challenge ACK', () => {
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig(), testEnv(), 1000);
    c.takeOutput();
    c.onSegment(10 * MS, seg('S', 9000, 0));
    expect(out(c)).toEqual(['. 1001:1001(0) ack 5001 win 65535']);
  });
});
