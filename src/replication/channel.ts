// The replication channel: one kernel TCP connection between the two nodes carrying authenticated
// frames (ARCHITECTURE.md 5.3). One side listens (the primary, normally), the other dials and
// redials with backoff. Each connection starts with a hello both ways (role, epoch, node id, where
// the log stands), then carries record batches, acks and heartbeats. Anything the peer sends that
// does not check out drops that connection, counted and logged once, and the node carries on.

import { EventEmitter } from 'node:events';
import { createServer, connect as netConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import { type Direction, type ReplicationKey, helloMac, newNonce, reverse, sessionMac } from './auth.js';
import { ReadSlabs } from './read-slabs.js';
import {
  FrameDecoder,
  FrameSealer,
  openFrame,
  type FrameError,
  type HandoverDoneMessage,
  type HandoverMessage,
  type HeartbeatMessage,
  type HelloMessage,
  type OutgoingMessage,
  type Role,
} from './framing.js';
import { FrameCutter } from './frame-cutter.js';
import type { LogRecord, Lsn } from './log-records.js';
import type { MessageFaults, MessagePipe } from './message-faults.js';
import type { OutgoingBatch, ReplicaLog, ReplicationLog } from './replication-log.js';

export interface Endpoint {
  host: string;
  /** 0 to listen on an ephemeral port (see ReplicationChannel.port). */
  port: number;
}

export interface ReconnectPolicy {
  /** First delay after a failed or lost connection. Default 50 ms. */
  initialMs?: number;
  /** Delays double up to this. Default 2000 ms. */
  maxMs?: number;
}

export interface ChannelOptions {
  role: Role;
  nodeId: string;
  key: ReplicationKey;
  /** Listen here (exactly one of listen and connect). */
  listen?: Endpoint;
  /** Dial here, and redial whenever the connection is lost. */
  connect?: Endpoint;
  /** The node's current epoch; read for every hello and heartbeat. */
  epoch: () => number;
  /** Primary: last LSN appended. Backup: last LSN applied (where a resumed stream starts). */
  lastLsn: () => Lsn;
  /** Default 100 ms. */
  heartbeatIntervalMs?: number;
  /** A connection that delivers nothing (not even a heartbeat or hello) for this long is dropped. Default 1000 ms. */
  silenceTimeoutMs?: number;
  reconnect?: ReconnectPolicy;
  /** Largest frame body accepted. Default 16 MiB. */
  maxFrameBody?: number;
  /** Microseconds for heartbeats. Default: wall clock. */
  clockUs?: () => number;
  /** One line per notable event (peer up/down, refusals). Default: none. */
  log?: (line: string) => void;
  /** Faults an operator injects on this link (`understudy fault ... --link replication`). Default: none. */
  faults?: MessageFaults;
}

export interface PeerInfo {
  nodeId: string;
  role: Role;
  epoch: number;
  /** From the peer's hello: its last LSN appended (primary) or applied (backup). */
  lastLsn: Lsn;
  /** host:port of the peer's end of the socket. */
  address: string;
}

export interface RefusalEvent {
  address: string;
  error: string;
  /** Running total of this kind of refusal on this channel. */
  count: number;
}

export interface ChannelEvents {
  'peer-up': [peer: PeerInfo];
  'peer-down': [info: { peer: PeerInfo; reason: string }];
  /**
   * A batch of records from the primary. Payloads are views into the received data (on the
   * dialler, a 1 MiB read slab shared by many frames: read-slabs.ts): a handler that keeps bytes
   * for long (retained ranges) should copy them, or a few bytes keep a whole slab alive.
   */
  /** `receivedAt`: performance.now() when this message's frame began to be verified and decoded. */
  message: [records: LogRecord[], peer: PeerInfo, receivedAt: number];
  ack: [lsn: Lsn, peer: PeerInfo];
  heartbeat: [hb: HeartbeatMessage, peer: PeerInfo];
  /** The peer announced an epoch above ours (fencing is the caller's decision). */
  'higher-epoch': [epoch: number, peer: PeerInfo];
  /** Planned switchover: the primary hands over (only a backup takes this). */
  handover: [m: HandoverMessage, peer: PeerInfo];
  /** The backup's answer to a handover (only a primary takes these). */
  'handover-done': [m: HandoverDoneMessage, peer: PeerInfo];
  'handover-refused': [reason: string, peer: PeerInfo];
  'auth-failure': [ev: RefusalEvent];
  'protocol-error': [ev: RefusalEvent];
}

export interface ChannelStats {
  framesSent: number;
  framesReceived: number;
  bytesSent: number;
  bytesReceived: number;
  authFailures: number;
  protocolErrors: number;
  /** Connections that completed the handshake. */
  sessions: number;
  /** Dial attempts after the first. */
  redials: number;
}

/** Connections at once, authenticated or not (the live session, a replacement, strays). */
const MAX_LINKS = 8;

/** One TCP connection and its handshake state. */
class Link {
  readonly sealer: FrameSealer;
  readonly decoder: FrameDecoder;
  readonly nonce = newNonce();
  /** Set by the peer's hello. */
  peer: PeerInfo | null = null;
  /** The peer has sent a frame under the session key: it is live, not a replayed hello. */
  confirmed = false;
  lastHeard = Date.now();
  timer: NodeJS.Timeout | null = null;
  done = false;
  /** With injected faults: frames pass through these pipes, received ones cut from the stream first. */
  outPipe: MessagePipe | null = null;
  inPipe: MessagePipe | null = null;
  cutter: FrameCutter | null = null;

  constructor(
    readonly socket: Socket,
    readonly direction: Direction,
    readonly address: string,
    key: ReplicationKey,
    maxBody: number | undefined,
  ) {
    this.sealer = new FrameSealer(helloMac(key, direction));
    this.decoder = new FrameDecoder({ mac: helloMac(key, reverse(direction)), maxBody });
  }
}

export class ReplicationChannel extends EventEmitter<ChannelEvents> {
  readonly stats: ChannelStats = {
    framesSent: 0,
    framesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    authFailures: 0,
    protocolErrors: 0,
    sessions: 0,
    redials: 0,
  };

  private readonly opts: ChannelOptions;
  private readonly heartbeatMs: number;
  private readonly silenceMs: number;
  private readonly backoffInitial: number;
  private readonly backoffMax: number;
  private readonly clockUs: () => number;
  private readonly links = new Set<Link>();
  private active: Link | null = null;
  private server: Server | null = null;
  private redialTimer: NodeJS.Timeout | null = null;
  private backoff: number;
  private dials = 0;
  private closed = false;
  private started = false;

  constructor(opts: ChannelOptions) {
    super();
    if ((opts.listen === undefined) === (opts.connect === undefined)) throw new Error('replication channel: give exactly one of listen and connect');
    this.opts = opts;
    this.heartbeatMs = opts.heartbeatIntervalMs ?? 100;
    this.silenceMs = opts.silenceTimeoutMs ?? 1000;
    this.backoffInitial = opts.reconnect?.initialMs ?? 50;
    this.backoffMax = opts.reconnect?.maxMs ?? 2000;
    this.backoff = this.backoffInitial;
    this.clockUs = opts.clockUs ?? (() => Math.round((performance.timeOrigin + performance.now()) * 1000));
  }

  /** Listens (resolving once bound) or starts dialling (resolving at once). */
  async start(): Promise<void> {
    if (this.started) throw new Error('replication channel already started');
    this.started = true;
    const listen = this.opts.listen;
    if (listen === undefined) {
      this.dial();
      return;
    }
    const server = createServer((socket) => this.adopt(socket, 'listener-to-dialer'));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => this.say(`replication: listener error: ${e.message}`));
  }

  /** The listening port (after start), or null when dialling. */
  get port(): number | null {
    const a = this.server?.address();
    return a !== null && typeof a === 'object' ? (a as AddressInfo).port : null;
  }

  /** The peer of the established session, if any. */
  get peer(): PeerInfo | null {
    return this.active?.peer ?? null;
  }

  sendRecords(batch: OutgoingBatch): boolean {
    return this.send({ type: 'records', records: batch.records });
  }

  sendAck(lsn: Lsn): boolean {
    return this.send({ type: 'ack', lsn });
  }

  sendHandover(epoch: number, lastLsn: Lsn): boolean {
    return this.send({ type: 'handover', epoch, lastLsn });
  }

  sendHandoverDone(epoch: number, takeoverMs: number): boolean {
    return this.send({ type: 'handover-done', epoch, takeoverMs });
  }

  sendHandoverRefused(reason: string): boolean {
    return this.send({ type: 'handover-refused', reason });
  }

  /** Drops the current session (e.g. the log refused what arrived); a dialler redials. */
  dropPeer(reason: string): void {
    if (this.active !== null) this.finish(this.active, reason);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.redialTimer !== null) clearTimeout(this.redialTimer);
    for (const l of [...this.links]) this.finish(l, 'channel closed');
    const server = this.server;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private send(m: OutgoingMessage): boolean {
    const l = this.active;
    if (l === null || l.done) return false;
    this.write(l, m);
    return true;
  }

  private write(l: Link, m: OutgoingMessage): void {
    const chunks = l.sealer.seal(m);
    this.stats.framesSent++;
    if (l.outPipe === null) this.transmit(l, chunks);
    else l.outPipe.push(chunks, true);
  }

  private transmit(l: Link, chunks: Uint8Array[]): void {
    if (l.done) return;
    l.socket.cork();
    for (const c of chunks) {
      l.socket.write(c);
      this.stats.bytesSent += c.length;
    }
    l.socket.uncork();
  }

  private say(line: string): void {
    this.opts.log?.(line);
  }

  private dial(): void {
    const to = this.opts.connect as Endpoint;
    if (this.dials++ > 0) this.stats.redials++;
    // The dialler is the node that receives the log: its reads go into slabs (read-slabs.ts).
    const slabs = new ReadSlabs();
    let link: Link | null = null;
    const socket = netConnect({
      host: to.host,
      port: to.port,
      onread: {
        buffer: () => slabs.next(),
        callback: (n: number, buf: Uint8Array) => {
          const chunk = slabs.filled(buf, n);
          if (link !== null) this.onData(link, chunk);
          return true;
        },
      },
    });
    let connected = false;
    // A SYN into a black hole would otherwise wait for the kernel's minutes-long timeout.
    socket.setTimeout(this.silenceMs, () => {
      if (!connected) socket.destroy();
    });
    socket.once('connect', () => {
      connected = true;
      socket.setTimeout(0);
      link = this.adopt(socket, 'dialer-to-listener');
    });
    // Until connected, failures are quiet: the primary may simply not be up yet.
    socket.on('error', () => undefined);
    socket.once('close', () => {
      if (!connected) this.scheduleRedial();
    });
  }

  private scheduleRedial(): void {
    if (this.closed || this.redialTimer !== null || this.opts.connect === undefined) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.backoffMax);
    this.redialTimer = setTimeout(() => {
      this.redialTimer = null;
      if (!this.closed) this.dial();
    }, delay);
  }

  /** Takes a connected socket on; returns its link (null when refused). A dialled socket's reads arrive through its onread callback, the others' through 'data'. */
  private adopt(socket: Socket, direction: Direction): Link | null {
    const address = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    if (this.closed) {
      socket.destroy();
      return null;
    }
    if (this.links.size >= MAX_LINKS) {
      // Only two nodes belong here, so a crowd of sockets is someone else's. Evicting the oldest
      // stray rather than refusing the newcomer keeps the real peer from being locked out.
      for (const old of this.links) {
        if (old === this.active) continue;
        this.say(`replication: ${this.links.size} connections open; dropping the oldest unestablished one, from ${old.address}`);
        this.finish(old, 'evicted: too many connections');
        break;
      }
    }
    socket.setNoDelay(true);
    const l = new Link(socket, direction, address, this.opts.key, this.opts.maxFrameBody);
    const faults = this.opts.faults;
    if (faults !== undefined) {
      l.outPipe = faults.pipe('out', (chunks) => this.transmit(l, chunks));
      l.inPipe = faults.pipe('in', (chunks) => this.receive(l, chunks));
      l.cutter = new FrameCutter(this.opts.maxFrameBody);
    }
    this.links.add(l);
    if (direction === 'listener-to-dialer') socket.on('data', (chunk: Buffer) => this.onData(l, chunk));
    socket.on('error', (e) => this.finish(l, `socket error: ${e.message}`));
    socket.on('close', () => this.finish(l, 'connection closed by peer'));
    l.timer = setInterval(() => this.tick(l), Math.min(this.heartbeatMs, this.silenceMs));
    this.write(l, this.hello(l));
    return l;
  }

  private hello(l: Link): HelloMessage {
    return { type: 'hello', role: this.opts.role, epoch: this.opts.epoch(), nodeId: this.opts.nodeId, nonce: l.nonce, lastLsn: this.opts.lastLsn() };
  }

  private tick(l: Link): void {
    if (l.done) return;
    const silent = Date.now() - l.lastHeard;
    if (silent > this.silenceMs) {
      this.finish(l, `silent for ${silent} ms (limit ${this.silenceMs} ms)`);
      return;
    }
    if (l.peer !== null) this.write(l, this.heartbeat());
  }

  private heartbeat(): HeartbeatMessage {
    return { type: 'heartbeat', epoch: this.opts.epoch(), lsn: this.opts.lastLsn(), clockUs: this.clockUs() };
  }

  private onData(l: Link, chunk: Uint8Array): void {
    if (l.done) return;
    this.stats.bytesReceived += chunk.length;
    const pipe = l.inPipe;
    if (pipe === null || l.cutter === null) this.receive(l, [chunk]);
    else l.cutter.cut(chunk, (piece, end) => pipe.push([piece], end));
  }

  /** Bytes that reached this node (past any injected faults): decode, verify and act on them. */
  private receive(l: Link, chunks: readonly Uint8Array[]): void {
    if (l.done) return;
    for (const c of chunks) l.decoder.push(c);
    for (;;) {
      const receivedAt = performance.now();
      const f = l.decoder.next();
      if (f === null) return;
      if ('error' in f) {
        this.refuse(l, f);
        return;
      }
      this.stats.framesReceived++;
      l.lastHeard = Date.now();
      const m = openFrame(f);
      if ('error' in m) {
        this.refuse(l, m);
        return;
      }
      if (l.peer === null) {
        if (m.type !== 'hello') {
          this.refuse(l, { kind: 'protocol', error: `${m.type} message before the hello` });
          return;
        }
        if (!this.handshake(l, m)) return;
        continue;
      }
      if (!l.confirmed && !this.confirm(l)) return;
      const peer = l.peer as PeerInfo;
      switch (m.type) {
        case 'hello':
          this.refuse(l, { kind: 'protocol', error: 'second hello on an established session' });
          return;
        case 'records':
          this.emit('message', m.records, peer, receivedAt);
          break;
        case 'ack':
          this.emit('ack', m.lsn, peer);
          break;
        case 'heartbeat':
          peer.epoch = Math.max(peer.epoch, m.epoch);
          if (m.epoch > this.opts.epoch()) this.emit('higher-epoch', m.epoch, peer);
          this.emit('heartbeat', m, peer);
          break;
        case 'handover':
          // Only a primary hands over, and only to its backup.
          if (this.opts.role !== 'backup') {
            this.refuse(l, { kind: 'protocol', error: 'handover sent to a primary' });
            return;
          }
          this.emit('handover', m, peer);
          break;
        case 'handover-done':
        case 'handover-refused':
          if (this.opts.role !== 'primary') {
            this.refuse(l, { kind: 'protocol', error: `${m.type} sent to a backup` });
            return;
          }
          if (m.type === 'handover-done') this.emit('handover-done', m, peer);
          else this.emit('handover-refused', m.reason, peer);
          break;
      }
      // A listener may have dropped the session.
      if (l.done) return;
    }
  }

  private handshake(l: Link, h: HelloMessage): boolean {
    if (h.role === this.opts.role) {
      this.refuse(l, { kind: 'protocol', error: `peer ${h.nodeId} is also a ${h.role}` });
      return false;
    }
    const dialerNonce = l.direction === 'dialer-to-listener' ? l.nonce : h.nonce;
    const listenerNonce = l.direction === 'dialer-to-listener' ? h.nonce : l.nonce;
    l.sealer.setMac(sessionMac(this.opts.key, l.direction, dialerNonce, listenerNonce));
    l.decoder.setMac(sessionMac(this.opts.key, reverse(l.direction), dialerNonce, listenerNonce));
    l.peer = { nodeId: h.nodeId, role: h.role, epoch: h.epoch, lastLsn: h.lastLsn, address: l.address };
    // Key confirmation: our first session frame proves to the peer that we hold the key and saw its
    // nonce. The peer counts as up only when its own first session frame arrives (confirm), so a
    // replayed hello from an earlier session can never displace the live one.
    this.write(l, this.heartbeat());
    return true;
  }

  private confirm(l: Link): boolean {
    const peer = l.peer as PeerInfo;
    l.confirmed = true;
    // One session at a time: a newer authenticated connection replaces a stale one (e.g. the
    // peer restarted before the old socket timed out).
    if (this.active !== null) this.finish(this.active, `replaced by a new session from ${l.address}`);
    this.active = l;
    this.backoff = this.backoffInitial;
    this.stats.sessions++;
    this.say(`replication: session up with ${peer.role} ${peer.nodeId} at ${l.address} (epoch ${peer.epoch}, LSN ${peer.lastLsn})`);
    this.emit('peer-up', peer);
    if (!l.done && peer.epoch > this.opts.epoch()) this.emit('higher-epoch', peer.epoch, peer);
    return !l.done;
  }

  private refuse(l: Link, e: FrameError): void {
    const count = e.kind === 'auth' ? ++this.stats.authFailures : ++this.stats.protocolErrors;
    const what = e.kind === 'auth' ? 'authentication failed' : 'protocol error';
    this.say(`replication: ${what} on the connection with ${l.address}: ${e.error}; dropping it (${count} so far)`);
    const ev: RefusalEvent = { address: l.address, error: e.error, count };
    if (e.kind === 'auth') this.emit('auth-failure', ev);
    else this.emit('protocol-error', ev);
    this.finish(l, `${what}: ${e.error}`);
  }

  private finish(l: Link, reason: string): void {
    if (l.done) return;
    l.done = true;
    this.links.delete(l);
    if (l.timer !== null) clearInterval(l.timer);
    l.inPipe?.close();
    l.outPipe?.close();
    l.socket.destroy();
    if (this.active === l) {
      this.active = null;
      const peer = l.peer as PeerInfo;
      this.say(`replication: session with ${peer.role} ${peer.nodeId} at ${l.address} down: ${reason}`);
      this.emit('peer-down', { peer, reason });
    }
    if (l.direction === 'dialer-to-listener') this.scheduleRedial();
  }
}

/**
 * Connects the primary's log to a channel: a new session resumes the log where the backup stands,
 * acks advance it, a lost session detaches it. A backup that cannot resume is dropped with the
 * reason (reintegration by snapshot comes later).
 */
export function bindPrimary(log: ReplicationLog, channel: ReplicationChannel): void {
  channel.on('peer-up', (peer) => {
    const r = log.attach((b) => channel.sendRecords(b), peer.lastLsn);
    if (!r.ok) channel.dropPeer(r.error);
  });
  channel.on('peer-down', () => log.detach());
  channel.on('ack', (lsn) => {
    const r = log.onAck(lsn);
    if (!r.ok) channel.dropPeer(r.error);
  });
}

/**
 * Connects a backup's replica log to a channel: records in, and a gap, duplicate or failing handler
 * drops the session so that the primary resumes from lastApplied. The replica's `sendAck` should
 * call `channel.sendAck`, and the channel's `lastLsn` should read `replica.lastApplied`.
 */
export function bindBackup(replica: ReplicaLog, channel: ReplicationChannel): void {
  channel.on('peer-up', () => replica.resetAck());
  channel.on('message', (records) => {
    const r = replica.receive(records);
    if (!r.ok) channel.dropPeer(r.error);
  });
}
