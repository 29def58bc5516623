// The backup's shadow connections (docs/replication.md, "Backup"): plain data built from log
// records, never transmitting. A ShadowTable applies records in LSN order and tells a listener
// (the service replica) about inputs, outputs and ends. At takeover `promote()` turns a shadow
// into a live core Connection through a TcbSnapshot and restoreConnection().

import { seqAdd, seqDiff, type SeqNum } from '../stack/wire/seq.js';
import type { FourTuple } from '../stack/wire/types.js';
import type { Micros, TcpConfig, TcpEnv, TcpState } from '../stack/tcp/api.js';
import { type Connection, restoreConnection, type TcbSnapshot } from '../stack/tcp/index.js';
import { initialVars } from '../stack/tcp/state.js';
import type { CongestionSnapshot } from '../stack/tcp/congestion.js';
import type {
  CongestionHint,
  ConnId,
  HeartbeatRecord,
  LogRecord,
  NegotiatedOptions,
  OpenRecord,
  OutputDigestRecord,
  SnapshotRecord,
  StreamBoundary,
  StreamOffset,
} from './log-records.js';
import { OutputStore } from './output-store.js';
import { snapshotRanges } from './snapshot-state.js';

const EMPTY = new Uint8Array(0);

export class Shadow {
  readonly id: ConnId;
  readonly tuple: FourTuple;
  readonly iss: SeqNum;
  readonly irs: SeqNum;
  readonly options: NegotiatedOptions;
  rcvNxt: SeqNum;
  /** Client bytes logged so far (the input stream's end offset). */
  inputEnd: StreamOffset = 0;
  peerFin = false;
  /** Bytes the primary's service wrote, from the lower of the client's ACK and `keepFrom`. */
  readonly output: OutputStore;
  ourFin = false;
  /** Which FIN was logged first, when both were: decides CLOSING/TIME-WAIT versus LAST-ACK. */
  firstFin: 'peer' | 'ours' | null = null;
  /** The client's cumulative ACK, and how far it is from ISS (absolute, so it never wraps). */
  sndUna: SeqNum;
  unaFromIss = 0;
  sndWnd: number;
  tsRecent: number | null = null;
  hint: CongestionHint | null = null;
  /** Output before this offset may be forgotten once acknowledged (the replica compared it). */
  keepFrom: StreamOffset = 0;

  constructor(r: OpenRecord, outputFrom: StreamOffset = 0) {
    this.output = new OutputStore(outputFrom);
    this.keepFrom = outputFrom;
    this.id = r.conn;
    this.tuple = { ...r.tuple };
    this.iss = r.iss;
    this.irs = r.irs;
    this.options = { ...r.options };
    this.rcvNxt = seqAdd(r.irs, 1);
    this.sndUna = r.iss;
    this.sndWnd = r.options.sndWindow;
  }

  /** The client has completed the handshake (it acknowledged our SYN, or data flowed). */
  get established(): boolean {
    return this.unaFromIss > 0 || this.inputEnd > 0 || this.peerFin;
  }

  get outputEnd(): StreamOffset {
    return this.output.end;
  }

  /** Output bytes the client acknowledged. */
  get ackedOutput(): StreamOffset {
    return Math.min(Math.max(0, this.unaFromIss - 1), this.output.end);
  }

  get finAcked(): boolean {
    return this.ourFin && this.unaFromIss - 1 > this.output.end;
  }

  /**
   * A connection the backup never saw, from its snapshot (reintegration): streams stand where the
   * primary's did, the output held from the client's ACK on.
   */
  static fromSnapshot(r: SnapshotRecord, output: Uint8Array): Shadow {
    const st = r.state;
    const s = new Shadow({ kind: 'open', lsn: r.lsn, conn: r.conn, tuple: st.tuple, iss: st.iss, irs: st.irs, options: st.options }, st.ackedOutput);
    s.rcvNxt = st.rcvNxt;
    s.inputEnd = st.inputEnd;
    s.peerFin = st.peerFin;
    // The channel hands views into its receive chunk; a shadow keeps bytes for a while.
    s.output.append(output.slice());
    s.ourFin = st.ourFin;
    s.firstFin = st.firstFin;
    s.sndUna = st.sndUna;
    s.unaFromIss = 1 + st.ackedOutput + (st.finAcked ? 1 : 0);
    s.sndWnd = st.sndWnd;
    s.tsRecent = st.tsRecent;
    return s;
  }

  /** Drops output both acknowledged by the client and compared by the replica. */
  trim(): void {
    this.output.trimTo(Math.min(this.ackedOutput, this.keepFrom));
  }
}

export interface ShadowListener {
  onOpen?(s: Shadow): void;
  /** A snapshot made a shadow: its service restarts at `boundary`, fed `input` (the bytes from there). */
  onSnapshot?(s: Shadow, boundary: StreamBoundary, input: Uint8Array): void;
  onInput?(s: Shadow, data: Uint8Array, fin: boolean): void;
  onOutput?(s: Shadow, offset: StreamOffset, data: Uint8Array, fin: boolean): void;
  /**
   * An output digest reached the head of the log: the bytes the replica wrote for it (checked
   * against the digest, or stand-ins for a replica that diverged or can no longer write them, the
   * connection then being unprotected), or null while the replica has not written them yet: the
   * log waits, and the listener calls the table's owner back when it may try again.
   */
  onOutputDigest?(s: Shadow, r: OutputDigestRecord): readonly Uint8Array[] | null;
  onGone?(s: Shadow, how: 'close' | 'reset', reason: string): void;
}

/** The last heartbeat, and when it arrived on the backup's clock. */
export interface HeartbeatSeen {
  epoch: number;
  clockUs: number;
  receivedAt: Micros;
}

export class ShadowTable {
  private readonly shadows = new Map<ConnId, Shadow>();
  private lastHeartbeat: HeartbeatSeen | null = null;

  constructor(
    private readonly clock: () => Micros,
    private readonly listener: ShadowListener = {},
  ) {}

  get size(): number {
    return this.shadows.size;
  }

  get heartbeat(): HeartbeatSeen | null {
    return this.lastHeartbeat;
  }

  get(id: ConnId): Shadow | undefined {
    return this.shadows.get(id);
  }

  all(): IterableIterator<Shadow> {
    return this.shadows.values();
  }

  /** Forgets every shadow without telling the listener (they were promoted at takeover). */
  clear(): void {
    this.shadows.clear();
  }

  /**
   * The primary's clock extrapolated to now: its last heartbeat plus the time elapsed here since
   * it was applied. Short of the truth by that heartbeat's latency (see PromoteContext.tsMarginMs).
   */
  primaryClockNow(): number | null {
    const h = this.lastHeartbeat;
    return h === null ? null : h.clockUs + Math.max(0, this.clock() - h.receivedAt);
  }

  /**
   * Applies one record; throws on a record that does not fit (the replica log then stops there).
   * 'blocked': an output digest whose bytes the replica has not written yet; nothing changed, the
   * same record is applied again later (ReplicaLog stops before it, so it is not acknowledged).
   */
  apply(r: LogRecord): void | 'blocked' {
    switch (r.kind) {
      case 'open': {
        if (this.shadows.has(r.conn)) throw new Error(`open of connection ${r.conn}, which is already open`);
        const s = new Shadow(r);
        this.shadows.set(r.conn, s);
        this.listener.onOpen?.(s);
        return;
      }
      case 'input': {
        const s = this.need(r.conn, r.kind);
        if (r.offset !== s.inputEnd) throw new Error(`input of connection ${r.conn} at offset ${r.offset}, expected ${s.inputEnd}`);
        if (s.peerFin) throw new Error(`input of connection ${r.conn} after the client's FIN`);
        s.inputEnd += r.data.length;
        s.rcvNxt = r.rcvNxt;
        if (r.fin) {
          s.peerFin = true;
          s.firstFin ??= 'peer';
        }
        this.listener.onInput?.(s, r.data, r.fin);
        return;
      }
      case 'output': {
        const s = this.need(r.conn, r.kind);
        if (r.offset !== s.output.end) throw new Error(`output of connection ${r.conn} at offset ${r.offset}, expected ${s.output.end}`);
        if (s.ourFin) throw new Error(`output of connection ${r.conn} after its FIN`);
        // The channel hands views into its receive chunk; a shadow keeps bytes for a while.
        s.output.append(r.data.slice());
        if (r.fin) {
          s.ourFin = true;
          s.firstFin ??= 'ours';
        }
        this.listener.onOutput?.(s, r.offset, r.data, r.fin);
        return;
      }
      case 'output-digest': {
        const s = this.need(r.conn, r.kind);
        if (r.offset !== s.output.end) throw new Error(`output of connection ${r.conn} at offset ${r.offset}, expected ${s.output.end}`);
        if (s.ourFin) throw new Error(`output of connection ${r.conn} after its FIN`);
        const verify = this.listener.onOutputDigest;
        if (verify === undefined) throw new Error(`output digest for connection ${r.conn} with no service replica to check it`);
        const bytes = r.length === 0 ? [] : verify.call(this.listener, s, r);
        if (bytes === null) return 'blocked';
        // The replica's bytes are now the primary's: they are what a takeover resends.
        for (const b of bytes) s.output.append(b);
        if (r.fin) {
          s.ourFin = true;
          s.firstFin ??= 'ours';
        }
        this.listener.onOutput?.(s, r.offset, EMPTY, r.fin);
        return;
      }
      case 'ack': {
        const s = this.shadows.get(r.conn);
        // An ack may trail its connection's close when they were coalesced in one pass.
        if (s === undefined) return;
        const d = seqDiff(r.ack, s.sndUna);
        if (d > 0) {
          s.sndUna = r.ack;
          s.unaFromIss += d;
        }
        s.sndWnd = r.window;
        if (r.tsRecent !== undefined) s.tsRecent = r.tsRecent;
        s.trim();
        return;
      }
      case 'close':
      case 'reset': {
        const s = this.shadows.get(r.conn);
        if (s === undefined) return;
        this.shadows.delete(r.conn);
        this.listener.onGone?.(s, r.kind, r.reason);
        return;
      }
      case 'heartbeat':
        this.onHeartbeat(r);
        return;
      case 'snapshot': {
        if (this.shadows.has(r.conn)) throw new Error(`snapshot of connection ${r.conn}, which is already open`);
        const ranges = snapshotRanges(r.state, r.retained);
        if ('error' in ranges) throw new Error(ranges.error);
        const s = Shadow.fromSnapshot(r, ranges.output);
        this.shadows.set(r.conn, s);
        this.listener.onSnapshot?.(s, r.state.boundary, ranges.input);
        return;
      }
      case 'boundary':
        // The primary keeps boundaries for itself (they bound what it retains); a backup that has
        // a connection from its open or snapshot needs none.
        return;
    }
  }

  private onHeartbeat(r: HeartbeatRecord): void {
    this.lastHeartbeat = { epoch: r.epoch, clockUs: r.clockUs, receivedAt: this.clock() };
    for (const h of r.congestion) {
      const s = this.shadows.get(h.conn);
      if (s !== undefined) s.hint = h;
    }
  }

  private need(id: ConnId, kind: string): Shadow {
    const s = this.shadows.get(id);
    if (s === undefined) throw new Error(`${kind} record for unknown connection ${id}`);
    return s;
  }
}

// ---- promotion -------------------------------------------------------------------------------

export interface PromoteContext {
  /** The backup's clock. */
  now: Micros;
  /**
   * ShadowTable.primaryClockNow(): the primary's clock extrapolated from its last heartbeat. It
   * lags the truth by the heartbeat's replication latency, which `tsMarginMs` covers.
   */
  primaryClockUs: number | null;
  /**
   * Added to the promoted TSvals beyond that estimate. The primary may have stamped segments after
   * its last heartbeat left it, for as long as that heartbeat took to be applied here; a forward
   * jump costs nothing (TSvals need only grow, RFC 7323 5.4), a backward one makes the client drop
   * our segments (PAWS). Default 1000 ms, above any replication latency that does not already
   * count as a dead link.
   */
  tsMarginMs?: number;
  /**
   * Resume without the immediate retransmission and window update: for a connection about to be
   * reset (its replica could not vouch for the output it holds), whose bytes must not leave.
   */
  quiet?: boolean;
}

const PAWS_IDLE_US = 25 * 24 * 3600 * 1_000_000;
const DEFAULT_TS_MARGIN_MS = 1000;
const MS = 1000;
const INITIAL_SSTHRESH = 0x7fffffff;

/** The TCP state a shadow stands in, or null when there is nothing left to resume. */
export function shadowState(s: Shadow): TcpState | null {
  if (!s.established) return 'SYN-RECEIVED';
  if (!s.ourFin) return s.peerFin ? 'CLOSE-WAIT' : 'ESTABLISHED';
  if (!s.peerFin) return s.finAcked ? 'FIN-WAIT-2' : 'FIN-WAIT-1';
  if (s.firstFin === 'peer') return s.finAcked ? null : 'LAST-ACK';
  return s.finAcked ? 'TIME-WAIT' : 'CLOSING';
}

/**
 * Whether the client of this shadow waits for the new primary: output or a FIN it has not
 * acknowledged (the takeover retransmits them), a SYN-ACK to repeat, or a reply the service
 * replica wrote beyond the primary's log (`replicaAhead` bytes). A takeover promotes these first:
 * an idle connection's window update can wait a slice or two, nobody is waiting for it.
 */
export function clientWaits(s: Shadow, replicaAhead: number): boolean {
  return !s.established || s.outputEnd > s.ackedOutput || (s.ourFin && !s.finAcked) || replicaAhead > 0;
}

/**
 * The env of a promoted connection: the backup's, with the TSval clock moved so that it continues
 * above every TSval the primary may have sent (5.1 rule 2). Without timestamps it is the env itself.
 */
export function promotedEnv(s: Shadow, env: TcpEnv, ctx: PromoteContext): TcpEnv {
  if (!s.options.timestamps) return env;
  const primaryMs = ctx.primaryClockUs === null ? null : Math.floor(ctx.primaryClockUs / MS);
  const margin = ctx.tsMarginMs ?? DEFAULT_TS_MARGIN_MS;
  const target = primaryMs === null ? null : (primaryMs + s.options.tsOffset + margin) >>> 0;
  if (target === null) return env;
  const adj = (target - env.tsClock(ctx.now)) | 0;
  return { ...env, tsClock: (t: Micros) => (env.tsClock(t) + adj) >>> 0 };
}

/** The TCB a shadow resumes with (exported for tests and diagnostics). */
export function shadowSnapshot(s: Shadow, state: TcpState, config: TcpConfig, now: Micros): TcbSnapshot {
  const o = s.options;
  const v = initialVars(state, s.iss, now, !config.nagle, config.keepalive);
  const synReceived = state === 'SYN-RECEIVED';
  const acked = s.ackedOutput;
  const sndUna = synReceived ? s.iss : seqAdd(s.iss, 1 + acked + (s.finAcked ? 1 : 0));
  // SND.MAX covers every byte (and the FIN) the primary logged: the client may have seen any of
  // them, and its ACKs for them must be acceptable.
  const sndMax = seqAdd(s.iss, 1 + s.output.end + (s.ourFin ? 1 : 0));
  v.activeOpen = false;
  v.sndUna = sndUna;
  v.sndNxt = synReceived ? seqAdd(s.iss, 1) : sndUna;
  v.sndMax = sndMax;
  v.sndWnd = s.sndWnd;
  v.maxSndWnd = Math.max(s.sndWnd, o.sndWindow);
  v.sndWl1 = s.irs;
  v.sndWl2 = sndUna;
  v.irs = s.irs;
  v.rcvNxt = s.rcvNxt;
  // The right edge the primary advertised is at most RCV.NXT plus its buffer (and the rounding of
  // a scaled field); starting there never shrinks the window (RFC 9293 3.8.6, RFC 7323 2.4).
  const maxEdge = synReceived ? Math.min(65535, config.rcvBuf) : Math.min(config.rcvBuf, 65535 << o.rcvWindowScale) + (1 << o.rcvWindowScale);
  v.rcvAdv = seqAdd(s.rcvNxt, maxEdge);
  v.lastAckSent = s.rcvNxt;
  v.peerMss = o.sndMss;
  v.sndShift = o.sndWindowScale;
  v.rcvShift = o.rcvWindowScale;
  v.offeredWscale = o.sndWindowScale > 0 || o.rcvWindowScale > 0 ? o.rcvWindowScale : null;
  v.sackEnabled = o.sackPermitted;
  v.tsEnabled = o.timestamps;
  if (s.tsRecent !== null) {
    v.tsRecent = s.tsRecent;
    v.tsRecentAt = now;
  } else {
    // Unknown TS.Recent: PAWS treats it as idle (RFC 7323 5.5) until the client's next segment.
    v.tsRecent = 0;
    v.tsRecentAt = now - PAWS_IDLE_US;
  }
  v.finQueued = s.ourFin;
  v.peerFinReceived = s.peerFin;
  v.recover = sndUna;
  v.highRxt = sndUna;
  v.lastRecvAt = now;
  v.lastSendAt = now;
  if (state === 'TIME-WAIT') v.timeWaitDeadline = now + config.timeWaitUs;

  const h = s.hint;
  const mss = Math.max(64, Math.min(o.sndMss, config.mss) - (o.timestamps ? 12 : 0));
  const congestion: CongestionSnapshot = {
    name: config.congestionControl,
    cwnd: h?.cwnd ?? config.initialWindowSegments * mss,
    ssthresh: h?.ssthresh ?? INITIAL_SSTHRESH,
    bytesAcked: 0,
    inRecovery: false,
    inTimeoutLoss: false,
  };
  const srtt = h?.srttUs ?? null;
  const rttvar = h?.rttvarUs ?? 0;
  return {
    version: 1,
    tuple: { ...s.tuple },
    vars: v,
    sndDataStart: synReceived ? seqAdd(s.iss, 1) : seqAdd(s.iss, 1 + acked),
    sendBuffer: s.output.slice(synReceived ? s.output.start : Math.max(acked, s.output.start), s.output.end),
    recvBuffer: new Uint8Array(0),
    outOfOrder: [],
    rto: { srttUs: srtt, rttvarUs: rttvar, baseRtoUs: srtt === null ? config.initialRtoUs : srtt + Math.max(1000, 4 * rttvar), backoffCount: 0 },
    congestion,
  };
}

/**
 * Turns a shadow into a live connection: the same ISS, SND.UNA, SND.MAX, RCV.NXT, options and
 * window scales, TSvals above the primary's, cwnd and RTT from the last heartbeat. It then at once
 * retransmits from SND.UNA (or repeats the SYN-ACK) and sends an ACK with the current window, so
 * that the client does not wait for its own RTO. Returns null for a shadow with nothing to resume.
 */
export function promote(s: Shadow, config: TcpConfig, env: TcpEnv, ctx: PromoteContext): Connection | null {
  const state = shadowState(s);
  if (state === null) return null;
  const snap = shadowSnapshot(s, state, config, ctx.now);
  const c = restoreConnection(snap, config, promotedEnv(s, env, ctx));
  if (ctx.quiet === true) return c;
  if (state === 'SYN-RECEIVED') {
    // The handshake timer fires now: the SYN-ACK goes again, with the same ISS and options.
    c.v.rtxDeadline = ctx.now;
  } else if (state === 'TIME-WAIT') {
    // Nothing to say: both FINs are acknowledged as far as the log knows. An unprompted ACK would
    // meet a client that has long closed and answers it with a RST; a client whose FIN's ACK never
    // left the primary retransmits that FIN, and TIME-WAIT acknowledges it then.
  } else {
    c.v.ackNow = true;
    if (c.v.sndMax !== c.v.sndUna) c.v.rtxDeadline = ctx.now + c.rto.rtoUs;
  }
  c.onTimer(ctx.now);
  return c;
}
