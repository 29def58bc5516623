// The transmission control block as plain data: every variable a replica needs to resume the
// connection, with timers stored as deadlines. Buffers and the estimator objects live beside it
// in Connection; snapshot.ts turns the whole into JSON-able data.

import type { SeqNum } from '../wire/seq.js';
import type { KeepaliveConfig, Micros, TcpErrorCode, TcpState } from './api.js';

export interface TcbVars {
  state: TcpState;
  /** Reached SYN-SENT by connect(): a RST in SYN-RECEIVED then means "connection refused". */
  activeOpen: boolean;

  // Send sequence space (RFC 9293 3.3.1). SND.MAX is the highest sequence number sent; SND.NXT
  // falls below it while retransmitting after a timeout.
  iss: SeqNum;
  sndUna: SeqNum;
  sndNxt: SeqNum;
  sndMax: SeqNum;
  /** Peer's window in bytes, already scaled. */
  sndWnd: number;
  sndWl1: SeqNum;
  sndWl2: SeqNum;
  /** Largest window the peer ever offered (RFC 5961 section 5.2, sender SWS). */
  maxSndWnd: number;

  // Receive sequence space.
  irs: SeqNum;
  rcvNxt: SeqNum;
  /** Right edge of the window we last advertised: never moved left (RFC 9293 3.8.6). */
  rcvAdv: SeqNum;
  /** Last.ACK.sent of RFC 7323 section 4.3. */
  lastAckSent: SeqNum;

  // Negotiated options.
  /** MSS the peer announced (536 when absent, RFC 9293 3.7.1). */
  peerMss: number;
  /** Path MTU limit learnt from ICMP frag-needed, as an MSS; null when none. */
  pmtuMss: number | null;
  /** Shift applied to the peer's window field (its wscale), 0 without scaling. */
  sndShift: number;
  /** Shift applied to our window field, 0 without scaling. */
  rcvShift: number;
  tsEnabled: boolean;
  /** TS.Recent and when it was set (RFC 7323 section 5.5: invalid after 24 days idle). */
  tsRecent: number;
  tsRecentAt: Micros;
  /**
   * The largest TSval sent; absent before the first. TSvals never go below it (RFC 7323 5.2: PAWS
   * "assumes that every received TCP segment ... contains a timestamp SEG.TSval whose values are
   * monotonically non-decreasing in time"), even when an input brings an earlier time than one
   * already used. See nextTsval (sender.ts).
   */
  tsLastSent?: number;
  sackEnabled: boolean;
  /** Options we put on our SYN (active open), kept for SYN retransmissions. */
  offeredWscale: number | null;

  // Closing.
  /** The application shut down its side: FIN goes after the queued data. */
  finQueued: boolean;
  /** The peer's FIN has been received (in order) and RCV.NXT covers it. */
  peerFinReceived: boolean;
  /** Sequence number of a FIN that arrived ahead of missing data. */
  peerFinSeq: SeqNum | null;
  /** close() was called: data arriving now is answered by RST, read() returns nothing. */
  userClosed: boolean;

  // Receiver's ACK policy.
  /** Segments received since the last ACK we sent (delayed ACK: ACK every second one). */
  segsSinceAck: number;
  /** An ACK must go out with the next flush. */
  ackNow: boolean;

  // Loss recovery.
  dupAcks: number;
  inRecovery: boolean;
  /** RFC 6582 "recover": SND.MAX when recovery began. */
  recover: SeqNum;
  /** RFC 6675 HighRxt: highest sequence number retransmitted during recovery. */
  highRxt: SeqNum;

  // RTT timing by one timed segment per window (Karn: never a retransmitted one).
  rttSeq: SeqNum | null;
  rttStart: Micros;

  // Timers as deadlines (null = not armed).
  rtxDeadline: Micros | null;
  delAckDeadline: Micros | null;
  persistDeadline: Micros | null;
  keepaliveDeadline: Micros | null;
  timeWaitDeadline: Micros | null;
  /** RACK reorder timer (RFC 8985 6.3); absent or null when not armed. See rack.ts. */
  rackDeadline?: Micros | null;
  /** Tail loss probe timer, the PTO (RFC 8985 7.2); absent or null when not armed. */
  tlpDeadline?: Micros | null;
  /** Consecutive retransmission timeouts (SYN or data) without progress. */
  rtxCount: number;
  persistBackoff: number;
  /** Zero-window probes sent since the peer last acknowledged anything. */
  probesUnanswered: number;
  keepaliveProbes: number;

  noDelay: boolean;
  keepalive: KeepaliveConfig | null;
  lastRecvAt: Micros;
  lastSendAt: Micros;

  /** Error to report with the next events; also what SO_ERROR would return. */
  error: TcpErrorCode | null;
  /** ICMP soft error remembered in SYN-SENT, reported if the SYN finally times out. */
  softError: TcpErrorCode | null;
}

export function initialVars(state: TcpState, iss: SeqNum, now: Micros, noDelay: boolean, keepalive: KeepaliveConfig | null): TcbVars {
  return {
    state,
    activeOpen: false,
    iss,
    sndUna: iss,
    sndNxt: iss,
    sndMax: iss,
    sndWnd: 0,
    sndWl1: 0,
    sndWl2: iss,
    maxSndWnd: 0,
    irs: 0,
    rcvNxt: 0,
    rcvAdv: 0,
    lastAckSent: 0,
    peerMss: 536,
    pmtuMss: null,
    sndShift: 0,
    rcvShift: 0,
    tsEnabled: false,
    tsRecent: 0,
    tsRecentAt: now,
    sackEnabled: false,
    offeredWscale: null,
    finQueued: false,
    peerFinReceived: false,
    peerFinSeq: null,
    userClosed: false,
    segsSinceAck: 0,
    ackNow: false,
    dupAcks: 0,
    inRecovery: false,
    recover: iss,
    highRxt: iss,
    rttSeq: null,
    rttStart: 0,
    rtxDeadline: null,
    delAckDeadline: null,
    persistDeadline: null,
    keepaliveDeadline: null,
    timeWaitDeadline: null,
    rtxCount: 0,
    persistBackoff: 0,
    probesUnanswered: 0,
    keepaliveProbes: 0,
    noDelay,
    keepalive,
    lastRecvAt: now,
    lastSendAt: now,
    error: null,
    softError: null,
  };
}

/** States in which the connection is synchronized (RFC 9293 3.5). */
export function isSynchronized(s: TcpState): boolean {
  return s !== 'CLOSED' && s !== 'LISTEN' && s !== 'SYN-SENT' && s !== 'SYN-RECEIVED';
}

/** States in which we may still send data. */
export function canSendData(s: TcpState): boolean {
  return s === 'ESTABLISHED' || s === 'CLOSE-WAIT';
}

/** States in which data from the peer is accepted (RFC 9293 3.10.7.4, seventh step). */
export function canReceiveData(s: TcpState): boolean {
  return s === 'ESTABLISHED' || s === 'FIN-WAIT-1' || s === 'FIN-WAIT-2' || s === 'SYN-RECEIVED';
}
