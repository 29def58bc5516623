// The receiving half and the dispatch of a segment in a synchronized state or SYN-RECEIVED
// (RFC 9293 3.10.7.4): PAWS, acceptability, RST and SYN checks (RFC 5961), the ACK, the text,
// the FIN. Also the window we advertise and the ACK policy (delayed ACK, immediate ACK for
// out-of-order data).

import { type SeqNum, seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from '../wire/seq.js';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type SackBlock, type TcpSegment } from '../wire/types.js';
import type { Connection } from './connection.js';
import { finAcked, processAck, sendRst } from './sender.js';
import { armKeepalive, enterTimeWait, armFinWait2 } from './timers.js';
import { handshakeRtt } from './handshake.js';

/** RFC 7323 5.5: TS.Recent is invalid after 24 days of idleness. */
const PAWS_IDLE_US = 24 * 24 * 3600 * 1_000_000;

/** Free receive-buffer space: what the window may offer. Out-of-order data is not counted. */
function freeSpace(c: Connection): number {
  return Math.max(0, c.cfg.rcvBuf - c.rcvBuf.length);
}

/**
 * RCV.WND for the acceptability test: what we advertised, or more when the buffer has room
 * (BSD: rcv_wnd is the buffer's free space, not limited by the 16-bit field). A passive
 * SYN-RECEIVED connection only knows the window its SYN-ACK offered.
 */
export function receiveWindow(c: Connection): number {
  const v = c.v;
  const advertised = Math.max(0, seqDiff(v.rcvAdv, v.rcvNxt));
  if (v.state === 'SYN-RECEIVED' && !v.activeOpen) return advertised;
  const free = freeSpace(c);
  return free > advertised ? free : advertised;
}

/**
 * The window field for an outgoing segment. Receiver SWS avoidance as in BSD: a window below
 * min(RCV.BUFF/4, MSS) is advertised as zero; the right edge never moves left (RFC 9293 3.8.6,
 * RFC 7323 2.4), so the field is rounded up when scaling would shrink it.
 */
export function receiveWindowField(c: Connection): number {
  const v = c.v;
  const shift = v.rcvShift;
  // 65535 << 14 still fits in 31 bits, so integer shifts are exact here.
  let win = freeSpace(c);
  const maxWin = 65535 << shift;
  if (win > maxWin) win = maxWin;
  if (win < c.cfg.rcvBuf / 4 && win < c.cfg.mss) win = 0;
  let current = (v.rcvAdv - v.rcvNxt) | 0;
  if (current < 0) current = 0;
  let field: number;
  if (win < current) field = (current + (1 << shift) - 1) >>> shift;
  else field = win >>> shift;
  if (field > 65535) field = 65535;
  const edge = (v.rcvNxt + (field << shift)) >>> 0;
  if (seqGt(edge, v.rcvAdv)) v.rcvAdv = edge;
  return field;
}

/** SACK blocks for the next segment: a pending D-SACK block first, then the queue's blocks. */
export function sackBlocksToSend(c: Connection): SackBlock[] {
  const max = c.v.tsEnabled ? 3 : 4;
  const out: SackBlock[] = [];
  if (c.pendingDsack) {
    out.push(c.pendingDsack);
    c.pendingDsack = null;
  }
  for (const b of c.ooo.sackBlocks(max)) {
    if (out.length >= max) break;
    out.push(b);
  }
  return out;
}

/** The application read: announce the opened window if it grew by 2 MSS or half the buffer. */
export function windowUpdateAfterRead(c: Connection): void {
  const v = c.v;
  if (v.ackNow || v.peerFinReceived || v.state === 'SYN-RECEIVED') return;
  let advertised = (v.rcvAdv - v.rcvNxt) | 0;
  if (advertised < 0) advertised = 0;
  let possible = freeSpace(c);
  const maxWin = 65535 << v.rcvShift;
  if (possible > maxWin) possible = maxWin;
  const growth = possible - advertised;
  if (growth >= 2 * c.cfg.mss || growth >= c.cfg.rcvBuf / 2) v.ackNow = true;
}

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

  // RFC 7323 5.3 (PAWS), before the sequence number check.
  if (v.tsEnabled && !isRst) {
    const ts = seg.options.timestamp;
    if (!ts) {
      // RFC 7323 3.2: "If a non-RST segment is received without a TSopt, a TCP SHOULD silently drop the segment."
      return;
    }
    if (seqLt(ts.tsval, v.tsRecent) && c.now - v.tsRecentAt <= PAWS_IDLE_US) {
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

  const len = segLength(seg);
  const wnd = receiveWindow(c);

  if (isRst) {
    processRst(c, seg, wnd);
    return;
  }

  if (v.state === 'TIME-WAIT') {
    processTimeWait(c, seg, len);
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

  switch (v.state) {
    case 'FIN-WAIT-1':
      if (finAcked(c)) {
        v.state = 'FIN-WAIT-2';
        armFinWait2(c);
      }
      break;
    case 'CLOSING':
      // "if the ACK acknowledges our FIN, then enter the TIME-WAIT state, otherwise ignore the
      // segment": the peer's FIN is already acknowledged, so nothing more is sent (as in BSD).
      if (finAcked(c)) {
        enterTimeWait(c);
        v.ackNow = false;
        return;
      }
      break;
    case 'LAST-ACK':
      if (finAcked(c)) {
        c.enterClosed(null);
        return;
      }
      break;
    default:
      break;
  }

  processText(c, text);
  armKeepalive(c);
}

/**
 * TIME-WAIT, as BSD's tcp_twcheck does it within RFC 9293's rules: RST is ignored (RFC 1337),
 * segments without ACK are dropped, a retransmitted FIN is acknowledged and restarts 2MSL,
 * anything else but an exact duplicate ACK is acknowledged. A SYN gets a challenge ACK (RFC 5961
 * 4.2 covers every synchronized state, and the suite's STANDARD branch expects it): a peer that
 * really starts a new connection answers it with a RST, which TIME-WAIT ignores, so the new
 * connection waits for 2MSL -- the price of RFC 1337.
 */
function processTimeWait(c: Connection, seg: TcpSegment, len: number): void {
  const v = c.v;
  const f = seg.flags;
  if (f & TCP_SYN) {
    processSyn(c);
    return;
  }
  if ((f & TCP_ACK) === 0) return;
  if (f & TCP_FIN && seqAdd(seg.seq, len) === v.rcvNxt) {
    v.ackNow = true;
    enterTimeWait(c);
    return;
  }
  if (f !== TCP_ACK || seg.payload.length !== 0 || seg.seq !== v.rcvNxt || seg.ack !== v.sndNxt) v.ackNow = true;
}

/** RFC 5961 section 3.2 (and RFC 1337 in TIME-WAIT). */
function processRst(c: Connection, seg: TcpSegment, wnd: number): void {
  const v = c.v;
  // RFC 1337: TIME-WAIT ignores RST, so that an old duplicate cannot assassinate it.
  if (v.state === 'TIME-WAIT') return;
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
function processSyn(c: Connection): void {
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

/** Sixth to eighth steps: the segment text and the FIN. */
export function processText(c: Connection, seg: TcpSegment): void {
  const v = c.v;
  const s = v.state;
  let payload = seg.payload;
  let seq = seg.seq;
  const hasFin = (seg.flags & TCP_FIN) !== 0;

  if (payload.length > 0) {
    if (!(s === 'ESTABLISHED' || s === 'FIN-WAIT-1' || s === 'FIN-WAIT-2')) {
      // CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: "This should not occur since a FIN has been
      // received from the remote side. Ignore the segment text."
      payload = EMPTY;
    } else if (v.userClosed) {
      // Data for a socket the application closed cannot be delivered: reset (RFC 9293 3.6, RFC 2525 2.17).
      sendRst(c, v.sndNxt, seqAdd(seq, payload.length), true);
      c.enterClosed('ECONNRESET');
      return;
    }
  }

  if (payload.length > 0) {
    let dsack: SackBlock | null = null;
    // Trim what we already have on the left.
    const dupLen = seqDiff(v.rcvNxt, seq);
    if (dupLen > 0) {
      if (v.sackEnabled) dsack = { left: seq, right: v.rcvNxt };
      payload = payload.subarray(Math.min(dupLen, payload.length));
      seq = v.rcvNxt;
    }
    // Trim to the right edge of the window.
    const room = seqDiff(seqAdd(v.rcvNxt, receiveWindow(c)), seq);
    let trimmedRight = false;
    if (payload.length > room) {
      payload = payload.subarray(0, Math.max(0, room));
      trimmedRight = true;
    }
    if (payload.length > 0) {
      if (seq === v.rcvNxt) {
        const hadHole = !c.ooo.isEmpty;
        if (hadHole) {
          const dup = c.ooo.insert(seq, payload);
          if (dup && !dsack && v.sackEnabled) dsack = dup;
          const parts = c.ooo.takeInOrder(v.rcvNxt);
          for (const p of parts) {
            c.rcvBuf.push(p);
            v.rcvNxt = seqAdd(v.rcvNxt, p.length);
          }
          // Filling a hole is acknowledged at once (RFC 5681 4.2).
          v.ackNow = true;
        } else {
          c.rcvBuf.push(payload);
          v.rcvNxt = seqAdd(v.rcvNxt, payload.length);
          c.ooo.trimBelow(v.rcvNxt);
          noteInOrderSegment(c, seg);
        }
        c.emit({ type: 'readable' });
      } else {
        const dup = c.ooo.insert(seq, payload);
        if (dup && !dsack && v.sackEnabled) dsack = dup;
        // An out-of-order segment is acknowledged at once (RFC 5681 4.2, RFC 9293 3.10.7.4).
        v.ackNow = true;
      }
    } else {
      v.ackNow = true;
    }
    if (dsack) {
      c.pendingDsack = dsack;
      v.ackNow = true;
    }
    if (trimmedRight) v.ackNow = true;
    if (trimmedRight && seqGt(seqAdd(seq, payload.length), v.rcvNxt)) {
      // The FIN (if any) lay beyond the window and was cut off with the data.
      return;
    }
  } else if (seg.payload.length > 0) {
    v.ackNow = true;
  }

  if (hasFin) {
    const finAt = seqAdd(seg.seq, seg.payload.length);
    if (s === 'CLOSE-WAIT' || s === 'CLOSING' || s === 'LAST-ACK') {
      v.ackNow = true;
      return;
    }
    if (s === 'TIME-WAIT') {
      // "Remain in the TIME-WAIT state. Acknowledge the FIN and restart the 2 MSL timeout."
      v.ackNow = true;
      enterTimeWait(c);
      return;
    }
    if (finAt === v.rcvNxt) receiveFin(c);
    else if (seqGt(finAt, v.rcvNxt)) {
      v.peerFinSeq = finAt;
      v.ackNow = true;
    }
  } else if (v.peerFinSeq !== null && v.peerFinSeq === v.rcvNxt) {
    receiveFin(c);
  }
}

/** Moves queued data that is now in order (e.g. data carried by a SYN) to the read buffer. */
function deliverQueued(c: Connection): void {
  const v = c.v;
  let got = false;
  for (const p of c.ooo.takeInOrder(v.rcvNxt)) {
    c.rcvBuf.push(p);
    v.rcvNxt = seqAdd(v.rcvNxt, p.length);
    got = true;
  }
  if (got) {
    v.segsSinceAck++;
    if (v.delAckDeadline === null) v.delAckDeadline = c.now + c.cfg.delayedAckUs;
    c.emit({ type: 'readable' });
  }
}

/** Eighth step: the FIN is in order. */
function receiveFin(c: Connection): void {
  const v = c.v;
  if (v.peerFinReceived) return;
  v.rcvNxt = seqAdd(v.rcvNxt, 1);
  v.peerFinReceived = true;
  v.peerFinSeq = null;
  v.ackNow = true;
  c.emit({ type: 'peer-fin' });
  switch (v.state) {
    case 'SYN-RECEIVED':
    case 'ESTABLISHED':
      v.state = 'CLOSE-WAIT';
      break;
    case 'FIN-WAIT-1':
      // "If our FIN has been ACKed (perhaps in this segment), then enter TIME-WAIT ... otherwise,
      // enter the CLOSING state."
      if (finAcked(c)) enterTimeWait(c);
      else v.state = 'CLOSING';
      break;
    case 'FIN-WAIT-2':
      enterTimeWait(c);
      break;
    default:
      break;
  }
}

/** Delayed ACK (RFC 9293 3.8.6.3, RFC 5681 4.2): ACK at least every second segment, else within the delay. */
function noteInOrderSegment(c: Connection, seg: TcpSegment): void {
  const v = c.v;
  v.segsSinceAck++;
  if (c.cfg.delayedAckUs === 0 || v.segsSinceAck >= 2 || (seg.flags & TCP_FIN) !== 0) {
    v.ackNow = true;
  } else if (v.delAckDeadline === null) {
    v.delAckDeadline = c.now + c.cfg.delayedAckUs;
  }
}

const EMPTY = new Uint8Array(0);
