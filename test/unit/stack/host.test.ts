import { describe, expect, it, vi } from 'vitest';
import { Connection } from '../../../src/stack/tcp/connection.js';
import type { HostEvent } from '../../../src/stack/host-api.js';
import type { TcpConnection } from '../../../src/stack/tcp/api.js';
import { emitIcmpError, emitIcmpIpv4, parseIcmp, ICMP_UNREACH_PORT } from '../../../src/stack/wire/icmp.js';
import { fragmentIpv4, parseIpv4 } from '../../../src/stack/wire/ipv4.js';
import {
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  type TcpSegment,
} from '../../../src/stack/wire/types.js';
import { emitTcp } from '../../../src/stack/wire/tcp.js';
import { defaultTcpConfig } from '../../../src/stack/tcp/config.js';
import { createTcpEnv } from '../../../src/stack/env.js';
import { seqGt } from '../../../src/stack/wire/seq.js';
import { LOCAL, OTHER, PEER, seededRandom, tcpOut, tcpPacket, testHost, type OutSegment } from './helpers.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** SYN, SYN-ACK, ACK against a host listening on port 80; returns the SYN-ACK. */
function handshake(host: ReturnType<typeof testHost>, srcPort: number, now = 0, seq = 1000): OutSegment {
  host.onPacket(now, tcpPacket({ srcPort, seq, flags: TCP_SYN, options: { mss: 1460 } }));
  const [synAck] = tcpOut(host.takePackets(now));
  if (synAck === undefined) throw new Error('no SYN-ACK');
  host.onPacket(now, tcpPacket({ srcPort, seq: seq + 1, ack: synAck.seq + 1, flags: TCP_ACK }));
  return synAck;
}

function acceptAll(host: ReturnType<typeof testHost>, events: HostEvent[]): TcpConnection[] {
  const out: TcpConnection[] = [];
  for (const ev of events) {
    if (ev.type !== 'accept-ready') continue;
    for (let c = ev.listener.accept(); c !== undefined; c = ev.listener.accept()) out.push(c);
  }
  return out;
}

describe('host, no connection and no listener (RFC 9293 3.10.7.1, CLOSED)', () => {
  it('answers a SYN with <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>', () => {
    const host = testHost();
    host.onPacket(0, tcpPacket({ seq: 1000, flags: TCP_SYN, payload: enc.encode('hello') }));
    const out = tcpOut(host.takePackets(0));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ src: LOCAL, dst: PEER, srcPort: 80, dstPort: 40000, seq: 0, ack: 1006, flags: TCP_RST | TCP_ACK });
    expect(host.counters['tcp.no-connection-rst-sent']).toBe(1);
  });

  it('answers an ACK with <SEQ=SEG.ACK><CTL=RST>', () => {
    const host = testHost();
    host.onPacket(0, tcpPacket({ seq: 5, ack: 777, flags: TCP_ACK | TCP_PSH, payload: enc.encode('x') }));
    const out = tcpOut(host.takePackets(0));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ seq: 777, flags: TCP_RST });
  });

  it('drops a RST without answering', () => {
    const host = testHost();
    host.onPacket(0, tcpPacket({ seq: 5, flags: TCP_RST }));
    expect(host.takePackets(0)).toHaveLength(0);
    expect(host.counters['tcp.no-connection-rst-dropped']).toBe(1);
  });
});

describe('host, LISTEN (RFC 9293 3.10.7.2)', () => {
  it('a SYN gets a SYN-ACK and the ACK completing the handshake makes the connection acceptable', () => {
    const host = testHost();
    const l = host.listen(0, 80, 8);
    const synAck = handshake(host, 40000);
    expect(synAck.flags).toBe(TCP_SYN | TCP_ACK);
    expect(synAck.ack).toBe(1001);
    const events = host.takeEvents();
    expect(events).toContainEqual({ type: 'accept-ready', listener: l });
    const c = l.accept();
    expect(c?.state).toBe('ESTABLISHED');
    expect(c?.tuple).toEqual({ localAddr: LOCAL, localPort: 80, remoteAddr: PEER, remotePort: 40000 });
    expect(l.accept()).toBeUndefined();
  });

  it('a stray ACK gets <SEQ=SEG.ACK><CTL=RST> and creates nothing', () => {
    const host = testHost();
    host.listen(0, 80, 8);
    host.onPacket(0, tcpPacket({ seq: 1, ack: 4242, flags: TCP_ACK }));
    const out = tcpOut(host.takePackets(0));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ seq: 4242, flags: TCP_RST });
    expect(host.connections.size).toBe(0);
  });

  it('a RST is ignored', () => {
    const host = testHost();
    host.listen(0, 80, 8);
    host.onPacket(0, tcpPacket({ seq: 1, flags: TCP_RST }));
    expect(host.takePackets(0)).toHaveLength(0);
    expect(host.counters['tcp.listen-rst-dropped']).toBe(1);
  });

  it('a SYN-ACK is dropped without a reset, as FreeBSD does', () => {
    const host = testHost();
    host.listen(0, 80, 8);
    host.onPacket(0, tcpPacket({ seq: 17, ack: 34, flags: TCP_SYN | TCP_ACK }));
    expect(host.takePackets(0)).toHaveLength(0);
    expect(host.counters['tcp.listen-synack-dropped']).toBe(1);
  });

  it('a SYN-FIN is dropped when dropSynFin is set, and answered with a SYN-ACK when not', () => {
    const dropping = testHost({ tcp: { ...defaultTcpConfig(), dropSynFin: true } });
    dropping.listen(0, 80, 8);
    dropping.onPacket(0, tcpPacket({ seq: 17, flags: TCP_SYN | TCP_FIN }));
    expect(dropping.takePackets(0)).toHaveLength(0);
    expect(dropping.counters['tcp.listen-synfin-dropped']).toBe(1);
    const rfc = testHost();
    rfc.listen(0, 80, 8);
    rfc.onPacket(0, tcpPacket({ seq: 17, flags: TCP_SYN | TCP_FIN }));
    expect(tcpOut(rfc.takePackets(0))[0]?.flags).toBe(TCP_SYN | TCP_ACK);
  });

  it('closing the listener resets established connections nobody accepted and forgets half-open ones silently', () => {
    const host = testHost();
    const l = host.listen(0, 80, 8);
    handshake(host, 40001);
    host.onPacket(0, tcpPacket({ srcPort: 40002, seq: 500, flags: TCP_SYN }));
    host.takePackets(0);
    host.takeEvents();
    expect(host.connections.size).toBe(2);
    l.close(1);
    const out = tcpOut(host.takePackets(1));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ dstPort: 40001 });
    expect(out[0]!.flags & TCP_RST).toBe(TCP_RST);
    expect(host.connections.size).toBe(0);
    expect(host.nextDeadline()).toBeNull();
  });

  it('a second listen on the same port fails with EADDRINUSE', () => {
    const host = testHost();
    host.listen(0, 80, 8);
    expect(() => host.listen(LOCAL, 80, 8)).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
  });

  it('with a full accept queue, further SYNs are dropped until the application accepts', () => {
    const host = testHost();
    const l = host.listen(0, 80, 1);
    handshake(host, 40001);
    host.takePackets(0);
    host.takeEvents();
    host.onPacket(0, tcpPacket({ srcPort: 40002, seq: 50, flags: TCP_SYN }));
    expect(host.takePackets(0)).toHaveLength(0);
    expect(host.counters['tcp.listen-overflow']).toBe(1);
    expect(l.accept()).toBeDefined();
    host.onPacket(0, tcpPacket({ srcPort: 40002, seq: 50, flags: TCP_SYN }));
    expect(tcpOut(host.takePackets(0))[0]?.flags).toBe(TCP_SYN | TCP_ACK);
  });
});

describe('host, demultiplexing', () => {
  it('ESTABLISHED: data from two peers reaches each its own connection', () => {
    const host = testHost();
    host.listen(0, 80, 8);
    const a = handshake(host, 40001, 0, 100);
    const b = handshake(host, 40002, 0, 9000);
    host.onPacket(0, tcpPacket({ srcPort: 40002, seq: 9001, ack: b.seq + 1, flags: TCP_ACK | TCP_PSH, payload: enc.encode('from b') }));
    host.onPacket(0, tcpPacket({ srcPort: 40001, seq: 101, ack: a.seq + 1, flags: TCP_ACK | TCP_PSH, payload: enc.encode('from a') }));
    const conns = acceptAll(host, host.takeEvents());
    expect(conns).toHaveLength(2);
    const byPort = new Map(conns.map((c) => [c.tuple.remotePort, c]));
    expect(dec.decode(byPort.get(40001)!.read(0)!)).toBe('from a');
    expect(dec.decode(byPort.get(40002)!.read(0)!)).toBe('from b');
    expect(host.connections.size).toBe(2);
  });

  it('a user write on a connection is emitted by the next takePackets', () => {
    const host = testHost();
    const l = host.listen(0, 80, 8);
    const synAck = handshake(host, 40000);
    host.takePackets(0);
    host.takeEvents();
    const c = l.accept()!;
    expect(c.write(10, enc.encode('reply'))).toBe(5);
    const out = tcpOut(host.takePackets(10));
    expect(out).toHaveLength(1);
    expect(out[0]!.seq).toBe(synAck.seq + 1);
    expect(dec.decode(out[0]!.payload)).toBe('reply');
  });

  it('a connection reset by its peer leaves the table and reports the error', () => {
    const host = testHost();
    const l = host.listen(0, 80, 8);
    handshake(host, 40000);
    host.takeEvents();
    const c = l.accept()!;
    host.onPacket(5, tcpPacket({ seq: 1001, flags: TCP_RST }));
    const evs = host.takeEvents();
    expect(evs).toContainEqual({ type: 'connection', conn: c, event: { type: 'error', code: 'ECONNRESET' } });
    expect(evs).toContainEqual({ type: 'connection', conn: c, event: { type: 'closed' } });
    expect(host.connections.size).toBe(0);
    // The tuple is free again: a new segment there meets the listener, not the old connection.
    host.onPacket(6, tcpPacket({ seq: 1, ack: 99, flags: TCP_ACK }));
    expect(tcpOut(host.takePackets(6))[0]).toMatchObject({ seq: 99, flags: TCP_RST });
  });

  it('TIME-WAIT, SYN of a new incarnation: the old connection closes and the listener answers the SYN', () => {
    const host = testHost();
    const l = host.listen(0, 80, 8);
    const synAck = handshake(host, 40000);
    host.takeEvents();
    const old = l.accept()!;
    old.close(1);
    const [fin] = tcpOut(host.takePackets(1));
    expect(fin!.flags & TCP_FIN).toBe(TCP_FIN);
    host.onPacket(2, tcpPacket({ seq: 1001, ack: (synAck.seq + 2) >>> 0, flags: TCP_FIN | TCP_ACK }));
    host.takePackets(2);
    expect(old.state).toBe('TIME-WAIT');
    host.takeEvents();
    host.onPacket(3, tcpPacket({ seq: 90000, flags: TCP_SYN }));
    const out = tcpOut(host.takePackets(3));
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ flags: TCP_SYN | TCP_ACK, ack: 90001 });
    expect(host.takeEvents()).toContainEqual({ type: 'connection', conn: old, event: { type: 'closed' } });
    expect(host.counters['tcp.time-wait-reused']).toBe(1);
    expect(host.connections.size).toBe(1);
    expect([...host.connections.values()][0]!.state).toBe('SYN-RECEIVED');
  });

  it('connect with port 0 picks distinct ephemeral ports from 32768-60999', () => {
    const host = testHost();
    const ports = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const c = host.connect(0, { localAddr: 0, localPort: 0, remoteAddr: PEER, remotePort: 80 });
      expect(c.tuple.localAddr).toBe(LOCAL);
      expect(c.tuple.localPort).toBeGreaterThanOrEqual(32768);
      expect(c.tuple.localPort).toBeLessThanOrEqual(60999);
      ports.add(c.tuple.localPort);
    }
    expect(ports.size).toBe(50);
    expect(tcpOut(host.takePackets(0)).every((s) => s.flags === TCP_SYN)).toBe(true);
  });

  it('a fragmented SYN carrying data is reassembled before demultiplexing', () => {
    const host = testHost();
    host.listen(0, 80, 8);
    const seg: TcpSegment = { srcPort: 40000, dstPort: 80, seq: 10, ack: 0, flags: TCP_SYN, window: 1000, urgent: 0, options: {}, payload: new Uint8Array(100) };
    const frags = fragmentIpv4(
      { src: PEER, dst: LOCAL, protocol: IPPROTO_TCP, ttl: 64, tos: 0, id: 77, df: false },
      emitTcp(seg, PEER, LOCAL),
      60,
    );
    expect(frags.length).toBeGreaterThan(1);
    for (const f of frags.reverse()) host.onPacket(0, f);
    const out = tcpOut(host.takePackets(0));
    expect(out[0]).toMatchObject({ flags: TCP_SYN | TCP_ACK, ack: 11 });
  });
});

describe('host, SYN cookies', () => {
  const synOptions = { mss: 1460, wscale: 7, sackPermitted: true, timestamp: { tsval: 5000, tsecr: 0 } };

  it('half-open queue full: the SYN gets a cookie SYN-ACK, no state, and the returning ACK establishes the connection', () => {
    const host = testHost({ synBacklog: 0 });
    const l = host.listen(0, 80, 8);
    host.onPacket(1000, tcpPacket({ seq: 7000, flags: TCP_SYN, options: synOptions }));
    const [synAck] = tcpOut(host.takePackets(1000));
    expect(synAck).toMatchObject({ flags: TCP_SYN | TCP_ACK, ack: 7001 });
    expect(synAck!.options.wscale).toBeDefined();
    expect(synAck!.options.sackPermitted).toBe(true);
    expect(synAck!.options.timestamp?.tsecr).toBe(5000);
    expect(host.connections.size).toBe(0);
    expect(host.counters['tcp.syncookie-sent']).toBe(1);

    const ts = { tsval: 5001, tsecr: synAck!.options.timestamp!.tsval };
    host.onPacket(2000, tcpPacket({ seq: 7001, ack: synAck!.seq + 1, flags: TCP_ACK | TCP_PSH, options: { timestamp: ts }, payload: enc.encode('GET /') }));
    expect(host.counters['tcp.syncookie-accepted']).toBe(1);
    acceptAll(host, host.takeEvents());
    const c = host.connections.values().next().value as TcpConnection;
    expect(c.state).toBe('ESTABLISHED');
    expect(dec.decode(c.read(2000)!)).toBe('GET /');
    // The data is acknowledged at once or by the delayed ACK: either way its ACK names 7006.
    host.onTimer(2000 + 500_000);
    const acks = tcpOut(host.takePackets(2000 + 500_000));
    expect(acks.some((s) => s.ack === 7006 && (s.flags & TCP_ACK) !== 0)).toBe(true);
    expect(l.pendingCount).toBe(0);
  });

  it('half-open queue full: an ACK with a forged cookie is reset', () => {
    const host = testHost({ synBacklog: 0 });
    host.listen(0, 80, 8);
    host.onPacket(0, tcpPacket({ seq: 7000, flags: TCP_SYN, options: synOptions }));
    const [synAck] = tcpOut(host.takePackets(0));
    host.onPacket(10, tcpPacket({ seq: 7001, ack: (synAck!.seq + 12345) >>> 0, flags: TCP_ACK }));
    const out = tcpOut(host.takePackets(10));
    expect(out[0]).toMatchObject({ flags: TCP_RST, seq: (synAck!.seq + 12345) >>> 0 });
    expect(host.connections.size).toBe(0);
    expect(host.counters['tcp.syncookie-invalid']).toBe(1);
  });

  it('accept queue of 2, five cookie ACKs in one batch (no settle between): two are queued, the rest dropped', () => {
    const host = testHost({ synBacklog: 0 });
    const l = host.listen(0, 80, 2);
    const synAcks: OutSegment[] = [];
    for (let i = 0; i < 5; i++) {
      host.onPacket(0, tcpPacket({ srcPort: 41000 + i, seq: 100, flags: TCP_SYN }));
      synAcks.push(tcpOut(host.takePackets(0))[0]!);
    }
    for (let i = 0; i < 5; i++) host.onPacket(1, tcpPacket({ srcPort: 41000 + i, seq: 101, ack: synAcks[i]!.seq + 1, flags: TCP_ACK }));
    expect(l.pendingCount).toBe(2);
    expect(host.connections.size).toBe(2);
    expect(host.counters['tcp.accept-queue-full']).toBe(3);
  });

  it('accept queue of 2, five handshake ACKs in one batch: two are queued, three stay half-open', () => {
    const host = testHost();
    const l = host.listen(0, 80, 2);
    const synAcks: OutSegment[] = [];
    for (let i = 0; i < 5; i++) host.onPacket(0, tcpPacket({ srcPort: 42000 + i, seq: 100, flags: TCP_SYN }));
    synAcks.push(...tcpOut(host.takePackets(0)));
    for (const sa of synAcks) host.onPacket(1, tcpPacket({ srcPort: sa.dstPort, seq: 101, ack: sa.seq + 1, flags: TCP_ACK }));
    expect(l.pendingCount).toBe(2);
    expect([...host.connections.values()].filter((c) => c.state === 'SYN-RECEIVED')).toHaveLength(3);
  });

  describe('shared by two hosts (a replicated pair: the node taking over gets the cookies the dead one sent)', () => {
    const key = new Uint8Array(16).fill(9);
    // Driver clocks count from each process's start: B started 3,600 s after A. The offsets turn
    // both into the same wall-clock time (1.8e15 us), as ReplicatedNode.sharedStackOptions does.
    const WALL_AT_A_ZERO = 1_800_000_000_000_000;
    const B_STARTED_LATER = 3_600_000_000;
    const hostWith = (offsetUs: number, cookieKey: Uint8Array) =>
      testHost({
        synBacklog: 0,
        synCookieKey: cookieKey,
        synCookieClockOffsetUs: offsetUs,
        env: createTcpEnv({ isnKey: new Uint8Array(16), random: seededRandom(3), tsOffset: (77 + Math.floor(offsetUs / 1000)) >>> 0 }),
      });
    const a = () => hostWith(WALL_AT_A_ZERO, key);
    const b = (k = key) => hostWith(WALL_AT_A_ZERO + B_STARTED_LATER, k);
    const tA = 5_000_000_000;
    const tB = tA - B_STARTED_LATER + 400_000; // 400 ms later, on B's clock

    function cookieFromA(): OutSegment {
      const host = a();
      host.listen(0, 80, 8);
      host.onPacket(tA, tcpPacket({ seq: 7000, flags: TCP_SYN, options: synOptions }));
      const [synAck] = tcpOut(host.takePackets(tA));
      expect(host.counters['tcp.syncookie-sent']).toBe(1);
      return synAck!;
    }
    const ackOf = (synAck: OutSegment) =>
      tcpPacket({ seq: 7001, ack: synAck.seq + 1, flags: TCP_ACK | TCP_PSH, options: { timestamp: { tsval: 5001, tsecr: synAck.options.timestamp!.tsval } }, payload: enc.encode('ping') });

    it('a cookie issued by host A with key K is accepted by host B with key K, its TSvals continuing above the SYN-ACK one', () => {
      const synAck = cookieFromA();
      const host = b();
      host.listen(0, 80, 8);
      host.honourSynCookies!(tB);
      host.onPacket(tB, ackOf(synAck));
      expect(host.counters['tcp.syncookie-accepted']).toBe(1);
      const [c] = acceptAll(host, host.takeEvents());
      expect(c!.state).toBe('ESTABLISHED');
      expect(dec.decode(c!.read(tB)!)).toBe('ping');
      c!.write(tB, enc.encode('pong'));
      const [seg] = tcpOut(host.takePackets(tB)).filter((s) => s.payload.length > 0);
      expect(seg).toMatchObject({ seq: synAck.seq + 1, ack: 7005 });
      // RFC 7323 5: the client drops a segment whose TSval is below the SYN-ACK's (PAWS).
      expect(seqGt(seg!.options.timestamp!.tsval, synAck.options.timestamp!.tsval)).toBe(true);
    });

    it('host B resets the cookie ACK when it was not told to honour cookies (it never sent one)', () => {
      const synAck = cookieFromA();
      const host = b();
      host.listen(0, 80, 8);
      host.onPacket(tB, ackOf(synAck));
      expect(tcpOut(host.takePackets(tB))[0]).toMatchObject({ flags: TCP_RST });
      expect(host.connections.size).toBe(0);
    });

    it('host B with another key resets it, and honours cookies only for their validity', () => {
      const synAck = cookieFromA();
      const other = b(new Uint8Array(16).fill(1));
      other.listen(0, 80, 8);
      other.honourSynCookies!(tB);
      other.onPacket(tB, ackOf(synAck));
      expect(other.counters['tcp.syncookie-invalid']).toBe(1);
      expect(tcpOut(other.takePackets(tB))[0]).toMatchObject({ flags: TCP_RST });

      const late = b();
      late.listen(0, 80, 8);
      late.honourSynCookies!(tB - 200_000_000);
      late.onPacket(tB, ackOf(synAck));
      expect(late.counters['tcp.syncookie-accepted']).toBeUndefined();
      expect(tcpOut(late.takePackets(tB))[0]).toMatchObject({ flags: TCP_RST });
    });
  });

  it('cookies start only once the half-open queue holds synBacklog connections', () => {
    const host = testHost({ synBacklog: 2 });
    host.listen(0, 80, 8);
    for (let port = 40001; port <= 40003; port++) host.onPacket(0, tcpPacket({ srcPort: port, flags: TCP_SYN }));
    expect(tcpOut(host.takePackets(0))).toHaveLength(3);
    expect(host.connections.size).toBe(2);
    expect(host.counters['tcp.syncookie-sent']).toBe(1);
  });
});

describe('host, timers', () => {
  it('SYN-RECEIVED: nextDeadline is the SYN-ACK retransmission, and onTimer then resends it', () => {
    const host = testHost();
    host.listen(0, 80, 8);
    host.onPacket(0, tcpPacket({ seq: 1, flags: TCP_SYN }));
    const [first] = tcpOut(host.takePackets(0));
    const due = host.nextDeadline();
    expect(due).not.toBeNull();
    expect(due!).toBeGreaterThan(0);
    host.onTimer(due! - 1);
    expect(host.takePackets(due! - 1)).toHaveLength(0);
    host.onTimer(due!);
    const [again] = tcpOut(host.takePackets(due!));
    expect(again).toMatchObject({ flags: TCP_SYN | TCP_ACK, seq: first!.seq });
    expect(host.nextDeadline()!).toBeGreaterThan(due!);
  });

  it('nextDeadline is the earliest over many connections', () => {
    const host = testHost({ synBacklog: 1000 });
    host.listen(0, 80, 8);
    // SYNs at descending times: the earliest deadline belongs to the last-created connection.
    for (let i = 0; i < 200; i++) host.onPacket(1_000_000 - i * 1000, tcpPacket({ srcPort: 20000 + i, flags: TCP_SYN }));
    host.takePackets(1_000_000);
    const due = host.nextDeadline()!;
    host.onTimer(due);
    const resent = tcpOut(host.takePackets(due));
    expect(resent).toHaveLength(1);
    expect(resent[0]!.dstPort).toBe(20199);
  });
});

describe('host, work per call', () => {
  it('thousands of idle connections: nextDeadline, takePackets and an early onTimer touch none of them', () => {
    const host = testHost({ synBacklog: 5000 });
    host.listen(0, 80, 8);
    for (let i = 0; i < 3000; i++) host.onPacket(0, tcpPacket({ srcPort: 10000 + i, flags: TCP_SYN }));
    host.takePackets(0);
    const due = host.nextDeadline()!;
    const deadline = vi.spyOn(Connection.prototype, 'nextDeadline');
    const output = vi.spyOn(Connection.prototype, 'takeOutput');
    const timer = vi.spyOn(Connection.prototype, 'onTimer');
    try {
      for (let i = 0; i < 10; i++) {
        expect(host.nextDeadline()).toBe(due);
        host.onTimer(due - 1);
        expect(host.takePackets(due - 1)).toHaveLength(0);
      }
      expect(deadline).not.toHaveBeenCalled();
      expect(output).not.toHaveBeenCalled();
      expect(timer).not.toHaveBeenCalled();
      // One segment touches one connection: one look at its output and its deadline.
      host.onPacket(1, tcpPacket({ srcPort: 10007, seq: 1001, flags: TCP_RST }));
      host.takePackets(1);
      expect(output).toHaveBeenCalledTimes(1);
      expect(host.connections.size).toBe(2999);
    } finally {
      vi.restoreAllMocks();
    }
  });
});

describe('host, ICMP', () => {
  it('an echo request to our address gets an echo reply with the same identifier, sequence and data', () => {
    const host = testHost();
    const data = enc.encode('ping payload');
    host.onPacket(
      0,
      emitIcmpIpv4(
        { src: PEER, dst: LOCAL, protocol: IPPROTO_ICMP, ttl: 64, tos: 0, id: 3, df: false },
        { kind: 'echo-request', id: 0x1234, sequence: 7, data },
      ),
    );
    const out = host.takePackets(0);
    expect(out).toHaveLength(1);
    const ip = parseIpv4(out[0]!);
    if ('error' in ip) throw new Error(ip.error);
    expect(ip.header).toMatchObject({ src: LOCAL, dst: PEER, protocol: IPPROTO_ICMP });
    const msg = parseIcmp(ip.payload, true);
    expect(msg).toMatchObject({ kind: 'echo-reply', id: 0x1234, sequence: 7 });
    expect(dec.decode((msg as { data: Uint8Array }).data)).toBe('ping payload');
  });

  it('a fragmented echo request larger than the MTU gets a fragmented reply carrying all its data', () => {
    const host = testHost({ mtu: 576 });
    const data = new Uint8Array(3000).map((_, i) => i & 0xff);
    const whole = emitIcmpIpv4(
      { src: PEER, dst: LOCAL, protocol: IPPROTO_ICMP, ttl: 64, tos: 0, id: 5, df: false },
      { kind: 'echo-request', id: 9, sequence: 1, data },
    );
    const body = whole.subarray(20);
    for (const f of fragmentIpv4({ src: PEER, dst: LOCAL, protocol: IPPROTO_ICMP, ttl: 64, tos: 0, id: 5, df: false }, body, 576)) host.onPacket(0, f);
    const out = host.takePackets(0);
    expect(out.length).toBeGreaterThan(1);
    expect(out.every((p) => p.length <= 576)).toBe(true);
    // Put the reply back together with a second host's reassembler path: feed it to a host that
    // owns PEER and check what its ICMP layer sees.
    const peer = testHost({ addresses: [PEER] });
    for (const p of out) peer.onPacket(0, p);
    expect(peer.counters['frag.reassembled']).toBe(1);
    expect(peer.counters['icmp.echo-reply-ignored']).toBe(1);
  });

  it('an echo request to another address is dropped and counted', () => {
    const host = testHost();
    host.onPacket(
      0,
      emitIcmpIpv4(
        { src: PEER, dst: OTHER, protocol: IPPROTO_ICMP, ttl: 64, tos: 0, id: 3, df: false },
        { kind: 'echo-request', id: 1, sequence: 1, data: new Uint8Array(4) },
      ),
    );
    expect(host.takePackets(0)).toHaveLength(0);
    expect(host.counters['ip.not-ours']).toBe(1);
  });

  it('SYN-SENT: a port unreachable quoting our SYN fails the connection with ECONNREFUSED', () => {
    const host = testHost();
    const c = host.connect(0, { localAddr: 0, localPort: 0, remoteAddr: PEER, remotePort: 9 });
    const [syn] = host.takePackets(0);
    host.onPacket(
      100,
      emitIcmpError({ src: PEER, dst: LOCAL, protocol: IPPROTO_ICMP, ttl: 64, tos: 0, id: 9, df: false }, { kind: 'dest-unreachable', code: ICMP_UNREACH_PORT }, syn!),
    );
    const evs = host.takeEvents();
    expect(evs).toContainEqual({ type: 'connection', conn: c, event: { type: 'error', code: 'ECONNREFUSED' } });
    expect(host.connections.size).toBe(0);
    expect(host.counters['icmp.error-delivered']).toBe(1);
  });
});

describe('host, bad packets are dropped and counted', () => {
  function goodSyn(): Uint8Array {
    return tcpPacket({ flags: TCP_SYN });
  }

  it('bad IPv4 header checksum', () => {
    const host = testHost();
    host.listen(0, 80, 8);
    const p = goodSyn();
    p[10] ^= 0xff;
    host.onPacket(0, p);
    expect(host.takePackets(0)).toHaveLength(0);
    expect(host.counters['ip.bad-checksum']).toBe(1);
  });

  it('truncated IPv4 packet', () => {
    const host = testHost();
    host.onPacket(0, goodSyn().subarray(0, 30));
    expect(host.counters['ip.truncated']).toBe(1);
  });

  it('bad TCP checksum', () => {
    const host = testHost();
    host.listen(0, 80, 8);
    const p = tcpPacket({ flags: TCP_SYN, payload: enc.encode('abc') });
    p[p.length - 1] ^= 0x55;
    host.onPacket(0, p);
    expect(host.takePackets(0)).toHaveLength(0);
    expect(host.counters['tcp.bad-checksum']).toBe(1);
    expect(host.connections.size).toBe(0);
  });

  it('multicast source address', () => {
    const host = testHost();
    host.onPacket(0, tcpPacket({ flags: TCP_SYN, src: 0xe0000001 }));
    expect(host.takePackets(0)).toHaveLength(0);
    expect(host.counters['ip.bad-source']).toBe(1);
  });

  it('unsupported protocol: counted and answered with protocol unreachable', () => {
    const host = testHost();
    const p = tcpPacket({ flags: TCP_SYN });
    p[9] = IPPROTO_UDP;
    // Fix the header checksum after changing the protocol.
    p[10] = 0;
    p[11] = 0;
    let sum = 0;
    for (let i = 0; i < 20; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    const ck = ~sum & 0xffff;
    p[10] = ck >>> 8;
    p[11] = ck & 0xff;
    host.onPacket(0, p);
    expect(host.counters['ip.unknown-protocol']).toBe(1);
    const out = host.takePackets(0);
    expect(out).toHaveLength(1);
    const ip = parseIpv4(out[0]!);
    if ('error' in ip) throw new Error(ip.error);
    expect(parseIcmp(ip.payload, true)).toMatchObject({ kind: 'dest-unreachable', code: 2 });
  });

  it('a FIN to nothing is reset, counting toward the no-connection counter', () => {
    const host = testHost();
    host.onPacket(0, tcpPacket({ seq: 1, ack: 2, flags: TCP_FIN | TCP_ACK }));
    expect(tcpOut(host.takePackets(0))[0]).toMatchObject({ seq: 2, flags: TCP_RST });
    expect(host.counters['tcp.no-connection-rst-sent']).toBe(1);
  });
});
