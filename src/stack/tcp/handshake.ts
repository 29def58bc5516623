// Opening a connection: the options we offer, what the peer's SYN or SYN-ACK negotiates, and the
// SYN-SENT state's segment processing (RFC 9293 3.10.7.3).

import { seqAdd, seqGt, seqLe } from '../wire/seq.js';
import { TCP_ACK, TCP_RST, TCP_SYN, type TcpOptions, type TcpSegment } from '../wire/types.js';
import type { Connection } from './connection.js';
import { armKeepalive, armRetransmit } from './timers.js';
import { sendRst, makeSegment, nextTsval } from './sender.js';
import { processText } from './receiver.js';

/** "the largest window-scale shift ... is 14" (RFC 7323 section 2.3). */
export const MAX_WSCALE = 14;
/** RFC 9293 3.7.1: "If an MSS Option is not received at connection setup, TCP implementations MUST assume a default send MSS of 536". */
export const DEFAULT_MSS = 536;

/** The peer's options carried by a SYN cookie (what the host's syncookie module decoded). */
export interface CookieOptions {
  mss: number;
  /** The peer's window-scale shift, or null when it did not offer the option. */
  wscale: number | null;
  sackPermitted: boolean;
  /** The peer offered timestamps (the cookie ACK then carries TSopt). */
  timestamps: boolean;
}

/** Window field of a SYN or SYN-ACK: "The window field in a segment where the SYN bit is set ... MUST NOT be scaled" (RFC 7323 2.2). */
function synWindow(c: Connection): number {
  return Math.min(65535, c.cfg.rcvBuf);
}

function ourMss(c: Connection): number {
  return c.v.pmtuMss !== null ? Math.min(c.cfg.mss, c.v.pmtuMss) : c.cfg.mss;
}

/** Sends (or re-sends) our SYN from SYN-SENT. */
export function sendSyn(c: Connection): void {
  const v = c.v;
  const cfg = c.cfg;
  const opts: TcpOptions = cfg.noOptions ? {} : { mss: ourMss(c), layout: cfg.optionLayout };
  const onlyMss = cfg.dropSynOptionsAfterRetries !== undefined && v.rtxCount >= cfg.dropSynOptionsAfterRetries;
  if (!cfg.noOptions && !onlyMss) {
    if (cfg.windowScale !== null) opts.wscale = Math.min(cfg.windowScale, MAX_WSCALE);
    if (cfg.sack) opts.sackPermitted = true;
    if (cfg.timestamps) opts.timestamp = { tsval: nextTsval(c), tsecr: 0 };
  }
  v.offeredWscale = opts.wscale ?? null;
  if (v.rtxCount === 0) v.rttStart = c.now;
  c.push(makeSegment(c, v.iss, 0, TCP_SYN, synWindow(c), opts, EMPTY));
  v.sndNxt = seqAdd(v.iss, 1);
  v.sndMax = v.sndNxt;
  v.rcvAdv = v.rcvNxt;
  armRetransmit(c);
}

/** Sends (or re-sends) our SYN-ACK from SYN-RECEIVED, echoing only what the peer offered. */
export function sendSynAck(c: Connection): void {
  const v = c.v;
  const opts: TcpOptions = c.cfg.noOptions ? {} : { mss: ourMss(c), layout: c.cfg.optionLayout };
  if (v.offeredWscale !== null) opts.wscale = v.offeredWscale;
  if (v.sackEnabled) opts.sackPermitted = true;
  if (v.tsEnabled) opts.timestamp = { tsval: nextTsval(c), tsecr: v.tsRecent };
  const win = synWindow(c);
  if (v.rtxCount === 0) v.rttStart = c.now;
  c.push(makeSegment(c, v.iss, v.rcvNxt, TCP_SYN | TCP_ACK, win, opts, EMPTY));
  v.sndNxt = seqAdd(v.iss, 1);
  v.sndMax = v.sndNxt;
  v.lastAckSent = v.rcvNxt;
  if (seqGt(seqAdd(v.rcvNxt, win), v.rcvAdv)) v.rcvAdv = seqAdd(v.rcvNxt, win);
  armRetransmit(c);
}

/**
 * Records the peer's SYN (LISTEN or simultaneous open): IRS, RCV.NXT and the negotiated options.
 * Scaling and timestamps are used only when both sides offer them (RFC 7323 sections 2.2, 3.2).
 */
export function acceptPeerSyn(c: Connection, syn: TcpSegment): void {
  const v = c.v;
  const cfg = c.cfg;
  const o = syn.options;
  v.irs = syn.seq;
  v.rcvNxt = seqAdd(syn.seq, 1);
  v.rcvAdv = v.rcvNxt;
  v.lastAckSent = v.rcvNxt;
  v.peerMss = o.mss !== undefined && o.mss > 0 ? o.mss : DEFAULT_MSS;
  if (o.wscale !== undefined && cfg.windowScale !== null && !cfg.noOptions) {
    v.sndShift = Math.min(o.wscale, MAX_WSCALE);
    v.rcvShift = Math.min(cfg.windowScale, MAX_WSCALE);
    v.offeredWscale = v.rcvShift;
  } else {
    v.sndShift = 0;
    v.rcvShift = 0;
    v.offeredWscale = null;
  }
  v.sackEnabled = cfg.sack && !cfg.noOptions && o.sackPermitted === true;
  if (cfg.timestamps && !cfg.noOptions && o.timestamp) {
    v.tsEnabled = true;
    v.tsRecent = o.timestamp.tsval;
    v.tsRecentAt = c.now;
  } else {
    v.tsEnabled = false;
  }
  // The SYN's window is never scaled.
  v.sndWnd = syn.window;
  v.maxSndWnd = Math.max(v.maxSndWnd, v.sndWnd);
  v.sndWl1 = syn.seq;
  v.sndWl2 = syn.ack;
  c.cc.setMss(c.maxSeg);
  // Data on the SYN waits until the handshake completes (RFC 9293 3.10.7.2).
  if (syn.payload.length > 0) c.ooo.insert(v.rcvNxt, syn.payload);
}

/** SYN-cookie path: the peer's SYN is gone, its options come from the cookie. */
export function applyCookieOptions(c: Connection, ack: TcpSegment, k: CookieOptions): void {
  const v = c.v;
  const cfg = c.cfg;
  v.irs = seqAdd(ack.seq, -1);
  v.rcvNxt = ack.seq;
  v.rcvAdv = seqAdd(ack.seq, synWindow(c));
  v.lastAckSent = ack.seq;
  v.sndUna = ack.ack;
  v.sndNxt = ack.ack;
  v.sndMax = ack.ack;
  v.peerMss = k.mss > 0 ? k.mss : DEFAULT_MSS;
  if (k.wscale !== null && cfg.windowScale !== null) {
    v.sndShift = Math.min(k.wscale, MAX_WSCALE);
    v.rcvShift = Math.min(cfg.windowScale, MAX_WSCALE);
  }
  v.sackEnabled = cfg.sack && k.sackPermitted;
  v.tsEnabled = cfg.timestamps && k.timestamps && ack.options.timestamp !== undefined;
  if (v.tsEnabled && ack.options.timestamp) {
    v.tsRecent = ack.options.timestamp.tsval;
    v.tsRecentAt = c.now;
  }
  v.sndWl1 = seqAdd(ack.seq, -1);
  v.sndWl2 = ack.ack;
  v.sndWnd = ack.window << v.sndShift;
  v.maxSndWnd = v.sndWnd;
  c.cc.setMss(c.maxSeg);
}

/** RFC 9293 3.10.7.3, SEGMENT ARRIVES in SYN-SENT. */
export function processSynSent(c: Connection, seg: TcpSegment): void {
  const v = c.v;
  const f = seg.flags;
  const hasAck = (f & TCP_ACK) !== 0;
  // "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless the RST bit is set, if so drop
  // the segment and return) <SEQ=SEG.ACK><CTL=RST>"
  if (hasAck && (seqLe(seg.ack, v.iss) || seqGt(seg.ack, v.sndMax))) {
    if ((f & TCP_RST) === 0) sendRst(c, seg.ack, 0, false);
    return;
  }
  if (f & TCP_RST) {
    // "If the ACK was acceptable, then signal to the user 'error: connection reset', drop the
    // segment, enter CLOSED state ... Otherwise (no ACK), drop the segment and return."
    if (hasAck) c.enterClosed('ECONNREFUSED');
    return;
  }
  if ((f & TCP_SYN) === 0) return;

  const o = seg.options;
  v.irs = seg.seq;
  v.rcvNxt = seqAdd(seg.seq, 1);
  v.rcvAdv = v.rcvNxt;
  v.lastAckSent = v.rcvNxt;
  v.peerMss = o.mss !== undefined && o.mss > 0 ? o.mss : DEFAULT_MSS;
  if (o.wscale !== undefined && v.offeredWscale !== null) {
    v.sndShift = Math.min(o.wscale, MAX_WSCALE);
    v.rcvShift = v.offeredWscale;
  } else {
    v.sndShift = 0;
    v.rcvShift = 0;
    v.offeredWscale = null;
  }
  v.sackEnabled = c.cfg.sack && !c.cfg.noOptions && o.sackPermitted === true;
  v.tsEnabled = c.cfg.timestamps && !c.cfg.noOptions && o.timestamp !== undefined;
  if (v.tsEnabled) {
    v.tsRecent = o.timestamp!.tsval;
    v.tsRecentAt = c.now;
  }
  c.cc.setMss(c.maxSeg);

  if (hasAck) {
    // "If SND.UNA > ISS (our SYN has been ACKed), change the connection state to ESTABLISHED,
    // form an ACK segment <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and send it."
    v.sndUna = seg.ack;
    c.sndDataStart = seg.ack;
    handshakeRtt(c);
    v.rtxDeadline = null;
    v.state = v.finQueued ? 'FIN-WAIT-1' : 'ESTABLISHED';
    // The SYN-ACK's window is not scaled (RFC 7323 2.2).
    v.sndWnd = seg.window;
    v.maxSndWnd = Math.max(v.maxSndWnd, v.sndWnd);
    v.sndWl1 = seg.seq;
    v.sndWl2 = seg.ack;
    c.emit({ type: 'connected' });
    armKeepalive(c);
    v.ackNow = true;
    // "If there are other controls or text in the segment, then continue processing at the sixth
    // step below where the URG bit is checked"
    if (seg.payload.length > 0 || (f & 1) !== 0) processText(c, { ...seg, seq: seqAdd(seg.seq, 1), flags: f & ~TCP_SYN });
    return;
  }
  // Simultaneous open: "Otherwise, enter SYN-RECEIVED, form a SYN,ACK segment ... and send it."
  v.state = 'SYN-RECEIVED';
  v.sndWnd = seg.window;
  v.maxSndWnd = Math.max(v.maxSndWnd, v.sndWnd);
  v.sndWl1 = seg.seq;
  v.sndWl2 = v.iss;
  v.rtxDeadline = null;
  sendSynAck(c);
  // "Data or controls that were queued for transmission may be included" -- and data that came
  // with the SYN is queued until the handshake completes, not acknowledged yet.
  if (seg.payload.length > 0) c.ooo.insert(v.rcvNxt, seg.payload);
}

const EMPTY = new Uint8Array(0);

/**
 * The handshake completed: Karn's rule allows an RTT sample only when the SYN (or SYN-ACK) was not
 * retransmitted; otherwise RFC 6298 5.7 asks for an RTO of 3 s once data transmission begins.
 */
export function handshakeRtt(c: Connection): void {
  const v = c.v;
  if (v.rtxCount === 0) c.rto.sample(Math.max(1, c.now - v.rttStart));
  else c.rto.onHandshakeCompleteAfterSynTimeout();
  v.rttSeq = null;
  v.rtxCount = 0;
  c.rto.resetBackoff();
}
