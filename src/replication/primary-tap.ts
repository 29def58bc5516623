// The primary's capture (docs/replication.md, "Primary"): every connection the host creates gets
// an observer through the TcpEnv hook, and its events become `open`, `input`, `output`, `ack`,
// `close` and `reset` records on one ReplicationLog, in the order they happen. The tap also builds
// heartbeat records with each connection's congestion state. Packets are held by the OutputGate it
// hands out. Without a backup the node is unprotected: nothing is logged and packets pass, but
// every connection is still followed (stream offsets, client bytes since its last service
// boundary) so that a backup joining later is brought up to date: reintegration (5.5), a
// `snapshot` record per connection, in the attach's slices when its retained input reaches back
// to its last boundary, else at its next boundary.

import type { Link } from '../tun/link.js';
import type { CloseReason, ConnectionObserver, Micros, ObservableConnection, TcpEnv } from '../stack/tcp/api.js';
import { seqAdd, type SeqNum } from '../stack/wire/seq.js';
import { ipv4ToString } from '../stack/wire/types.js';
import { negotiatedOptions, snapshotOffsetsDisagree, snapshotRecord } from './connection-snapshot.js';
import type { CongestionHint, ConnId, Lsn, StreamBoundary, StreamOffset } from './log-records.js';
import { outputDigest } from './output-digest.js';
import { OutputGate } from './output-gate.js';
import { SegmentDeps } from './segment-deps.js';
import { LogClosedError, type ReplicationLog } from './replication-log.js';
import { RetainedInput, type RetentionBudget, retentionBudget } from './retained-input.js';

export interface PrimaryTapOptions {
  log: ReplicationLog;
  /** The driver's clock (microseconds): heartbeats carry it, the backup extrapolates TSvals from it. */
  clock: () => Micros;
  /** The node's epoch, carried by heartbeats. Default 1. */
  epoch?: () => number;
  /** One line per change of protection. */
  say?: (line: string) => void;
  /** Bounds on the client bytes kept since each connection's last boundary (retained-input.ts). */
  retention?: RetentionBudget;
  /**
   * Reintegration progress: on attach, then every 100 snapshots or every second while
   * connections wait for a boundary, and when none is left.
   */
  onReintegration?: (p: ReintegrationProgress) => void;
  /**
   * How the connections open at attach are brought over: in slices of at most `sliceMs`, the next
   * one run by `schedule` (setImmediate in the node) so that heartbeats and I/O go on between
   * them. Default: all in the attach's turn.
   */
  attachSlices?: AttachSlices;
  /**
   * Runs a pass of the host's driver soon (Stack.kick): output that an acknowledgement let go
   * (setSendLimit) is gathered there. Without it, it waits for the host's next pass.
   */
  kick?: () => void;
}

export interface AttachSlices {
  sliceMs: number;
  schedule: (run: () => void) => void;
  /** Milliseconds, for the slice budget. Default performance.now(). */
  now?: () => number;
}

/** Snapshots taken between two looks at the clock: one costs some microseconds. */
const SNAPSHOTS_PER_CLOCK_CHECK = 8;

export interface ReintegrationProgress {
  /** Snapshots logged in this backup session. */
  snapshots: number;
  /** Open connections not yet in the log: their turn in the attach's slices, or their service's next boundary. */
  pending: number;
  /** Bytes the snapshots carried (retained input and unacknowledged output). */
  bytes: number;
  /** Nothing left to bring over. */
  done: boolean;
}

export interface PrimaryTapStats {
  /** Connections logged from their SYN (or SYN-cookie ACK). */
  replicated: number;
  /** Connections brought to a backup by a snapshot (reintegration). */
  snapshots: number;
  /** Snapshots not logged because their stream offsets disagreed with their sequence numbers. */
  snapshotsRefused: number;
  /** Connections that live outside the log: opened while unprotected, or active opens. */
  unreplicated: number;
  records: number;
}

/** A connection the tap follows; `logged` while it is in the current backup session's log. */
class Tracked implements ConnectionObserver {
  inOffset: StreamOffset = 0;
  outOffset: StreamOffset = 0;
  logged = false;
  ackDirty = false;
  una: SeqNum = 0;
  wnd = 0;
  /** The congestion hint last logged, so a heartbeat carries only the connections that moved. */
  hinted: CongestionHint | null = null;
  /** A snapshot of it was refused (its offsets disagreed with its sequence numbers); said once. */
  snapshotRefused = false;

  constructor(
    readonly id: ConnId,
    readonly conn: ObservableConnection,
    private readonly tap: PrimaryTap,
    readonly retained: RetainedInput,
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
    if (this.logged) this.tap.markAck(this);
  }

  onClosed(reason: CloseReason): void {
    this.tap.closed(this, reason);
  }

  onBoundary(inputOffset: StreamOffset, outputOffset: StreamOffset): void {
    this.tap.boundary(this, { input: inputOffset, output: outputOffset });
  }
}

/** Where a connection adopted at takeover stands: its stream ends and its replica's retained input. */
export interface AdoptedStreams {
  inputEnd: StreamOffset;
  outputEnd: StreamOffset;
  /** Client bytes from the replica's latest boundary to inputEnd, or null when it kept none. */
  sinceBoundary: { boundary: StreamBoundary; data: Uint8Array } | null;
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
/**
 * Writes from this size on go into the log as digests when the service is deterministic: the bulk
 * of a download. Smaller ones (an HTTP header with its Date, which a replica a second later writes
 * differently) cost little as bytes, and as bytes a difference is only counted, never fatal.
 */
const DIGEST_FROM_BYTES = 4096;
const MS = 1000;

export class PrimaryTap {
  readonly stats: PrimaryTapStats = { replicated: 0, snapshots: 0, snapshotsRefused: 0, unreplicated: 0, records: 0 };
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
  private readonly budget: RetentionBudget;
  private readonly onReintegration: (p: ReintegrationProgress) => void;
  /** Open connections outside the log while protecting: they wait for a boundary. */
  private readonly pending = new Set<Tracked>();
  private reint = { snapshots: 0, bytes: 0, reportedAt: 0, lastLsn: 0 };
  /** Connections open at attach whose turn has not come yet, from `attachNext` on. */
  private attachQueue: Tracked[] = [];
  private attachNext = 0;
  /** Bumped when a backup session ends: a slice scheduled for the old one does nothing. */
  private attachSession = 0;
  private readonly slices: AttachSlices | null;
  /** Output goes into the log as digests (a deterministic service), not as bytes. */
  private digests = false;
  private readonly kick: () => void;
  private stopListening: () => void;

  constructor(opts: PrimaryTapOptions) {
    this.log = opts.log;
    this.log.setBeforeSeal(this.flushAcksHook);
    this.stopListening = this.log.onAdvance(this.committedHook);
    this.kick = opts.kick ?? (() => undefined);
    this.clock = opts.clock;
    this.epoch = opts.epoch ?? (() => 1);
    this.say = opts.say ?? (() => undefined);
    this.budget = opts.retention ?? retentionBudget();
    this.onReintegration = opts.onReintegration ?? (() => undefined);
    this.slices = opts.attachSlices ?? null;
  }

  /**
   * Logs the service's output as length and digest (`output-digest`) instead of the bytes: only for
   * a service whose backup replica writes the same bytes (Service.deterministic). The backup then
   * acknowledges an output only once its replica has written it, so rule 3 still holds.
   */
  setOutputDigests(on: boolean): void {
    this.digests = on;
  }

  get outputDigests(): boolean {
    return this.digests;
  }

  /** True while a backup is attached: connections are logged and packets wait for their LSN. */
  get isProtected(): boolean {
    return this.protecting;
  }

  /** Connections being logged now. */
  get connectionCount(): number {
    let n = 0;
    for (const t of this.tracked.values()) if (t.logged) n++;
    return n;
  }

  /**
   * Open connections a backup would not have (zero without a backup: nothing is protected then).
   * While protecting, those waiting for their service's next boundary.
   */
  get pendingCount(): number {
    let n = 0;
    for (const t of this.pending) if (needsReplica(t.conn)) n++;
    for (let i = this.attachNext; i < this.attachQueue.length; i++) if (this.awaitsTurn(this.attachQueue[i]!)) n++;
    return n;
  }

  /**
   * The LSN of the last record that brought a connection over (snapshot, or open at attach): the
   * backup has every open connection once it acknowledged this and none is pending.
   */
  get reintegrationLsn(): number {
    return this.reint.lastLsn;
  }

  /** Client bytes kept for reintegration, over all connections. */
  get retainedBytes(): number {
    return this.budget.used;
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
   * protect() then brings every open connection into it.
   */
  setLog(log: ReplicationLog): void {
    if (this.protecting) throw new Error('the tap cannot change logs while protecting');
    this.log.setBeforeSeal(null);
    this.stopListening();
    this.log = log;
    log.setBeforeSeal(this.flushAcksHook);
    this.stopListening = log.onAdvance(this.committedHook);
    this.gate?.setLog(log);
  }

  /**
   * A backup attached and holds the log from its start: log and gate from now on. Connections
   * opened from now on are logged from their SYN. Those already open go in one by one, each at
   * its own attach point: a half-open one as `open`, the others as `snapshot` when their
   * retained input reaches back to their last boundary (the rest wait for their next boundary,
   * reintegration, 5.5). A snapshot is one moment of its connection, taken in one go, and the
   * connection's later events follow it in the log; until then the connection is outside the
   * log like before the attach, its packets pass ungated (segment-deps.ts knows nothing of it)
   * and status does not call the node protected. With `attachSlices` the snapshots are taken in
   * slices across turns: at 4000 connections one turn stalled the primary 140-360 ms, past what
   * heartbeats every 50 ms and a dead-after of 300 ms tolerate.
   */
  protect(): void {
    if (this.protecting) return;
    this.protecting = true;
    this.gate?.setGating(true);
    this.reint = { snapshots: 0, bytes: 0, reportedAt: this.clock(), lastLsn: 0 };
    this.attachQueue = [];
    this.attachNext = 0;
    for (const t of this.tracked.values()) if (!t.logged && needsReplica(t.conn)) this.attachQueue.push(t);
    this.say(`replication: protected from now on; ${this.attachQueue.length} open connection(s) to bring over`);
    this.report(true);
    this.attachSlice(this.attachSession);
  }

  /**
   * A connection promoted at takeover joins the tap as if it had been here all along: its stream
   * offsets continue the shadow's and its retained input is the replica's, so that the next
   * backup can be brought up to date on it.
   */
  adopt(c: ObservableConnection, s: AdoptedStreams): void {
    const id = this.allocateId();
    const from = s.sinceBoundary === null ? s.inputEnd : s.inputEnd - s.sinceBoundary.data.length;
    const retained = new RetainedInput(this.budget, from, s.sinceBoundary?.boundary ?? null);
    if (s.sinceBoundary !== null) retained.append(s.sinceBoundary.data);
    const t = new Tracked(id, c, this, retained);
    t.inOffset = s.inputEnd;
    t.outOffset = s.outputEnd;
    t.una = c.vars.sndUna;
    t.wnd = c.vars.sndWnd;
    this.tracked.set(id, t);
    c.setObserver(t);
    if (this.protecting && needsReplica(c) && !this.catchUp(t)) this.pending.add(t);
  }

  /**
   * The backup is gone: serve on, unprotected. Logging stops (a backup that joins later gets
   * snapshots, not this log) and whatever waits for an acknowledgement leaves now.
   */
  unprotect(reason: string): void {
    if (!this.protecting) return;
    this.protecting = false;
    for (const t of this.tracked.values()) {
      if (t.logged) this.stats.unreplicated++;
      t.logged = false;
      t.ackDirty = false;
      t.hinted = null;
    }
    this.dirtyAcks.clear();
    this.pending.clear();
    this.endAttach();
    this.deps.clear();
    this.gate?.setGating(false);
    this.liftSendLimits();
    this.say(`replication: UNPROTECTED, serving without a backup: ${reason}`);
  }

  /** Appends a heartbeat record: the clock and every logged connection's congestion state. */
  heartbeat(): void {
    if (!this.protecting) return;
    this.flushAcks();
    const congestion: CongestionHint[] = [];
    for (const t of this.tracked.values()) {
      if (!t.logged) continue;
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
    t.retained.append(data);
    if (t.logged) {
      const lsn = this.append({ kind: 'input', conn: t.id, offset: t.inOffset, data, rcvNxt, fin });
      this.deps.input(t.id, data.length, fin, lsn, this.log.ackedLsn);
    }
    t.inOffset += data.length;
    // The ack record carries TS.Recent, which this segment may have moved.
    if (t.logged && t.conn.vars.tsEnabled) this.markAck(t);
  }

  output(t: Tracked, data: Uint8Array, fin: boolean): void {
    if (t.logged) {
      let lsn: Lsn;
      if (this.digests && data.length >= DIGEST_FROM_BYTES) lsn = this.append({ kind: 'output-digest', conn: t.id, offset: t.outOffset, length: data.length, digest: outputDigest([data]), fin });
      else {
        const bytes = data.length > 0 && data.length < COPY_BELOW ? data.slice() : data;
        lsn = this.append({ kind: 'output', conn: t.id, offset: t.outOffset, data: bytes, fin });
      }
      this.deps.output(t.id, data.length, fin, lsn, this.log.ackedLsn);
    }
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
    this.dirtyAcks.delete(t);
    this.pending.delete(t);
    this.tracked.delete(t.id);
    t.conn.setObserver(null);
    t.retained.release();
    if (!t.logged) return;
    this.writeAck(t);
    const lsn = reason === null ? this.append({ kind: 'close', conn: t.id, reason: 'closed' }) : this.append({ kind: 'reset', conn: t.id, reason });
    this.deps.closed(t.id, lsn, this.log.ackedLsn);
  }

  boundary(t: Tracked, b: StreamBoundary): void {
    t.retained.boundaryAt(b);
    if (!this.pending.has(t) || !this.protecting) return;
    if (this.catchUp(t)) {
      this.pending.delete(t);
      this.report(false);
    }
  }

  // ---- internals ----

  /** Not yet brought over, still open, and not given up to a boundary wait. */
  private awaitsTurn(t: Tracked): boolean {
    return !t.logged && this.tracked.get(t.id) === t && needsReplica(t.conn);
  }

  /**
   * Brings queued connections over until the slice's time is up, then leaves the rest to the
   * next slice. A connection that closed, or went to TIME-WAIT, while it waited needs nothing.
   */
  private attachSlice(session: number): void {
    if (session !== this.attachSession || !this.protecting) return;
    const s = this.slices;
    const now = s?.now ?? (() => performance.now());
    const until = s === null ? Infinity : now() + s.sliceMs;
    const q = this.attachQueue;
    let n = 0;
    while (this.attachNext < q.length) {
      const t = q[this.attachNext++]!;
      if (!this.awaitsTurn(t)) continue;
      if (!this.catchUp(t)) this.pending.add(t);
      if (++n % SNAPSHOTS_PER_CLOCK_CHECK === 0 && this.attachNext < q.length && now() >= until) {
        // Each slice's snapshots go as their own message, so the backup's turn that decodes one
        // stays about as short as the slice that encoded it, and works while the next is taken.
        this.log.flush();
        (s as AttachSlices).schedule(() => this.attachSlice(session));
        this.report(false);
        return;
      }
    }
    this.attachQueue = [];
    this.attachNext = 0;
    if (n > 0) this.report(false);
    this.say(`replication: attach done (${this.reint.snapshots} connection(s) brought over by snapshot, ${this.pending.size} waiting for a service boundary)`);
  }

  /** The backup session ended: what waited for its turn stays outside the log. */
  private endAttach(): void {
    this.attachSession++;
    this.attachQueue = [];
    this.attachNext = 0;
  }

  private onCreated(c: ObservableConnection): void {
    const v = c.vars;
    // An active open has no peer yet; the VIP's connections are passive. Its packets are still
    // gated, but a takeover does not carry it over.
    if (v.state === 'SYN-SENT') {
      this.stats.unreplicated++;
      return;
    }
    const t = new Tracked(this.allocateId(), c, this, new RetainedInput(this.budget));
    t.una = v.sndUna;
    t.wnd = v.sndWnd;
    this.tracked.set(t.id, t);
    c.setObserver(t);
    if (!this.protecting) {
      this.stats.unreplicated++;
      return;
    }
    this.stats.replicated++;
    this.logOpen(t);
  }

  private logOpen(t: Tracked): void {
    const c = t.conn;
    const v = c.vars;
    t.logged = true;
    const lsn = this.append({ kind: 'open', conn: t.id, tuple: { ...c.tuple }, iss: v.iss, irs: v.irs, options: negotiatedOptions(c, this.clock()) });
    this.deps.opened(t.id, c.tuple, v.iss, v.irs, lsn);
    c.setSendLimit(this.clock(), seqAdd(v.iss, 1));
    // A SYN-cookie connection is born established: its ack record says so (and carries TS.Recent).
    if (v.tsEnabled || v.state !== 'SYN-RECEIVED') this.markAck(t);
  }

  /**
   * Brings a connection the backup does not have into the log, if it can be now: a half-open one
   * as an `open` (nothing has flowed yet), another as a `snapshot` when the client bytes since its
   * last boundary are all still here. False when it must wait for its next boundary.
   */
  private catchUp(t: Tracked): boolean {
    const c = t.conn;
    if (c.vars.state === 'SYN-RECEIVED' && t.inOffset === 0) {
      this.logOpen(t);
      this.reint.lastLsn = this.log.lastLsn;
      return true;
    }
    if (!t.retained.complete) return false;
    const r = snapshotRecord(t.id, c, this.clock(), t.inOffset, t.outOffset, t.retained);
    const wrong = snapshotOffsetsDisagree(r.state);
    if (wrong !== null) {
      this.stats.snapshotsRefused++;
      if (!t.snapshotRefused) this.say(`replication: connection ${ipv4ToString(c.tuple.remoteAddr)}:${c.tuple.remotePort} not brought over, it stays unprotected: ${wrong}`);
      t.snapshotRefused = true;
      return false;
    }
    t.logged = true;
    const lsn = this.append(r);
    // Every packet of the connection so far, data and ACKs, depends on the snapshot.
    const st = r.state;
    this.deps.snapshot(t.id, st.tuple, st.iss, st.irs, lsn, st.outputEnd + (st.ourFin ? 1 : 0), st.inputEnd + (st.peerFin ? 1 : 0));
    // Nothing new goes out until the backup has the snapshot (what was sent may be sent again).
    c.setSendLimit(this.clock(), seqAdd(st.iss, 1));
    this.reint.lastLsn = this.log.lastLsn;
    this.stats.snapshots++;
    this.reint.snapshots++;
    for (const range of r.retained) this.reint.bytes += range.data.length;
    this.markAck(t);
    return true;
  }

  /** Progress of reintegration: at attach, when done, else every 100 snapshots or every second. */
  private report(force: boolean): void {
    const now = this.clock();
    const pending = this.pendingCount;
    const due = force || pending === 0 || this.reint.snapshots % 100 === 0 || now - this.reint.reportedAt >= 1_000_000;
    if (!due) return;
    this.reint.reportedAt = now;
    this.onReintegration({ snapshots: this.reint.snapshots, pending, bytes: this.reint.bytes, done: pending === 0 });
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

  /**
   * Output commit at the source (5.1 rule 1): a logged connection sends new data and its FIN only
   * as far as the backup has acknowledged its output records, so its segments are built when they
   * may leave rather than built, held by the gate and copied out later from a cold cache. The gate
   * still checks every packet; these pass it at once.
   */
  private readonly committedHook = (acked: Lsn): void => {
    let now = -1;
    this.deps.acknowledged(acked, (id, limit) => {
      const t = this.tracked.get(id);
      if (t === undefined || !t.logged) return;
      if (now < 0) now = this.clock();
      t.conn.setSendLimit(now, limit);
    });
    if (now >= 0) this.kick();
  };

  /** Unprotected: every connection sends what it has. */
  private liftSendLimits(conns: readonly ObservableConnection[] = this.trackedConnections()): void {
    if (conns.length === 0) return;
    const now = this.clock();
    for (const c of conns) c.setSendLimit(now, null);
    this.kick();
  }

  private trackedConnections(): ObservableConnection[] {
    return [...this.tracked.values()].map((t) => t.conn);
  }

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
    this.stopListening();
    // Not now: stop() may run inside a connection's own callback (a closed log under append).
    const conns = this.trackedConnections();
    queueMicrotask(() => this.liftSendLimits(conns));
    for (const t of this.tracked.values()) {
      t.conn.setObserver(null);
      t.retained.release();
    }
    this.tracked.clear();
    this.dirtyAcks.clear();
    this.pending.clear();
    this.endAttach();
    this.deps.clear();
    this.gate?.setGating(false);
  }
}

/** Connections in TIME-WAIT or CLOSED need nothing on a backup (5.5). */
function needsReplica(c: ObservableConnection): boolean {
  const s = c.vars.state;
  return s !== 'TIME-WAIT' && s !== 'CLOSED';
}
