// The primary's capture (docs/replication.md, "Primary"): every connection the host creates gets
// an observer through the TcpEnv hook, and its events become `open`, `input`, `output`, `ack`,
// `close` and `reset` records on one ReplicationLog, in the order they happen. The tap also builds
// heartbeat records with each connection's congestion state. Packets are held by the OutputGate it
// hands out. Without a backup the node is unprotected: nothing is logged and packets pass.

import type { Link } from '../tun/link.js';
import type { CloseReason, ConnectionObserver, Micros, ObservableConnection, TcpEnv } from '../stack/tcp/api.js';
import type { SeqNum } from '../stack/wire/seq.js';
import type { CongestionHint, ConnId, Lsn, NegotiatedOptions, StreamOffset } from './log-records.js';
import { OutputGate } from './output-gate.js';
import { SegmentDeps } from './segment-deps.js';
import { LogClosedError, type ReplicationLog } from './replication-log.js';

export interface PrimaryTapOptions {
  log: ReplicationLog;
  /** The driver's clock (microseconds): heartbeats carry it, the backup extrapolates TSvals from it. */
  clock: () => Micros;
  /** The node's epoch, carried by heartbeats. Default 1. */
  epoch?: () => number;
  /** One line per change of protection. */
  say?: (line: string) => void;
}

export interface PrimaryTapStats {
  /** Connections logged from their SYN (or SYN-cookie ACK). */
  replicated: number;
  /** Connections that live outside the log: opened while unprotected, or active opens. */
  unreplicated: number;
  records: number;
}

/** A connection the tap logs. */
class Tracked implements ConnectionObserver {
  inOffset: StreamOffset = 0;
  outOffset: StreamOffset = 0;
  ackDirty = false;
  una: SeqNum = 0;
  wnd = 0;
  /** The congestion hint last logged, so a heartbeat carries only the connections that moved. */
  hinted: CongestionHint | null = null;

  constructor(
    readonly id: ConnId,
    readonly conn: ObservableConnection,
    private readonly tap: PrimaryTap,
  ) {}

  onAccepted(data: Uint8Array, rcvNxt: SeqNum, fin: boolean): void {
    this.tap.input(this, data, rcvNxt, fin);
  }

  onQueued(data: Uint8Array, fin: boolean): void {
    this.tap.output(this, data, fin);
  }

  onSndUna(sndUna: SeqNum, sndWnd: number): void {
    this.una = sndUna;
    this.wnd = sndWnd;
    this.tap.markAck(this);
  }

  onClosed(reason: CloseReason): void {
    this.tap.closed(this, reason);
  }
}

/**
 * Whether a hint differs enough from the one logged to be worth its 32 bytes: window changes
 * always, the RTT estimate when it moved by more than an eighth (its own smoothing gain).
 */
function hintMoved(before: CongestionHint | null, now: CongestionHint): boolean {
  if (before === null || before.cwnd !== now.cwnd || before.ssthresh !== now.ssthresh) return true;
  const a = before.srttUs;
  const b = now.srttUs;
  if (a === null || b === null) return a !== b;
  return Math.abs(a - b) * 8 > a;
}

/** Writes below this size may live in a buffer the writer reuses; the send buffer copies them too. */
const COPY_BELOW = 2048;
const MS = 1000;

export class PrimaryTap {
  readonly stats: PrimaryTapStats = { replicated: 0, unreplicated: 0, records: 0 };
  private log: ReplicationLog;
  private readonly clock: () => Micros;
  private readonly epoch: () => number;
  private readonly say: (line: string) => void;
  private readonly tracked = new Map<ConnId, Tracked>();
  private readonly dirtyAcks = new Set<Tracked>();
  private readonly deps = new SegmentDeps();
  private nextId: ConnId = 1;
  private protecting = false;
  private gate: OutputGate | null = null;

  constructor(opts: PrimaryTapOptions) {
    this.log = opts.log;
    this.log.setBeforeSeal(this.flushAcksHook);
    this.clock = opts.clock;
    this.epoch = opts.epoch ?? (() => 1);
    this.say = opts.say ?? (() => undefined);
  }

  /** True while a backup is attached: connections are logged and packets wait for their LSN. */
  get isProtected(): boolean {
    return this.protecting;
  }

  /** Connections being logged now. */
  get connectionCount(): number {
    return this.tracked.size;
  }

  /** The env to give the host: the same sources, plus the hook that observes each new connection. */
  wrapEnv(env: TcpEnv): TcpEnv {
    return { ...env, onConnectionCreated: (c) => this.onCreated(c) };
  }

  /** The link to give the stack: packets leave once the backup has what they depend on. */
  wrapLink(link: Link): OutputGate {
    if (this.gate !== null) throw new Error('the tap already gates a link');
    // Each packet waits for the records it depends on (segment-deps.ts), not for the log tail.
    const gate = new OutputGate(link, this.log, (p, acked, tail) => this.deps.lsnFor(p, acked, tail));
    gate.setGating(this.protecting);
    this.gate = gate;
    return gate;
  }

  /**
   * Starts over on a fresh log, for a backup that joins this unprotected primary with nothing:
   * connections opened from now on are protected from their SYN; the ones already open stay
   * unprotected (they would need a snapshot).
   */
  setLog(log: ReplicationLog): void {
    if (this.protecting) throw new Error('the tap cannot change logs while protecting');
    this.log.setBeforeSeal(null);
    this.log = log;
    log.setBeforeSeal(this.flushAcksHook);
    this.gate?.setLog(log);
  }

  /** A backup attached and holds the log from its start: log and gate from now on. */
  protect(): void {
    if (this.protecting) return;
    this.protecting = true;
    this.gate?.setGating(true);
    this.say(`replication: protected (${this.stats.unreplicated} earlier connection(s) stay unprotected)`);
  }

  /**
   * The backup is gone: serve on, unprotected. Logging stops (a backup that joins later needs a
   * snapshot, not this log) and whatever waits for an acknowledgement leaves now.
   */
  unprotect(reason: string): void {
    if (!this.protecting) return;
    this.protecting = false;
    this.stats.unreplicated += this.tracked.size;
    for (const t of this.tracked.values()) t.conn.setObserver(null);
    this.tracked.clear();
    this.deps.clear();
    this.dirtyAcks.clear();
    this.gate?.setGating(false);
    this.say(`replication: UNPROTECTED, serving without a backup: ${reason}`);
  }

  /** Appends a heartbeat record: the clock and every logged connection's congestion state. */
  heartbeat(): void {
    if (!this.protecting) return;
    this.flushAcks();
    const congestion: CongestionHint[] = [];
    for (const t of this.tracked.values()) {
      const h = t.conn.congestionHint();
      const hint: CongestionHint = { conn: t.id, cwnd: Math.min(h.cwnd, 0xffffffff), ssthresh: Math.min(h.ssthresh, 0xffffffff), srttUs: h.srttUs, rttvarUs: h.rttvarUs };
      if (!hintMoved(t.hinted, hint)) continue;
      t.hinted = hint;
      congestion.push(hint);
    }
    this.append({ kind: 'heartbeat', epoch: this.epoch(), clockUs: this.clock(), congestion });
  }

  // ---- from the observers ----

  input(t: Tracked, data: Uint8Array, rcvNxt: SeqNum, fin: boolean): void {
    const lsn = this.append({ kind: 'input', conn: t.id, offset: t.inOffset, data, rcvNxt, fin });
    this.deps.input(t.id, data.length, fin, lsn, this.log.ackedLsn);
    t.inOffset += data.length;
    // The ack record carries TS.Recent, which this segment may have moved.
    if (t.conn.vars.tsEnabled) this.markAck(t);
  }

  output(t: Tracked, data: Uint8Array, fin: boolean): void {
    const bytes = data.length > 0 && data.length < COPY_BELOW ? data.slice() : data;
    const lsn = this.append({ kind: 'output', conn: t.id, offset: t.outOffset, data: bytes, fin });
    this.deps.output(t.id, data.length, fin, lsn, this.log.ackedLsn);
    t.outOffset += data.length;
  }

  /**
   * The client's cumulative ACK (or TS.Recent) moved. The ack record is written when the log next
   * seals a message (flushAcks through the log's beforeSeal hook), once per connection per message:
   * no segment depends on it (5.1 rule 1 is about our data, FIN and ACKs of client bytes; the
   * record only lets the backup trim its copy of the output and resume closer to the client's
   * state), so it neither waits in every pass's tag nor costs a record per client ACK.
   */
  markAck(t: Tracked): void {
    if (!t.ackDirty) {
      t.ackDirty = true;
      this.dirtyAcks.add(t);
      this.log.requestFlush();
    }
  }

  closed(t: Tracked, reason: CloseReason): void {
    this.writeAck(t);
    this.dirtyAcks.delete(t);
    this.tracked.delete(t.id);
    t.conn.setObserver(null);
    const lsn = reason === null ? this.append({ kind: 'close', conn: t.id, reason: 'closed' }) : this.append({ kind: 'reset', conn: t.id, reason });
    this.deps.closed(t.id, lsn, this.log.ackedLsn);
  }

  // ---- internals ----

  private onCreated(c: ObservableConnection): void {
    const v = c.vars;
    // An active open has no peer yet; the VIP's connections are passive. Its packets are still
    // gated, but a takeover does not carry it over.
    if (!this.protecting || v.state === 'SYN-SENT') {
      this.stats.unreplicated++;
      return;
    }
    const id = this.allocateId();
    const t = new Tracked(id, c, this);
    t.una = v.sndUna;
    t.wnd = v.sndWnd;
    this.tracked.set(id, t);
    this.stats.replicated++;
    const env = c.environment;
    const now = this.clock();
    const options: NegotiatedOptions = {
      sndMss: v.peerMss,
      rcvMss: c.config.mss,
      sndWindowScale: v.sndShift,
      rcvWindowScale: v.rcvShift,
      sackPermitted: v.sackEnabled,
      timestamps: v.tsEnabled,
      // The host's TSval clock is milliseconds plus an offset; the backup continues from it.
      tsOffset: (env.tsClock(now) - Math.floor(now / MS)) >>> 0,
      sndWindow: v.sndWnd,
      rcvWindow: Math.max(0, (v.rcvAdv - v.rcvNxt) | 0) || Math.min(65535, c.config.rcvBuf),
    };
    const lsn = this.append({ kind: 'open', conn: id, tuple: { ...c.tuple }, iss: v.iss, irs: v.irs, options });
    this.deps.opened(id, c.tuple, v.iss, v.irs, lsn);
    // A SYN-cookie connection is born established: its ack record says so (and carries TS.Recent).
    if (v.tsEnabled || v.state !== 'SYN-RECEIVED') this.markAck(t);
    c.setObserver(t);
  }

  private allocateId(): ConnId {
    // 32-bit ids, skipping any still in use after a wrap.
    for (;;) {
      const id = this.nextId;
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
      if (!this.tracked.has(id)) return id;
    }
  }

  private readonly flushAcksHook = (): void => this.flushAcks();

  private flushAcks(): void {
    if (this.dirtyAcks.size === 0) return;
    for (const t of this.dirtyAcks) this.writeAck(t);
    this.dirtyAcks.clear();
  }

  private writeAck(t: Tracked): void {
    if (!t.ackDirty) return;
    t.ackDirty = false;
    const v = t.conn.vars;
    this.append({ kind: 'ack', conn: t.id, ack: t.una, window: Math.min(t.wnd, 0xffffffff), ...(v.tsEnabled ? { tsRecent: v.tsRecent >>> 0 } : {}) });
  }

  /** Appends a record; its LSN, or 0 when the log is closed (nothing is gated then). */
  private append(r: Parameters<ReplicationLog['append']>[0]): Lsn {
    let lsn: Lsn;
    try {
      lsn = this.log.append(r);
    } catch (e) {
      // The node is shutting down around us (its log closed first): events of the connections
      // it tears down have nowhere to go, and must not throw into the stack that reports them.
      if (!(e instanceof LogClosedError)) throw e;
      this.stop();
      return 0;
    }
    this.stats.records++;
    return lsn;
  }

  /** Stops observing and logging for good (the node is going away); packets pass ungated. */
  stop(): void {
    this.protecting = false;
    for (const t of this.tracked.values()) t.conn.setObserver(null);
    this.tracked.clear();
    this.deps.clear();
    this.dirtyAcks.clear();
    this.gate?.setGating(false);
  }
}
