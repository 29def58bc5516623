// The sans-IO host (host-api.ts): IPv4 packets in, IPv4 packets out. It validates and reassembles
// IPv4, demultiplexes TCP by 4-tuple, runs the listeners (half-open queue, SYN cookies, accept
// queue), answers what matches nothing with the RFC 9293 CLOSED-state reset, handles ICMP, and
// wraps every connection's output in IPv4. Connections touched since the last `takePackets()` sit
// in a dirty list and every connection's next timer sits in a min-heap, so per-turn work is
// proportional to what happened, not to the number of connections.

import { randomBytes } from 'node:crypto';
import { DeadlineHeap } from './deadline-heap.js';
import { HostedConnection, type ConnectionOwner, type PassiveOrigin } from './hosted-connection.js';
import type { Counters, Host, HostConfig, HostEvent, TcpListener } from './host-api.js';
import { handleIcmp, reassemblyTimeExceeded, type IcmpContext } from './icmp-handler.js';
import { createRateLimiter } from './rate-limit.js';
import { Listener, listenerKey, type ListenerOwner } from './listener.js';
import { closedStateReset, listenStateAckReset } from './reset.js';
import { SynCookieJar } from './syn-cookies.js';
import { createActiveConnection, createPassiveConnection } from './tcp/connection.js';
import { lossCountersOf } from './tcp/rack.js';
import { rcvbufDropsOf } from './tcp/receiver.js';
import type { Micros, TcpConfig, TcpConnection, TcpEvent } from './tcp/api.js';
import { Reassembler } from './wire/fragments.js';
import { emitIcmpError, icmpErrorPermitted, ICMP_UNREACH_PROTOCOL } from './wire/icmp.js';
import { parseTcp, tcpIpv4PacketLength, writeTcpIpv4, type TcpEmitOptions } from './wire/tcp.js';
import { parseIpv4, type Ipv4Packet } from './wire/ipv4.js';
import {
  IPPROTO_ICMP,
  IPPROTO_TCP,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  tupleKey,
  type FourTuple,
  type Ipv4Addr,
  type Ipv4Header,
  type TcpSegment,
} from './wire/types.js';

const IP_TCP_HEADERS = 40;
/** Linux's net.ipv4.ip_local_port_range. */
const EPHEMERAL_LOW = 32768;
const EPHEMERAL_HIGH = 60999;
const DEFAULT_TTL = 64;
/**
 * Outgoing TCP packets are carved out of slabs this big (never reused, so a packet someone keeps
 * stays intact; it only pins its slab). One ArrayBuffer per slab instead of one per packet: in a
 * bulk transfer the per-packet allocations were ~10% of the process's CPU plus their GC.
 */
const TX_SLAB_BYTES = 256 * 1024;
/** ICMP errors we originate (protocol unreachable, reassembly timeout) per second. */
const ICMP_ERRORS_PER_SECOND = 100;

/** The demultiplexing key: six 16-bit code units, cheaper to build and hash than tupleKey. */
export function demuxKey(localAddr: Ipv4Addr, localPort: number, remoteAddr: Ipv4Addr, remotePort: number): string {
  return String.fromCharCode(
    localAddr >>> 16,
    localAddr & 0xffff,
    localPort,
    remoteAddr >>> 16,
    remoteAddr & 0xffff,
    remotePort,
  );
}

/** RFC 1122 3.2.1.3: a source address that does not name one host is discarded. */
function isMartianSource(a: Ipv4Addr): boolean {
  // 0.0.0.0/8 "this network", 127.0.0.0/8 loopback, 224.0.0.0/4 multicast and 240.0.0.0/4 (which
  // holds the limited broadcast address).
  const top = a >>> 24;
  return top === 0 || top === 127 || top >= 224;
}

function addrInUse(code: 'EADDRINUSE' | 'EADDRNOTAVAIL', what: string): Error {
  const e = new Error(`${code}: ${what}`) as Error & { code: string };
  e.code = code;
  return e;
}

class HostImpl implements Host, ConnectionOwner, ListenerOwner, IcmpContext {
  readonly tcp: TcpConfig;
  private readonly addresses: Set<Ipv4Addr>;
  private readonly firstAddress: Ipv4Addr;
  private readonly demux = new Map<string, HostedConnection>();
  private readonly byTuple = new Map<string, TcpConnection>();
  private readonly listeners = new Map<number, Listener>();
  private readonly heap = new DeadlineHeap<HostedConnection>();
  private readonly reassembler = new Reassembler();
  private readonly cookies: SynCookieJar;
  private dirty: HostedConnection[] = [];
  private packets: Uint8Array[] = [];
  private events: HostEvent[] = [];
  private readonly own: Counters = {};
  private rxPackets = 0;
  private rxSegments = 0;
  private txPackets = 0;
  private ipId: number;
  /** The latest time any input carried, for aborts the host starts on its own. */
  private lastNow: Micros = 0;
  readonly icmpErrorAllowed: (now: Micros) => boolean;
  /** How TCP packets are emitted: with partial checksums when the link completes them. */
  private readonly tcpEmit: TcpEmitOptions | undefined;
  private txSlab = new Uint8Array(0);
  private txSlabUsed = 0;
  /** Until when an ACK at a listener is checked as a cookie even if no listener here sent one. */
  private cookiesHonouredUntil: Micros = -Infinity;

  constructor(readonly config: HostConfig) {
    this.tcpEmit = config.tcpChecksumOffload === true ? { checksumOffload: true } : undefined;
    if (config.addresses.length === 0) throw new RangeError('a host needs at least one address');
    this.addresses = new Set(config.addresses);
    this.firstAddress = config.addresses[0]!;
    this.tcp = { ...config.tcp, mss: Math.min(config.tcp.mss, config.mtu - IP_TCP_HEADERS) };
    this.cookies = new SynCookieJar(config.env, config.synCookieKey ?? new Uint8Array(randomBytes(16)), config.synCookieClockOffsetUs ?? 0);
    this.ipId = config.env.random() & 0xffff;
    this.icmpErrorAllowed = createRateLimiter(ICMP_ERRORS_PER_SECOND);
  }

  get connections(): ReadonlyMap<string, TcpConnection> {
    return this.byTuple;
  }

  get counters(): Counters {
    const out: Counters = { ...this.own };
    // The per-packet counts live in plain fields: a keyed increment per packet shows in profiles.
    if (this.rxPackets > 0) out['ip.rx'] = this.rxPackets;
    if (this.rxSegments > 0) out['tcp.rx'] = this.rxSegments;
    if (this.txPackets > 0) out['ip.tx'] = this.txPackets;
    for (const [k, v] of Object.entries(this.reassembler.counters)) if (v !== 0) out[k] = v;
    // Loss recovery events, kept by each connection: the live ones plus those already removed.
    let rto = this.retiredLoss.rto;
    let tlp = this.retiredLoss.tlp;
    let rackLost = this.retiredLoss.rackLost;
    let rcvbufDrops = this.retiredLoss.rcvbufDrops;
    for (const c of this.byTuple.values()) {
      const inner = c instanceof HostedConnection ? c.inner : c;
      const l = lossCountersOf(inner);
      rto += l.rto;
      tlp += l.tlp;
      rackLost += l.rackLost;
      rcvbufDrops += rcvbufDropsOf(inner);
    }
    if (rto > 0) out['tcp.rto'] = rto;
    if (tlp > 0) out['tcp.tlp'] = tlp;
    if (rackLost > 0) out['tcp.rack-lost'] = rackLost;
    if (rcvbufDrops > 0) out['tcp.rcvbuf-drops'] = rcvbufDrops;
    return out;
  }

  /** tcp.rto, tcp.tlp, tcp.rack-lost and tcp.rcvbuf-drops of connections no longer in the tables. */
  private readonly retiredLoss = { rto: 0, tlp: 0, rackLost: 0, rcvbufDrops: 0 };

  count(name: string): void {
    this.own[name] = (this.own[name] ?? 0) + 1;
  }

  isLocal(a: Ipv4Addr): boolean {
    return this.addresses.has(a);
  }

  // ---- packets in ----

  onPacket(now: Micros, packet: Uint8Array, checksumValid = false): void {
    this.lastNow = now;
    this.rxPackets++;
    const parsed = parseIpv4(packet);
    if ('error' in parsed) {
      this.count(parsed.error);
      return;
    }
    const h = parsed.header;
    if (!this.addresses.has(h.dst)) {
      this.count('ip.not-ours');
      return;
    }
    if (isMartianSource(h.src)) {
      this.count('ip.bad-source');
      return;
    }
    let ip: Ipv4Packet = parsed;
    if (parsed.moreFragments || parsed.fragmentOffset !== 0) {
      const whole = this.reassembler.push(now, parsed);
      if (whole === undefined) return;
      ip = whole;
    }
    switch (h.protocol) {
      case IPPROTO_TCP:
        // The link's word covers the packet it delivered, not one reassembled from fragments.
        this.onTcp(now, ip, checksumValid && ip === parsed);
        return;
      case IPPROTO_ICMP:
        handleIcmp(this, now, ip);
        return;
      default:
        this.count('ip.unknown-protocol');
        // RFC 1122 3.2.2.1: "A host SHOULD generate Destination Unreachable messages with code:
        // 2 (Protocol Unreachable), when the designated transport protocol is not supported".
        if (ip === parsed && icmpErrorPermitted(packet) && this.icmpErrorAllowed(now)) {
          this.emitPacket(
            emitIcmpError(this.replyHeader(h, IPPROTO_ICMP), { kind: 'dest-unreachable', code: ICMP_UNREACH_PROTOCOL }, packet),
          );
        }
    }
  }

  private onTcp(now: Micros, ip: Ipv4Packet, checksumValid: boolean): void {
    const h = ip.header;
    const seg = parseTcp(ip.payload, h.src, h.dst, !checksumValid);
    if ('error' in seg) {
      this.count(seg.error);
      return;
    }
    this.rxSegments++;
    if (seg.options.malformed) this.count('tcp.malformed-options');
    const c = this.demux.get(demuxKey(h.dst, seg.dstPort, h.src, seg.srcPort));
    if (c !== undefined) {
      const p = c.passive;
      if (p !== undefined && p.halfOpen && (seg.flags & (TCP_ACK | TCP_SYN | TCP_RST)) === TCP_ACK) {
        // Linux drops the handshake-completing ACK while the accept queue is full; the peer
        // retransmits and the connection completes once the application catches up.
        if (p.listener.acceptQueueFull) {
          this.count('tcp.accept-queue-full');
          return;
        }
      }
      c.onSegment(now, seg);
      // Queue it as soon as the handshake completes, not at the next settle: the next segment of
      // the same batch must already see the accept queue with it.
      if (p !== undefined && !p.queued && c.inner.state !== 'SYN-RECEIVED' && c.inner.state !== 'CLOSED') this.promote(c, p);
      if (c.inner.endedBySyn !== true) return;
      // RFC 9293 3.6.1: a SYN of a new incarnation ended TIME-WAIT. The old connection leaves the
      // tables now (its last events still go out) and the SYN meets the listener like any other.
      this.count('tcp.time-wait-reused');
      this.unlink(c);
    }
    const l = this.listeners.get(listenerKey(h.dst, seg.dstPort)) ?? this.listeners.get(listenerKey(0, seg.dstPort));
    if (l === undefined) {
      this.count((seg.flags & TCP_RST) !== 0 ? 'tcp.no-connection-rst-dropped' : 'tcp.no-connection-rst-sent');
      const reply = closedStateReset(seg);
      if (reply) this.emitSegment(h, reply);
      return;
    }
    this.onListenSegment(now, l, h, seg);
  }

  /** RFC 9293 section 3.10.7.2, "If the state is LISTEN". */
  private onListenSegment(now: Micros, l: Listener, h: Ipv4Header, seg: TcpSegment): void {
    // "first, check for a RST: An incoming RST segment could not be valid since it could not have
    // been sent in response to anything sent by this incarnation of the connection. An incoming
    // RST should be ignored."
    if ((seg.flags & TCP_RST) !== 0) {
      this.count('tcp.listen-rst-dropped');
      return;
    }
    const tuple: FourTuple = { localAddr: h.dst, localPort: seg.dstPort, remoteAddr: h.src, remotePort: seg.srcPort };
    // "second, check for an ACK": a SYN cookie comes back as the ACK of the handshake.
    if ((seg.flags & TCP_ACK) !== 0) {
      if ((seg.flags & TCP_SYN) !== 0) {
        // The RFC's reset "should be formed" for any ACK; FreeBSD (whose suite we run) drops a
        // SYN-ACK at a listener instead. An unsolicited SYN-ACK is usually backscatter of SYNs
        // someone sent in our name, and answering it would only add to that traffic.
        this.count('tcp.listen-synack-dropped');
        return;
      }
      if (now - l.lastCookieAt <= this.cookies.validityUs || now < this.cookiesHonouredUntil) {
        if (l.acceptQueueFull) {
          // As for a half-open connection: drop, the peer retransmits, the cookie stays valid.
          this.count('tcp.accept-queue-full');
          return;
        }
        const inner = this.cookies.accept(now, tuple, seg, this.tcp);
        if (inner !== null) {
          this.count('tcp.syncookie-accepted');
          // The core took the ACK (and any data on it) while creating the connection.
          const c = this.adopt(inner, l, false);
          this.promote(c, c.passive!);
          return;
        }
        this.count('tcp.syncookie-invalid');
      }
      this.count('tcp.listen-ack-rst-sent');
      this.emitSegment(h, listenStateAckReset(seg));
      return;
    }
    // "third, check for a SYN"
    if ((seg.flags & TCP_SYN) === 0) {
      // "fourth, other data or control: ... drop the segment and return."
      this.count('tcp.listen-no-syn-dropped');
      return;
    }
    if ((seg.flags & TCP_FIN) !== 0 && this.tcp.dropSynFin === true) {
      this.count('tcp.listen-synfin-dropped');
      return;
    }
    if (l.acceptQueueFull) {
      // Linux (tcp_conn_request) drops SYNs while the accept queue is full: a cookie would only
      // lead to a connection that has nowhere to go.
      this.count('tcp.listen-overflow');
      return;
    }
    if (l.halfOpen >= this.config.synBacklog) {
      l.lastCookieAt = now;
      this.count('tcp.syncookie-sent');
      this.emitSegment(h, this.cookies.synAck(now, tuple, seg, this.tcp));
      return;
    }
    this.count('tcp.passive-open');
    const inner = createPassiveConnection(now, tuple, seg, this.tcp, this.config.env);
    this.adopt(inner, l, true);
  }

  honourSynCookies(now: Micros): void {
    this.cookiesHonouredUntil = now + this.cookies.validityUs;
  }

  /** Files a connection the listener created into the host's tables. */
  private adopt(inner: TcpConnection, l: Listener, halfOpen: boolean): HostedConnection {
    const c = this.register(inner);
    c.passive = { listener: l, halfOpen, queued: false, accepted: false };
    c.heldEvents = [];
    if (halfOpen) l.halfOpen++;
    return c;
  }

  private register(inner: TcpConnection): HostedConnection {
    const t = inner.tuple;
    const c = new HostedConnection(
      inner,
      demuxKey(t.localAddr, t.localPort, t.remoteAddr, t.remotePort),
      tupleKey(t),
      this,
    );
    this.demux.set(c.demuxKey, c);
    this.byTuple.set(c.publicKey, c);
    this.markDirty(c);
    return c;
  }

  // ---- packets out ----

  replyHeader(to: Ipv4Header, protocol: number): Ipv4Header {
    this.ipId = (this.ipId + 1) & 0xffff;
    return { src: to.dst, dst: to.src, protocol, ttl: DEFAULT_TTL, tos: 0, id: this.ipId, df: protocol === IPPROTO_TCP };
  }

  emitPacket(p: Uint8Array): void {
    if (p.length > this.config.mtu) {
      this.count('ip.tx-oversize');
      return;
    }
    this.packets.push(p);
  }

  private emitSegment(inbound: Ipv4Header, seg: TcpSegment): void {
    this.emitPacket(this.emitTcp(this.replyHeader(inbound, IPPROTO_TCP), seg));
  }

  /** A complete IPv4 packet carrying `seg`, in the current output slab. */
  private emitTcp(ip: Ipv4Header, seg: TcpSegment): Uint8Array {
    const len = tcpIpv4PacketLength(seg);
    if (len > this.txSlab.length - this.txSlabUsed) {
      this.txSlab = new Uint8Array(Math.max(TX_SLAB_BYTES, len));
      this.txSlabUsed = 0;
    }
    const p = this.txSlab.subarray(this.txSlabUsed, this.txSlabUsed + len);
    // Each packet starts 4-byte aligned, which keeps checksum loops on their word-wise path.
    this.txSlabUsed += (len + 3) & ~3;
    writeTcpIpv4(p, 0, ip, seg, this.tcpEmit);
    return p;
  }

  /**
   * A full-sized data segment that also carries SACK blocks can exceed the MTU when the core sized
   * its payload for timestamps only. The blocks are advisory (RFC 2018 section 4: the receiver
   * reports them "in as many ... as possible", and the sender's SACK recovery copes with missing
   * ones), so they are dropped rather than the segment; the counter shows how often.
   */
  private fitToMtu(seg: TcpSegment): TcpSegment {
    if (seg.options.sack === undefined || tcpIpv4PacketLength(seg) <= this.config.mtu) return seg;
    this.count('tcp.tx-sack-dropped-for-mtu');
    return { ...seg, options: { ...seg.options, sack: undefined } };
  }

  markDirty(c: HostedConnection): void {
    if (c.dirty || c.removed) return;
    c.dirty = true;
    this.dirty.push(c);
  }

  /** Gathers output, events and new deadlines of every connection touched since the last call. */
  private settle(): void {
    const list = this.dirty;
    if (list.length === 0) return;
    // Handling one connection's events can touch others (closing a listener aborts its queue),
    // so the list may grow while it is walked.
    for (let i = 0; i < list.length; i++) {
      const c = list[i]!;
      c.dirty = false;
      if (c.removed) continue;
      const inner = c.inner;
      const segs = inner.takeOutput();
      if (segs.length > 0) {
        const ip = c.ipHeader;
        for (const seg of segs) {
          this.ipId = (this.ipId + 1) & 0xffff;
          ip.id = this.ipId;
          this.emitPacket(this.emitTcp(ip, this.fitToMtu(seg)));
        }
      }
      const evs = inner.takeEvents();
      for (const ev of evs) this.onConnectionEvent(c, ev);
      if (!c.removed) this.heap.set(c, inner.nextDeadline());
    }
    this.dirty = [];
  }

  private onConnectionEvent(c: HostedConnection, ev: TcpEvent): void {
    const p = c.passive;
    if (p !== undefined) {
      const l = p.listener;
      if (ev.type === 'connected') {
        this.promote(c, p);
      } else if (ev.type === 'closed') {
        if (p.halfOpen) {
          p.halfOpen = false;
          l.halfOpen--;
        } else if (!p.accepted) {
          l.unqueue(c);
        }
      }
    }
    if (ev.type === 'closed') this.remove(c);
    if (c.heldEvents !== undefined) {
      // Not accepted yet: nobody to tell; replayed by accept().
      c.heldEvents.push(ev);
      return;
    }
    this.events.push({ type: 'connection', conn: c, event: ev });
  }

  /** A passive connection reached ESTABLISHED: from the half-open queue into the accept queue. */
  private promote(c: HostedConnection, p: PassiveOrigin): void {
    if (p.queued) return;
    const l = p.listener;
    if (p.halfOpen) {
      p.halfOpen = false;
      l.halfOpen--;
    }
    p.queued = true;
    if (l.closed) {
      c.abort(this.lastNow);
      return;
    }
    l.enqueue(c);
    this.events.push({ type: 'accept-ready', listener: l });
  }

  private remove(c: HostedConnection): void {
    if (!c.removed) {
      const l = lossCountersOf(c.inner);
      this.retiredLoss.rto += l.rto;
      this.retiredLoss.tlp += l.tlp;
      this.retiredLoss.rackLost += l.rackLost;
      this.retiredLoss.rcvbufDrops += rcvbufDropsOf(c.inner);
    }
    c.removed = true;
    this.unlink(c);
  }

  /** Takes `c` out of the tables, unless a new incarnation already holds its tuple there. */
  private unlink(c: HostedConnection): void {
    if (this.demux.get(c.demuxKey) === c) this.demux.delete(c.demuxKey);
    if (this.byTuple.get(c.publicKey) === c) this.byTuple.delete(c.publicKey);
    this.heap.remove(c);
  }

  onAccepted(c: HostedConnection): void {
    if (c.passive) c.passive.accepted = true;
    const held = c.heldEvents ?? [];
    c.heldEvents = undefined;
    for (const ev of held) this.events.push({ type: 'connection', conn: c, event: ev });
  }

  onListenerClosed(l: Listener, now: Micros): void {
    if (this.listeners.get(l.key) === l) this.listeners.delete(l.key);
    // As Linux (inet_csk_listen_stop) and FreeBSD do: established connections nobody accepted
    // are reset, half-open ones are forgotten without a word (their SYN-ACK was all the peer
    // saw; a later segment from it meets the CLOSED-state reset).
    for (const c of l.drain()) c.abort(now);
    const halfOpen: HostedConnection[] = [];
    for (const c of this.demux.values()) if (c.passive?.listener === l && c.passive.halfOpen) halfOpen.push(c);
    for (const c of halfOpen) {
      c.passive!.halfOpen = false;
      l.halfOpen--;
      this.remove(c);
    }
  }

  // ---- time ----

  onTimer(now: Micros): void {
    this.lastNow = now;
    this.settle();
    for (let c = this.heap.popDue(now); c !== undefined; c = this.heap.popDue(now)) c.onTimer(now);
    for (const d of this.reassembler.expire(now)) if (d.haveFirstFragment) reassemblyTimeExceeded(this, now, d.packet);
  }

  nextDeadline(): Micros | null {
    this.settle();
    const a = this.heap.earliest();
    const b = this.reassembler.nextDeadline();
    if (a === null) return b;
    if (b === null) return a;
    return Math.min(a, b);
  }

  takePackets(_now: Micros): Uint8Array[] {
    this.settle();
    const out = this.packets;
    this.packets = [];
    this.txPackets += out.length;
    return out;
  }

  takeEvents(): HostEvent[] {
    this.settle();
    const out = this.events;
    this.events = [];
    return out;
  }

  // ---- user calls ----

  listen(addr: Ipv4Addr, port: number, backlog: number): TcpListener {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`bad port ${port}`);
    if (addr !== 0 && !this.addresses.has(addr)) throw addrInUse('EADDRNOTAVAIL', `not a local address`);
    for (const l of this.listeners.values()) {
      if (l.port === port && (addr === 0 || l.addr === 0 || l.addr === addr)) {
        throw addrInUse('EADDRINUSE', `port ${port} is already listening`);
      }
    }
    const l = new Listener(addr, port, Math.max(1, backlog), this);
    this.listeners.set(l.key, l);
    return l;
  }

  connect(now: Micros, tuple: FourTuple, config?: Partial<TcpConfig>): TcpConnection {
    const localAddr = tuple.localAddr === 0 ? this.firstAddress : tuple.localAddr;
    if (!this.addresses.has(localAddr)) throw addrInUse('EADDRNOTAVAIL', 'not a local address');
    let localPort = tuple.localPort;
    if (localPort === 0) {
      localPort = this.ephemeralPort(localAddr, tuple.remoteAddr, tuple.remotePort);
    } else if (this.demux.has(demuxKey(localAddr, localPort, tuple.remoteAddr, tuple.remotePort))) {
      throw addrInUse('EADDRINUSE', `4-tuple in use`);
    }
    const full: FourTuple = { localAddr, localPort, remoteAddr: tuple.remoteAddr, remotePort: tuple.remotePort };
    const cfg: TcpConfig = { ...this.tcp, ...config };
    cfg.mss = Math.min(cfg.mss, this.config.mtu - IP_TCP_HEADERS);
    this.count('tcp.active-open');
    return this.register(createActiveConnection(now, full, cfg, this.config.env));
  }

  adoptConnection(inner: TcpConnection): TcpConnection {
    const t = inner.tuple;
    if (!this.addresses.has(t.localAddr)) throw addrInUse('EADDRNOTAVAIL', 'not a local address');
    if (this.demux.has(demuxKey(t.localAddr, t.localPort, t.remoteAddr, t.remotePort))) throw addrInUse('EADDRINUSE', '4-tuple in use');
    // No passive origin: it was accepted long ago (on the primary), so its events go straight up.
    return this.register(inner);
  }

  /**
   * RFC 6056 section 3.3.2 ("Algorithm 2: Simple Port Randomization"): start at a random point of
   * the range and take the first port whose 4-tuple is free and that no listener uses.
   */
  private ephemeralPort(localAddr: Ipv4Addr, remoteAddr: Ipv4Addr, remotePort: number): number {
    const span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1;
    const start = this.config.env.random() % span;
    for (let i = 0; i < span; i++) {
      const port = EPHEMERAL_LOW + ((start + i) % span);
      if (this.demux.has(demuxKey(localAddr, port, remoteAddr, remotePort))) continue;
      if (this.listeners.has(listenerKey(localAddr, port)) || this.listeners.has(listenerKey(0, port))) continue;
      return port;
    }
    throw addrInUse('EADDRNOTAVAIL', 'no free ephemeral port');
  }

  /** For the ICMP handler: the connection a quoted segment belongs to. */
  findConnection(t: FourTuple): HostedConnection | undefined {
    return this.demux.get(demuxKey(t.localAddr, t.localPort, t.remoteAddr, t.remotePort));
  }
}

export function createHost(config: HostConfig): Host {
  return new HostImpl(config);
}
