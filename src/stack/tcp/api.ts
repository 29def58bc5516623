// The public surface of the sans-IO TCP core. Everything above the core (the host's demultiplexer,
// the socket API, the conformance runner, replication) talks to the core only through these types.
// Time is an input (microseconds), randomness is an injected source, timers are data.

import type { SeqNum } from '../wire/seq.js';
import type { FourTuple, TcpSegment } from '../wire/types.js';

/** Microseconds on the caller's clock. Monotonic; the core never reads a clock itself. */
export type Micros = number;

export type TcpState =
  | 'CLOSED'
  | 'LISTEN'
  | 'SYN-SENT'
  | 'SYN-RECEIVED'
  | 'ESTABLISHED'
  | 'FIN-WAIT-1'
  | 'FIN-WAIT-2'
  | 'CLOSE-WAIT'
  | 'CLOSING'
  | 'LAST-ACK'
  | 'TIME-WAIT';

export type CongestionControlName = 'newreno' | 'cubic';

export interface KeepaliveConfig {
  idleUs: Micros;
  intervalUs: Micros;
  probes: number;
}

/** Tunables of one connection. `defaultTcpConfig()` (config.ts) gives Linux-like values. */
export interface TcpConfig {
  /** MSS we advertise (interface MTU - 40). */
  mss: number;
  /** Receive buffer in bytes: bounds the advertised window. */
  rcvBuf: number;
  /** Send buffer in bytes: bounds what write() accepts. */
  sndBuf: number;
  /** Window-scale shift we offer (RFC 7323), or null not to offer the option. */
  windowScale: number | null;
  sack: boolean;
  timestamps: boolean;
  /** Nagle's algorithm (RFC 9293 3.7.4); false is TCP_NODELAY. */
  nagle: boolean;
  /** Delayed-ACK timeout; 0 acknowledges every segment at once. */
  delayedAckUs: Micros;
  initialRtoUs: Micros;
  minRtoUs: Micros;
  maxRtoUs: Micros;
  /** SYN (or SYN-ACK) retransmissions before giving up with ETIMEDOUT. */
  synRetries: number;
  /** Data retransmissions before giving up with ETIMEDOUT. */
  maxRetransmits: number;
  /** 2*MSL: how long TIME-WAIT lasts. */
  timeWaitUs: Micros;
  /** Keepalive when enabled on the socket (off by default, as in Linux). */
  keepalive: KeepaliveConfig | null;
  keepaliveDefaults: KeepaliveConfig;
  congestionControl: CongestionControlName;
  /** Initial congestion window in segments (RFC 6928: 10). */
  initialWindowSegments: number;
  /**
   * Slow start's limit on the growth per ACK, in segments (RFC 3465's L). Undefined: none, cwnd
   * grows by every byte an ACK acknowledges, as Linux's does (see congestion-newreno.ts).
   */
  slowStartAckLimitSegments?: number;
  /** RFC 5961 challenge ACKs allowed per second, across the host. */
  challengeAckPerSecond: number;
  /** Option order on SYN and SYN-ACK. */
  optionLayout: 'linux' | 'freebsd';
  /**
   * BSD's tcp_output puts the FIN again on every ACK it sends while our FIN is unacknowledged
   * (FIN-WAIT-1, CLOSING, LAST-ACK). Legal either way; the FreeBSD profile turns it on so that
   * conformance scripts match. Undefined means off.
   */
  resendFinWithAck?: boolean;
  /**
   * From this SYN retransmission on, the SYN carries only MSS, in case a middlebox drops SYNs with
   * other options. FreeBSD's net.inet.tcp.rexmit_drop_options=1 is 3; undefined means never.
   */
  dropSynOptionsAfterRetries?: number;
  /**
   * A SYN that starts a new incarnation (sequence number above RCV.NXT, or a newer timestamp per
   * RFC 6191) ends TIME-WAIT instead of getting a challenge ACK (RFC 9293 3.6.1; Linux and BSD do
   * this). The connection then reports `endedBySyn` and the host hands the SYN to its listener.
   * Undefined means off (RFC 5961 4.2, what the conformance suite's STANDARD branch expects).
   */
  timeWaitReuse?: boolean;
  /**
   * Accept non-RST segments without TSopt on a connection that negotiated timestamps (FreeBSD
   * net.inet.tcp.tolerate_missing_ts=1, Linux). Undefined means drop them, as RFC 7323 3.2 says.
   */
  tolerateMissingTimestamps?: boolean;
  /** Silently drop segments with both SYN and FIN set (FreeBSD net.inet.tcp.drop_synfin). */
  dropSynFin?: boolean;
  /**
   * RACK-TLP loss detection (RFC 8985) on connections that negotiated SACK. Undefined means on;
   * false keeps RFC 6675's DupThresh rule alone (what FreeBSD's default stack does).
   */
  rack?: boolean;
  /** Floor of the tail loss probe timeout (RFC 8985 7.2); undefined means 2 ms (Linux). */
  tlpMinUs?: Micros;
  /** RFC 8985 7.2 WCDelAckT, added to the PTO when one segment is in flight; undefined means 200 ms. */
  tlpDelAckUs?: Micros;
  /** Send no TCP options at all, not even MSS (FreeBSD's TCP_NOOPT socket option). */
  noOptions?: boolean;
  /**
   * ICMP port/protocol unreachable, administratively prohibited and TTL exceeded abort a
   * connection still in SYN-SENT (FreeBSD net.inet.tcp.icmp_may_rst, default 1). Undefined means on.
   */
  icmpMayReset?: boolean;
}

/** Injected sources, shared by every connection of one host. */
export interface TcpEnv {
  /** A uniformly random unsigned 32-bit integer. */
  random(): number;
  /** RFC 6528 initial sequence number for a 4-tuple at a time. */
  isn(tuple: FourTuple, now: Micros): SeqNum;
  /** RFC 7323 timestamp clock value (e.g. milliseconds) at a time. */
  tsClock(now: Micros): number;
  /** Ticks per second of tsClock, for RTT measurement from timestamps (RFC 7323 4); 1000 when absent. */
  tsClockHz?: number;
  /** Host-wide RFC 5961 challenge-ACK budget: returns false when the limit is reached. */
  allowChallengeAck(now: Micros): boolean;
  /**
   * Called once per connection the factories create (passive, SYN-cookie and active opens), after
   * the peer's SYN options are known and before any segment is queued or text processed, so that
   * replication can install its observer before the first event it must log.
   */
  onConnectionCreated?(c: ObservableConnection): void;
}

/** Why a connection reached CLOSED: orderly (null), aborted by the application, or an error. */
export type CloseReason = TcpErrorCode | 'aborted' | null;

/**
 * Replication's view of one connection (docs/replication.md, "capture at the core"). Called
 * synchronously while the TCB changes, so a record can be logged before any segment depending on
 * it leaves the host.
 */
export interface ConnectionObserver {
  /** RCV.NXT moved over these in-order peer bytes (possibly none) and, when fin, the peer's FIN. */
  onAccepted(data: Uint8Array, rcvNxt: SeqNum, fin: boolean): void;
  /** The application queued bytes (write) or its FIN (shutdown, close), in stream order. */
  onQueued(data: Uint8Array, fin: boolean): void;
  /** SND.UNA advanced: the peer's cumulative ACK, with its window in bytes (scaled). */
  onSndUna(sndUna: SeqNum, sndWnd: number): void;
  onClosed(reason: CloseReason): void;
  /**
   * The service declared a boundary (ARCHITECTURE.md 5.5): at input stream offset `inputOffset`
   * and output offset `outputOffset` its per-connection state is empty. The core does not
   * interpret it; replication keeps client bytes from the latest one.
   */
  onBoundary?(inputOffset: number, outputOffset: number): void;
}

/** A connection that takes an observer and exposes what replication reads at open and heartbeat. */
export interface ObservableConnection extends TcpConnection {
  setObserver(o: ConnectionObserver | null): void;
  /** The TCB variables (read-only for observers). */
  readonly vars: Readonly<import('./state.js').TcbVars>;
  readonly config: Readonly<TcpConfig>;
  readonly environment: TcpEnv;
  /** Congestion window, slow-start threshold and RTT estimate, for heartbeats. */
  congestionHint(): { cwnd: number; ssthresh: number; srttUs: number | null; rttvarUs: number };
  /** The whole TCB with its buffers (copied), for a reintegration snapshot. */
  snapshot(): import('./snapshot.js').TcbSnapshot;
  /**
   * Output commit at the source (docs/replication.md): new data and the FIN are sent only below
   * `limit`, the end of what the backup has acknowledged; null lifts it. Bytes up to SND.MAX were
   * sent before and may always be sent again. Raising it sends what it lets go at once.
   */
  setSendLimit(now: Micros, limit: SeqNum | null): void;
}

export type TcpErrorCode = 'ECONNRESET' | 'ECONNREFUSED' | 'ETIMEDOUT' | 'EHOSTUNREACH' | 'ENETUNREACH' | 'EPIPE';

/** What happened on a connection since the last takeEvents(), in order. */
export type TcpEvent =
  | { type: 'connected' } // reached ESTABLISHED
  | { type: 'readable' } // in-order bytes are waiting for read()
  | { type: 'writable' } // send buffer space was freed
  | { type: 'peer-fin' } // the peer finished sending; read() returns null after the data
  | { type: 'error'; code: TcpErrorCode }
  | { type: 'closed' }; // the connection reached CLOSED (after TIME-WAIT, LAST-ACK or abort)

/** ICMP errors the host hands to the connection they quote. */
export type IcmpErrorKind =
  | { kind: 'unreachable'; code: number } // type 3, any code except 4
  | { kind: 'frag-needed'; mtu: number } // type 3 code 4: PMTU
  | { kind: 'time-exceeded' };

/** One connection: the TCB and the functions that move it. */
export interface TcpConnection {
  readonly tuple: FourTuple;
  readonly state: TcpState;

  /** A segment addressed to this connection arrived. */
  onSegment(now: Micros, seg: TcpSegment): void;
  /** Called at or after nextDeadline(). Extra calls are harmless. */
  onTimer(now: Micros): void;
  /**
   * `quotedSeq` is the sequence number in the TCP header the ICMP message quotes; when given, the
   * error is ignored unless SND.UNA <= quotedSeq < SND.NXT (RFC 5927 section 4.1).
   */
  onIcmpError(now: Micros, err: IcmpErrorKind, quotedSeq?: SeqNum): void;

  /** Appends to the send buffer; returns how many bytes were taken (0 when full). */
  write(now: Micros, data: Uint8Array): number;
  /** Takes up to max in-order bytes; returns null when nothing is buffered. */
  read(now: Micros, max?: number): Uint8Array | null;
  readonly readableLength: number;
  readonly writableSpace: number;
  /** The send buffer's capacity (TcpConfig.sndBuf). */
  readonly sendBufferSize: number;
  /** The peer's FIN was received and every byte before it has been read. */
  readonly readEnded: boolean;
  /**
   * True when the segment just processed was a SYN that ended TIME-WAIT (TcpConfig.timeWaitReuse):
   * the connection is CLOSED and the host should give that same SYN to the listener.
   */
  readonly endedBySyn?: boolean;

  /**
   * Passes a service boundary (stream offsets, see ConnectionObserver.onBoundary) to whoever
   * observes the connection; a no-op without an observer.
   */
  markBoundary?(inputOffset: number, outputOffset: number): void;

  /**
   * Who to tell when the connection produced output or events outside the calls above (a send
   * limit that moved, setSendLimit): the host marks it for its next pass.
   */
  setWakeHandler?(wake: (() => void) | null): void;

  /** Send FIN after the queued data (half-close). */
  shutdown(now: Micros): void;
  /** Full close: like shutdown, and RST if unread data is discarded (RFC 9293 3.6 / RFC 2525). */
  close(now: Micros): void;
  /** Send RST (when the state calls for one) and go to CLOSED at once. */
  abort(now: Micros): void;

  setNoDelay(noDelay: boolean): void;
  setKeepAlive(enable: boolean, idleUs?: Micros): void;

  /** Segments to transmit, oldest first; the caller wraps them in IP. */
  takeOutput(): TcpSegment[];
  takeEvents(): TcpEvent[];
  /** The earliest time the core wants onTimer(), or null when no timer runs. */
  nextDeadline(): Micros | null;
}
