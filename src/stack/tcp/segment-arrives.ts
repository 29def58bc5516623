// SEGMENT ARRIVES in SYN-RECEIVED or a synchronized state (RFC 9293 3.10.7.4): PAWS, the
// acceptability test, RST and SYN checks (RFC 5961), the ACK, then the text and FIN.

import { type SeqNum, seqAdd, seqGe, seqLe, seqLt } from '../wire/seq.js';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type SackBlock, type TcpSegment } from '../wire/types.js';
import type { Connection } from './connection.js';
import { afterOurFinAcked, processTimeWait } from './close.js';
import { handshakeRtt, sendSynAck } from './handshake.js';
import { deliverQueued, processText, receiveWindow } from './receiver.js';
import { processAck } from './recovery.js';
import { sendRst } from './sender.js';
import { armKeepalive } from './timers.js';

/** RFC 7323 5.5: TS.Recent is invalid after 24 days of idleness. */
const PAWS_IDLE_US = 24 * 24 * 3600 * 1_000_000;

function segLength(seg: TcpSegment): number {
  return seg.payload.length + (seg.flags & TCP_SYN ? 1 : 0) + (seg.flags & TCP_FIN ? 1 : 0);
}

/** RFC 9293 3.10.7.4, first check: the four cases of segment acceptability. */
export function isAcceptable(rcvNxt: SeqNum, rcvWnd: number, seq: SeqNum, len: number): boolean {
  const rightEdge = seqAdd(rcvNxt, rcvWnd);
  if (len === 0) {
    if (rcvWnd === 0) return seq === rcvNxt;
    return seqLe(rcvNxt, seq) && seqLt(seq, rightEdge);
  }
  if (rcvWnd === 0) return false;
  const last = seqAdd(seq, len - 1);
  return (seqLe(rcvNxt, seq) && seqLt(seq, rightEdge)) || (seqLe(rcvNxt, last) && seqLt(last, rightEdge));
}

/** SEGMENT ARRIVES in SYN-RECEIVED or a synchronized state. */
export function processSynchronized(c: Connection, seg: TcpSegment): void {
  const v = c.v;
  const f = seg.flags;
  const isRst = (f & TCP_RST) !== 0;
  v.lastRecvAt = c.now;

  if (v.state === 'TIME-WAIT') {
    processTimeWait(c, seg, segLength(seg));
    return;
  }

  // RFC 7323 5.3 (PAWS), before the sequence number check.
  if (v.tsEnabled && !isRst) {
    const ts = seg.options.timestamp;
    if (!ts) {
      // RFC 7323 3.2: "If a non-RST segment is received without a TSopt, a TCP SHOULD silently drop the segment."
      if (!c.cfg.tolerateMissingTimestamps) return;
    } else if (seqLt(ts.tsval, v.tsRecent) && c.now - v.tsRecentAt <= PAWS_IDLE_US) {
      // "If SEG.TSval < TS.Recent and the RST bit is off: ... send an acknowledgment in reply as
      // specified in RFC 793 page 69 and drop the segment."
      if (v.state !== 'SYN-RECEIVED') v.ackNow = true;
      return;
    }
  }

  // Simultaneous open: the peer's SYN-ACK arrives in SYN-RECEIVED. It acknowledges our SYN
  // exactly and repeats its own; like Linux, take it as the handshake's final ACK rather than
  // answering it with a challenge ACK (RFC 9293 figure 8 shows it completing the open).
  if (v.state === 'SYN-RECEIVED' && (f & (TCP_SYN | TCP_ACK | TCP_RST)) === (TCP_SYN | TCP_ACK) && seg.seq === v.irs && seg.ack === v.sndMax) {
    seg = { ...seg, seq: v.rcvNxt, flags: f & ~TCP_SYN, payload: EMPTY };
    return processSynchronized(c, seg);
  }

  // The peer's SYN again while ours is unacknowledged: our SYN-ACK was probably lost. Linux
  // (inet_rtx_syn_ack) and BSD's syncache answer with the SYN-ACK, which a challenge ACK would
  // not replace -- an ACK without SYN means nothing to a peer in SYN-SENT.
  if (v.state === 'SYN-RECEIVED' && (f & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN && seg.seq === v.irs) {
    // The handshake RTT stays measured from the first SYN-ACK: an overestimate if the ACK
    // answers this copy, never an underestimate.
    const firstSent = v.rttStart;
    sendSynAck(c);
    v.rttStart = firstSent;
    return;
  }

  const len = segLength(seg);
  const wnd = receiveWindow(c);

  if (isRst) {
    processRst(c, seg, wnd);
    return;
  }

  let text = seg;
  if (!isAcceptable(v.rcvNxt, wnd, seg.seq, len)) {
    // "If an incoming segment is not acceptable, an acknowledgment should be sent in reply
    // (unless the RST bit is set ...)". A SYN is answered by the challenge ACK below instead.
    if (f & TCP_SYN) {
      processSyn(c);
      return;
    }
    c.pendingDsack = dsackFor(c, seg);
    v.ackNow = true;
    // An old duplicate wholly left of the window still carries a valid ACK field: like BSD
    // (TCP/IP Illustrated vol. 2 p. 960), acknowledge it and go on with the ACK, without its
    // text or FIN. Anything right of the window is dropped.
    if (!seqLe(seqAdd(seg.seq, len), v.rcvNxt) || (f & TCP_ACK) === 0) return;
    text = { ...seg, flags: f & ~TCP_FIN, payload: EMPTY, seq: v.rcvNxt };
  }

  // RFC 7323 4.3: "If SEG.TSval >= TS.Recent and SEG.SEQ =< Last.ACK.sent then SEG.TSval is copied to TS.Recent"
  if (v.tsEnabled && seg.options.timestamp && seqLe(seg.seq, v.lastAckSent) && seqGe(seg.options.timestamp.tsval, v.tsRecent)) {
    v.tsRecent = seg.options.timestamp.tsval;
    v.tsRecentAt = c.now;
  }

  if (f & TCP_SYN) {
    processSyn(c);
    return;
  }

  // Fifth: "if the ACK bit is off, drop the segment and return"
  if ((f & TCP_ACK) === 0) return;

  if (v.state === 'SYN-RECEIVED') {
    // "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED state ... Otherwise, form a reset
    // segment <SEQ=SEG.ACK><CTL=RST> and send it."
    if (!(seqLt(v.sndUna, seg.ack) && seqLe(seg.ack, v.sndMax))) {
      sendRst(c, seg.ack, 0, false);
      return;
    }
    v.state = v.finQueued ? 'FIN-WAIT-1' : 'ESTABLISHED';
    v.sndUna = seg.ack;
    c.sndDataStart = seg.ack;
    handshakeRtt(c);
    v.rtxDeadline = null;
    v.sndWnd = seg.window << v.sndShift;
    v.maxSndWnd = Math.max(v.maxSndWnd, v.sndWnd);
    v.sndWl1 = seg.seq;
    v.sndWl2 = seg.ack;
    c.emit({ type: 'connected' });
    armKeepalive(c);
    deliverQueued(c);
  } else {
    if (!processAck(c, seg)) return;
  }

  if (!afterOurFinAcked(c)) return;

  processText(c, text);
  armKeepalive(c);
}

/** RFC 5961 section 3.2. */
function processRst(c: Connection, seg: TcpSegment, wnd: number): void {
  const v = c.v;
  const inWindow = wnd === 0 ? seg.seq === v.rcvNxt : seqLe(v.rcvNxt, seg.seq) && seqLt(seg.seq, seqAdd(v.rcvNxt, wnd));
  if (!inWindow) return;
  if (seg.seq !== v.rcvNxt) {
    // "If the RST bit is set and the sequence number does not exactly match the next expected
    // sequence value, yet is within the current receive window, TCP MUST send an acknowledgment
    // (challenge ACK)"
    c.challengeAck();
    return;
  }
  switch (v.state) {
    case 'SYN-RECEIVED':
      // Passive: back to LISTEN (the host's listener still exists; this TCB goes away).
      // Active (from SYN-SENT): "the connection was refused".
      c.enterClosed(v.activeOpen ? 'ECONNREFUSED' : null);
      return;
    default:
      // ESTABLISHED, FIN-WAIT-*, CLOSE-WAIT: "any outstanding RECEIVEs and SEND should receive
      // 'reset' responses". CLOSING and LAST-ACK only need to close, but BSD reports the reset to
      // a half-closed socket as well, and so do we.
      c.enterClosed('ECONNRESET');
  }
}

/** RFC 5961 4.2: a SYN in a synchronized state (or SYN-RECEIVED) gets a challenge ACK. */
export function processSyn(c: Connection): void {
  c.challengeAck();
}

/** The D-SACK block (RFC 2883) for data we already have, reported on the next ACK. */
function dsackFor(c: Connection, seg: TcpSegment): SackBlock | null {
  const v = c.v;
  if (!v.sackEnabled || seg.payload.length === 0) return null;
  if (seqLt(seg.seq, v.rcvNxt)) {
    const end = seqAdd(seg.seq, seg.payload.length);
    return { left: seg.seq, right: seqLt(end, v.rcvNxt) ? end : v.rcvNxt };
  }
  return null;
}

const EMPTY = new Uint8Array(0);
