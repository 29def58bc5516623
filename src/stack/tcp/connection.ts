// The connection: one TCB (plain variables in `v`, buffers and estimators beside them) and the
// dispatch of inputs to the modules that implement each concern. Public entry points are the
// TcpConnection interface (api.ts) and the factories at the bottom.

import type { SeqNum } from '../wire/seq.js';
import { seqAdd, seqGt, seqLt } from '../wire/seq.js';
import { TCP_FIN, TCP_SYN, type FourTuple, type SackBlock, type TcpSegment } from '../wire/types.js';
import type { CloseReason, ConnectionObserver, IcmpErrorKind, Micros, ObservableConnection, TcpConfig, TcpConnection, TcpEnv, TcpErrorCode, TcpEvent, TcpState } from './api.js';
import { type CongestionController, createCongestionController } from './congestion.js';
import { RtoEstimator } from './rto.js';
import { SackScoreboard } from './sack-scoreboard.js';
import { SendBuffer } from './send-buffer.js';
import { RecvBuffer } from './recv-buffer.js';
import { ReassemblyQueue } from './reassembly.js';
import { type TcbVars, initialVars, isSynchronized } from './state.js';
import { acceptPeerSyn, processSynSent, sendSyn, sendSynAck, type CookieOptions, applyCookieOptions } from './handshake.js';
import { windowUpdateAfterRead } from './receiver.js';
import { processSynchronized } from './segment-arrives.js';
import { flush, sendAckNow } from './sender.js';
import { userAbort, userClose, userShutdown } from './close.js';
import { runTimers, nextDeadlineOf, armKeepalive } from './timers.js';
import { onIcmpError } from './icmp.js';
import type { TcbSnapshot } from './snapshot.js';
import { takeSnapshot } from './snapshot.js';

export class Connection implements TcpConnection, ObservableConnection {
  readonly tuple: FourTuple;
  readonly cfg: TcpConfig;
  readonly env: TcpEnv;
  v: TcbVars;
  readonly sndBuf = new SendBuffer();
  readonly rcvBuf = new RecvBuffer();
  readonly ooo = new ReassemblyQueue();
  rto: RtoEstimator;
  cc: CongestionController;
  readonly scoreboard = new SackScoreboard();
  /** The time of the input being processed: lets helpers stamp segments without threading it. */
  now: Micros;
  /** Replication's observer; null (the common case) costs one comparison per event. */
  observer: ConnectionObserver | null = null;
  /** Inside close() or abort(): a CLOSED reached now is the application's doing. */
  private inUserClose = false;
  private out: TcpSegment[] = [];
  private events: TcpEvent[] = [];
  /** setSendLimit's limit: null (the common case) lets the whole send buffer go. */
  private sendLimit: SeqNum | null = null;
  private wake: (() => void) | null = null;

  constructor(now: Micros, tuple: FourTuple, cfg: TcpConfig, env: TcpEnv, v: TcbVars) {
    this.tuple = tuple;
    this.cfg = cfg;
    this.env = env;
    this.v = v;
    this.now = now;
    this.rto = new RtoEstimator(cfg.initialRtoUs, cfg.minRtoUs, cfg.maxRtoUs);
    this.cc = createCongestionController(cfg.congestionControl, cfg.mss, cfg.initialWindowSegments, cfg.slowStartAckLimitSegments);
  }

  get state(): TcpState {
    return this.v.state;
  }

  // ---- inputs -------------------------------------------------------------------------------

  onSegment(now: Micros, seg: TcpSegment): void {
    this.now = now;
    // SYN+FIN is never legitimate; BSD can be told to drop it before any state processing.
    if (this.cfg.dropSynFin && (seg.flags & (TCP_SYN | TCP_FIN)) === (TCP_SYN | TCP_FIN)) return;
    // Every SND.UNA advance and in-order FIN happens while a segment is processed, in one of
    // several modules; comparing before and after here observes them all in one place. The
    // accepted bytes themselves are reported by the receive buffer (setObserver).
    const una = this.v.sndUna;
    const fin = this.v.peerFinReceived;
    switch (this.v.state) {
      case 'CLOSED':
      case 'LISTEN':
        return;
      case 'SYN-SENT':
        processSynSent(this, seg);
        break;
      default:
        processSynchronized(this, seg);
    }
    // Read after processing: an observer that saw the connection close has been removed.
    const o = this.observer;
    if (o !== null) this.reportSegmentEffects(o, una, fin);
    if (this.isOpen()) flush(this);
  }

  private reportSegmentEffects(o: ConnectionObserver, una: SeqNum, fin: boolean): void {
    const v = this.v;
    if (v.peerFinReceived && !fin) o.onAccepted(EMPTY, v.rcvNxt, true);
    if (v.sndUna !== una) o.onSndUna(v.sndUna, v.sndWnd);
  }

  onTimer(now: Micros): void {
    this.now = now;
    runTimers(this);
    if (this.v.state !== 'CLOSED') flush(this);
  }

  onIcmpError(now: Micros, err: IcmpErrorKind, quotedSeq?: SeqNum): void {
    this.now = now;
    onIcmpError(this, err, quotedSeq);
    if (this.v.state !== 'CLOSED') flush(this);
  }

  private isOpen(): boolean {
    return this.v.state !== 'CLOSED';
  }

  // ---- user calls ---------------------------------------------------------------------------

  write(now: Micros, data: Uint8Array): number {
    this.now = now;
    const s = this.v.state;
    if (this.v.finQueued || !(s === 'ESTABLISHED' || s === 'CLOSE-WAIT' || s === 'SYN-SENT' || s === 'SYN-RECEIVED')) return 0;
    const room = this.writableSpace;
    const n = Math.min(room, data.length);
    if (n === 0) return 0;
    const taken = n === data.length ? data : data.subarray(0, n);
    this.sndBuf.append(taken);
    if (this.observer !== null) this.observer.onQueued(taken, false);
    flush(this);
    return n;
  }

  /**
   * Without max, returns the next chunk exactly as it arrived (a view, no copy): callers loop until
   * null. With max, up to max bytes, copied together when they span segments.
   */
  read(now: Micros, max?: number): Uint8Array | null {
    this.now = now;
    const got = this.rcvBuf.take(max);
    if (got !== null && isSynchronized(this.v.state)) {
      windowUpdateAfterRead(this);
      flush(this);
    }
    return got;
  }

  get readableLength(): number {
    return this.rcvBuf.length;
  }

  /** The send buffer's capacity (TcpConfig.sndBuf). */
  get sendBufferSize(): number {
    return this.cfg.sndBuf;
  }

  get writableSpace(): number {
    if (this.v.finQueued) return 0;
    return Math.max(0, this.cfg.sndBuf - this.sndBuf.length);
  }

  get readEnded(): boolean {
    return this.v.peerFinReceived && this.rcvBuf.length === 0;
  }

  shutdown(now: Micros): void {
    this.now = now;
    const fin = this.v.finQueued;
    userShutdown(this);
    if (this.observer !== null && this.v.finQueued && !fin) this.observer.onQueued(EMPTY, true);
  }

  close(now: Micros): void {
    this.now = now;
    const fin = this.v.finQueued;
    this.inUserClose = true;
    try {
      userClose(this);
    } finally {
      this.inUserClose = false;
    }
    if (this.observer !== null && this.v.finQueued && !fin) this.observer.onQueued(EMPTY, true);
  }

  markBoundary(inputOffset: number, outputOffset: number): void {
    this.observer?.onBoundary?.(inputOffset, outputOffset);
  }

  abort(now: Micros): void {
    this.now = now;
    this.inUserClose = true;
    try {
      userAbort(this);
    } finally {
      this.inUserClose = false;
    }
  }

  setNoDelay(noDelay: boolean): void {
    this.v.noDelay = noDelay;
    if (noDelay && isSynchronized(this.v.state)) flush(this);
  }

  setKeepAlive(enable: boolean, idleUs?: Micros): void {
    const d = this.cfg.keepalive ?? this.cfg.keepaliveDefaults;
    this.v.keepalive = enable ? { ...d, idleUs: idleUs ?? d.idleUs } : null;
    armKeepalive(this);
  }

  // ---- outputs ------------------------------------------------------------------------------

  takeOutput(): TcpSegment[] {
    const o = this.out;
    this.out = [];
    return o;
  }

  takeEvents(): TcpEvent[] {
    const e = this.events;
    this.events = [];
    return e;
  }

  nextDeadline(): Micros | null {
    return nextDeadlineOf(this.v);
  }

  snapshot(): TcbSnapshot {
    return takeSnapshot(this);
  }

  // ---- observation (replication) --------------------------------------------------------------

  setObserver(o: ConnectionObserver | null): void {
    this.observer = o;
    // Every in-order byte passes through the receive buffer just before RCV.NXT moves over it
    // (receiver.ts pushes, then advances), hence RCV.NXT after it is the current one plus its length.
    this.rcvBuf.onPush = o === null ? null : (d) => o.onAccepted(d, seqAdd(this.v.rcvNxt, d.length), false);
  }

  get vars(): Readonly<TcbVars> {
    return this.v;
  }

  get config(): Readonly<TcpConfig> {
    return this.cfg;
  }

  get environment(): TcpEnv {
    return this.env;
  }

  setSendLimit(now: Micros, limit: SeqNum | null): void {
    const before = this.sendLimit;
    this.sendLimit = limit;
    const raised = limit === null ? before !== null : before !== null && seqGt(limit, before);
    if (!raised || !isSynchronized(this.v.state)) return;
    this.now = now;
    flush(this);
    this.wake?.();
  }

  setWakeHandler(wake: (() => void) | null): void {
    this.wake = wake;
  }

  congestionHint(): { cwnd: number; ssthresh: number; srttUs: number | null; rttvarUs: number } {
    return { cwnd: this.cc.cwnd, ssthresh: this.cc.ssthresh, srttUs: this.rto.srttUs, rttvarUs: this.rto.rttvarUs };
  }

  // ---- internal helpers used by the modules ------------------------------------------------

  /** Queues a segment for transmission. */
  push(seg: TcpSegment): void {
    this.out.push(seg);
  }

  /** Adds an event, dropping a repeat of the last readable/writable one. */
  emit(ev: TcpEvent): void {
    if (ev.type === 'readable' || ev.type === 'writable') {
      for (let i = this.events.length - 1; i >= 0; i--) if (this.events[i]!.type === ev.type) return;
    }
    this.events.push(ev);
  }

  /** Moves to CLOSED, clears timers and reports the error (if any) then `closed`. */
  enterClosed(error: TcpErrorCode | null): void {
    const v = this.v;
    if (v.state === 'CLOSED') return;
    v.state = 'CLOSED';
    if (this.observer !== null) {
      // CLOSED inside a user close() or abort() without an error means we reset (or dropped) it.
      const reason: CloseReason = error ?? (this.inUserClose ? 'aborted' : null);
      this.observer.onClosed(reason);
    }
    v.rtxDeadline = v.delAckDeadline = v.persistDeadline = v.keepaliveDeadline = v.timeWaitDeadline = null;
    if (error) {
      v.error = error;
      this.emit({ type: 'error', code: error });
    }
    this.emit({ type: 'closed' });
  }

  /** Sends a challenge ACK (RFC 5961 section 3.2, 4.2, 5.2) if the host-wide budget allows. */
  challengeAck(): void {
    if (this.env.allowChallengeAck(this.now)) sendAckNow(this);
  }

  /** Payload-bearing MSS before options: min(peer MSS, our MSS, PMTU). */
  get sendMss(): number {
    const v = this.v;
    let m = Math.min(v.peerMss, this.cfg.mss);
    if (v.pmtuMss !== null) m = Math.min(m, v.pmtuMss);
    // A peer announcing a tiny MSS would make us cut the stream into tiny segments, a known
    // resource attack (CVE-2019-11479); like Linux's tcp_min_snd_mss we keep a floor.
    return Math.max(m, 64);
  }

  /** Bytes of TCP options on a data segment (timestamps), which come out of the MSS. */
  get dataOptionBytes(): number {
    return this.v.tsEnabled ? 12 : 0;
  }

  /** Largest payload of one segment. */
  get maxSeg(): number {
    return this.sendMss - this.dataOptionBytes;
  }

  /** Sequence number of the first byte after the send buffer: where our FIN goes. */
  get sndBufEnd(): SeqNum {
    return seqAdd(this.sndDataStart, this.sndBuf.length);
  }

  /**
   * Where new data may be sent up to: the send buffer's end, or the send limit when it is lower
   * and above SND.MAX (what was sent once may always be sent again).
   */
  get sndSendableEnd(): SeqNum {
    const end = this.sndBufEnd;
    const limit = this.sendLimit;
    if (limit === null) return end;
    const reach = seqGt(limit, this.v.sndMax) ? limit : this.v.sndMax;
    return seqLt(reach, end) ? reach : end;
  }

  /** The send limit lets the FIN at `fin` go (or it went already). */
  finWithinLimit(fin: SeqNum): boolean {
    const limit = this.sendLimit;
    return limit === null || seqGt(limit, fin) || seqGt(this.v.sndMax, fin);
  }

  /**
   * Sequence number of send-buffer offset 0: ISS + 1 until data is acknowledged, then moved
   * along by the ACK processing as acknowledged bytes leave the buffer.
   */
  sndDataStart: SeqNum = 0;
  /** See TcpConnection.endedBySyn. */
  endedBySyn = false;
  /** A D-SACK block (RFC 2883) to report first on the next ACK. */
  pendingDsack: SackBlock | null = null;
}

// ---- factories ------------------------------------------------------------------------------

/** Active open: SYN-SENT with the SYN queued. */
export function createActiveConnection(now: Micros, tuple: FourTuple, config: TcpConfig, env: TcpEnv, iss?: SeqNum): Connection {
  const s = iss ?? env.isn(tuple, now);
  const v = initialVars('SYN-SENT', s, now, !config.nagle, config.keepalive);
  v.activeOpen = true;
  const c = new Connection(now, tuple, config, env, v);
  c.sndDataStart = seqAdd(s, 1);
  env.onConnectionCreated?.(c);
  sendSyn(c);
  return c;
}

/** LISTEN received a SYN: SYN-RECEIVED with the SYN-ACK queued. */
export function createPassiveConnection(now: Micros, tuple: FourTuple, synSegment: TcpSegment, config: TcpConfig, env: TcpEnv, iss?: SeqNum): Connection {
  const s = iss ?? env.isn(tuple, now);
  const v = initialVars('SYN-RECEIVED', s, now, !config.nagle, config.keepalive);
  const c = new Connection(now, tuple, config, env, v);
  c.sndDataStart = seqAdd(s, 1);
  acceptPeerSyn(c, synSegment);
  env.onConnectionCreated?.(c);
  sendSynAck(c);
  return c;
}

/**
 * A validated SYN-cookie ACK: the connection is ESTABLISHED at once with the options the cookie
 * encodes. `ackSegment` is then processed normally (it may carry data).
 */
export function createCookieConnection(
  now: Micros,
  tuple: FourTuple,
  ackSegment: TcpSegment,
  cookie: CookieOptions,
  config: TcpConfig,
  env: TcpEnv,
): Connection {
  const iss = (ackSegment.ack - 1) >>> 0;
  const v = initialVars('ESTABLISHED', iss, now, !config.nagle, config.keepalive);
  const c = new Connection(now, tuple, config, env, v);
  c.sndDataStart = ackSegment.ack;
  applyCookieOptions(c, ackSegment, cookie);
  env.onConnectionCreated?.(c);
  c.emit({ type: 'connected' });
  processSynchronized(c, ackSegment);
  flush(c);
  return c;
}

export type { CookieOptions };

const EMPTY = new Uint8Array(0);
