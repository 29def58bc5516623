// The sending half: building segments, the output loop (segmentation to the effective MSS,
// Nagle, sender-side silly window avoidance, congestion and flow control), ACK processing on the
// send side, fast retransmit / recovery (NewReno, or SACK-based per RFC 6675) and the RTO.

import { type SeqNum, seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt, seqMin } from '../wire/seq.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type TcpOptions, type TcpSegment } from '../wire/types.js';
import type { Connection } from './connection.js';
import { receiveWindowField, sackBlocksToSend } from './receiver.js';
import { armRetransmit } from './timers.js';

const EMPTY = new Uint8Array(0);

export function makeSegment(c: Connection, seq: SeqNum, ack: SeqNum, flags: number, window: number, options: TcpOptions, payload: Uint8Array): TcpSegment {
  return { srcPort: c.tuple.localPort, dstPort: c.tuple.remotePort, seq, ack, flags, window, urgent: 0, options, payload };
}

/** Any segment of a synchronized connection: carries ACK, our window, TSopt and SACK blocks. */
function sendSegment(c: Connection, seq: SeqNum, flags: number, payload: Uint8Array): void {
  const v = c.v;
  const opts: TcpOptions = {};
  if (v.tsEnabled) opts.timestamp = { tsval: c.env.tsClock(c.now) >>> 0, tsecr: v.tsRecent };
  if (v.sackEnabled) {
    const blocks = sackBlocksToSend(c);
    if (blocks.length > 0) opts.sack = blocks;
  }
  const window = receiveWindowField(c);
  c.push(makeSegment(c, seq, v.rcvNxt, flags | TCP_ACK, window, opts, payload));
  v.lastAckSent = v.rcvNxt;
  v.ackNow = false;
  v.segsSinceAck = 0;
  v.delAckDeadline = null;
  if (payload.length > 0) v.lastSendAt = c.now;
}

/** An ACK now, outside the output loop (challenge ACKs, duplicate-segment ACKs). */
export function sendAckNow(c: Connection): void {
  sendSegment(c, c.v.sndNxt, 0, EMPTY);
}

/** A reset: <SEQ=seq><CTL=RST> or, with withAck, <SEQ=seq><ACK=ack><CTL=RST,ACK>. */
export function sendRst(c: Connection, seq: SeqNum, ack: SeqNum, withAck: boolean): void {
  c.push(makeSegment(c, seq, withAck ? ack : 0, withAck ? TCP_RST | TCP_ACK : TCP_RST, 0, {}, EMPTY));
}

/** The FIN's sequence number once the application has shut down its side. */
function finSeq(c: Connection): SeqNum | null {
  return c.v.finQueued ? c.sndBufEnd : null;
}

export function finAcked(c: Connection): boolean {
  const f = finSeq(c);
  return f !== null && seqGt(c.v.sndUna, f);
}

/**
 * Sends `len` bytes of the send buffer starting at seq (plus FIN when it reaches the FIN's place)
 * without moving SND.NXT: used by fast retransmit and SACK recovery.
 */
function retransmitAt(c: Connection, seq: SeqNum, maxLen: number): number {
  const v = c.v;
  const end = c.sndBufEnd;
  const avail = Math.max(0, seqDiff(end, seq));
  const len = Math.min(avail, maxLen);
  let flags = 0;
  const fin = finSeq(c);
  if (fin !== null && seqAdd(seq, len) === fin && seqGt(v.sndMax, fin)) flags |= TCP_FIN;
  if (len === 0 && flags === 0) return 0;
  const payload = len > 0 ? c.sndBuf.slice(seqDiff(seq, c.sndDataStart), len) : EMPTY;
  if (len > 0 && len === avail) flags |= TCP_PSH;
  sendSegment(c, seq, flags, payload);
  // Karn: a retransmitted segment must not give an RTT sample.
  if (v.rttSeq !== null && seqLt(seq, v.rttSeq)) v.rttSeq = null;
  return len + (flags & TCP_FIN ? 1 : 0);
}

/**
 * The output loop: sends whatever the windows, Nagle and SWS avoidance allow, then a pure ACK if
 * one is owed, and arms the retransmission or persist timer.
 */
export function flush(c: Connection): void {
  const v = c.v;
  const s = v.state;
  if (s === 'SYN-SENT' || s === 'CLOSED' || s === 'LISTEN') return;
  if (s === 'SYN-RECEIVED') {
    if (v.ackNow) sendAckNow(c);
    return;
  }
  const sending = s === 'ESTABLISHED' || s === 'CLOSE-WAIT' || s === 'FIN-WAIT-1' || s === 'CLOSING' || s === 'LAST-ACK';
  if (sending) {
    if (v.inRecovery && v.sackEnabled) sackRecoverySend(c);
    sendNew(c);
  }
  if (v.ackNow) {
    const fin = finSeq(c);
    if (c.cfg.resendFinWithAck && fin !== null && (s === 'FIN-WAIT-1' || s === 'CLOSING' || s === 'LAST-ACK') && seqGt(v.sndMax, fin) && !finAcked(c)) {
      sendSegment(c, fin, TCP_FIN, EMPTY);
    } else sendAckNow(c);
  }
  // A retransmission timer runs whenever data or a FIN is outstanding (RFC 6298 5.1).
  if (seqGt(v.sndNxt, v.sndUna) || seqGt(v.sndMax, v.sndUna) && v.persistDeadline === null) {
    if (v.rtxDeadline === null) armRetransmit(c);
  }
  armPersistIfNeeded(c);
}

/** New data (or data again after a timeout rewound SND.NXT) and the FIN. */
function sendNew(c: Connection): void {
  const v = c.v;
  const maxSeg = c.maxSeg;
  const fin = finSeq(c);
  const end = c.sndBufEnd;
  // Restart after idle (RFC 5681 4.1): the controller decides what that means for cwnd.
  if (v.sndNxt === v.sndUna && seqLt(v.sndNxt, end) && c.now - v.lastSendAt > c.rto.rtoUs) c.cc.onIdleRestart?.(c.now);
  for (;;) {
    const avail = seqDiff(end, v.sndNxt);
    if (avail > 0) {
      const wnd = Math.min(v.sndWnd, v.inRecovery && v.sackEnabled ? Number.MAX_SAFE_INTEGER : c.cc.cwnd);
      let usable = seqDiff(seqAdd(v.sndUna, wnd), v.sndNxt);
      if (v.inRecovery && v.sackEnabled) {
        const pipe = c.scoreboard.pipe(v.sndUna, v.sndMax, v.highRxt, c.sendMss);
        usable = Math.min(usable, c.cc.cwnd - pipe);
      }
      let len = Math.min(avail, maxSeg, usable);
      if (len <= 0) return;
      const retransmitting = seqLt(v.sndNxt, v.sndMax);
      const outstanding = seqGt(v.sndNxt, v.sndUna);
      // RFC 9293 3.8.6.2.1: send if a full segment fits, or all queued data fits and either
      // Nagle is off or nothing is unacknowledged (Nagle, 3.7.4), or the segment is at least
      // half the largest window the peer offered.
      const ok =
        len === maxSeg ||
        retransmitting ||
        (len === avail && (v.noDelay || !outstanding || v.finQueued)) ||
        len >= v.maxSndWnd / 2;
      if (!ok) return;
      let flags = 0;
      if (len === avail) flags |= TCP_PSH;
      if (fin !== null && len === avail && seqGe(v.sndNxt, v.sndUna)) flags |= TCP_FIN;
      const payload = c.sndBuf.slice(seqDiff(v.sndNxt, c.sndDataStart), len);
      const seq = v.sndNxt;
      sendSegment(c, seq, flags, payload);
      if (retransmitting) {
        if (v.rttSeq !== null && seqLt(seq, v.rttSeq)) v.rttSeq = null;
      } else if (v.rttSeq === null) {
        v.rttSeq = seqAdd(seq, len);
        v.rttStart = c.now;
      }
      v.sndNxt = seqAdd(seq, len + (flags & TCP_FIN ? 1 : 0));
      if (seqGt(v.sndNxt, v.sndMax)) v.sndMax = v.sndNxt;
      if (flags & TCP_FIN) return;
      continue;
    }
    // Only the FIN is left (all data sent): it needs no window.
    if (fin !== null && v.sndNxt === fin) {
      const seq = v.sndNxt;
      sendSegment(c, seq, TCP_FIN, EMPTY);
      if (v.rttSeq === null && !seqLt(seq, v.sndMax)) {
        v.rttSeq = seqAdd(seq, 1);
        v.rttStart = c.now;
      }
      v.sndNxt = seqAdd(seq, 1);
      if (seqGt(v.sndNxt, v.sndMax)) v.sndMax = v.sndNxt;
    }
    return;
  }
}

/** RFC 6675 section 5, step (C): send while cwnd - pipe >= 1 SMSS, retransmitting lost data first. */
function sackRecoverySend(c: Connection): void {
  const v = c.v;
  const mss = c.sendMss;
  for (let guard = 0; guard < 1000; guard++) {
    const pipe = c.scoreboard.pipe(v.sndUna, v.sndMax, v.highRxt, mss);
    if (c.cc.cwnd - pipe < mss) return;
    const canSendNew = seqLt(v.sndNxt, c.sndBufEnd) && seqDiff(seqAdd(v.sndUna, v.sndWnd), v.sndNxt) > 0;
    const s = c.scoreboard.nextSegmentToRetransmit(v.sndUna, v.sndMax, v.highRxt, mss, canSendNew);
    if (s === null) return; // rule (2): new data, sent by sendNew
    const end = c.scoreboard.retransmitEnd(s, v.sndMax, c.maxSeg);
    const n = retransmitAt(c, s, Math.max(1, seqDiff(end, s)));
    if (n === 0) return;
    const sent = seqAdd(s, n);
    if (seqGt(sent, v.highRxt)) v.highRxt = sent;
  }
}

/**
 * Data is waiting, nothing is in flight and the output loop sent nothing: either the window is
 * zero (persist, RFC 9293 3.8.6.1) or too small to send without silly-window segments. In both
 * cases a timer must run or the connection could stall forever: BSD arms the persist timer, and
 * its expiry is the "override timeout" of RFC 9293 3.8.6.2.1.
 */
function armPersistIfNeeded(c: Connection): void {
  const v = c.v;
  const dataWaiting = seqLt(v.sndNxt, c.sndBufEnd);
  if (dataWaiting && v.sndNxt === v.sndUna && v.rtxDeadline === null) {
    if (v.persistDeadline === null) v.persistDeadline = c.now + persistInterval(c);
  } else if (!dataWaiting || seqGt(v.sndNxt, v.sndUna)) {
    v.persistDeadline = null;
    if (!dataWaiting) v.persistBackoff = 0;
  }
}

/** RFC 9293 3.8.6.1: probes are sent with exponential backoff, bounded like the RTO. */
export function persistInterval(c: Connection): number {
  const base = Math.max(c.rto.rtoUs, c.cfg.minRtoUs);
  return Math.min(c.cfg.maxRtoUs, base * 2 ** c.v.persistBackoff);
}

/**
 * The persist timer fired. A zero window is probed with one byte (RFC 9293 3.8.6.1: "the
 * sending TCP must regularly transmit at least one octet of new data"); a small non-zero window
 * gets what fits, the SWS override.
 */
export function sendWindowProbe(c: Connection): void {
  const v = c.v;
  v.persistDeadline = null;
  const seq = v.sndNxt;
  const avail = seqDiff(c.sndBufEnd, seq);
  if (avail > 0) {
    if (v.sndWnd === 0) {
      const payload = c.sndBuf.slice(seqDiff(seq, c.sndDataStart), 1);
      sendSegment(c, seq, 0, payload);
      const after = seqAdd(seq, 1);
      if (seqGt(after, v.sndMax)) v.sndMax = after;
      v.persistBackoff = Math.min(v.persistBackoff + 1, 16);
      v.persistDeadline = c.now + persistInterval(c);
      return;
    }
    const len = Math.min(avail, v.sndWnd, c.maxSeg);
    sendSegment(c, seq, len === avail ? TCP_PSH : 0, c.sndBuf.slice(seqDiff(seq, c.sndDataStart), len));
    v.sndNxt = seqAdd(seq, len);
    if (seqGt(v.sndNxt, v.sndMax)) v.sndMax = v.sndNxt;
    v.persistBackoff = 0;
    armRetransmit(c);
  }
}

/** Keepalive probe: SEG.SEQ = SND.NXT - 1, no data (RFC 9293 3.8.4). */
export function sendKeepaliveProbe(c: Connection): void {
  sendSegment(c, seqAdd(c.v.sndNxt, -1), 0, EMPTY);
}

/**
 * Send-side processing of an acceptable ACK (RFC 9293 3.10.7.4 fifth step, RFC 5961 5.2).
 * Returns false when the segment must be dropped.
 */
export function processAck(c: Connection, seg: TcpSegment): boolean {
  const v = c.v;
  const ack = seg.ack;
  // RFC 5961 5.2: "((SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT) ... All incoming segments whose
  // ACK value doesn't satisfy the above condition MUST be discarded and an ACK sent back."
  if (seqGt(ack, v.sndMax)) {
    c.challengeAck();
    return false;
  }
  if (seqLt(ack, seqAdd(v.sndUna, -Math.max(v.maxSndWnd, 1)))) {
    c.challengeAck();
    return false;
  }
  if (v.sackEnabled && seg.options.sack && seg.options.sack.length > 0) {
    c.scoreboard.update(seqGt(ack, v.sndUna) ? ack : v.sndUna, seg.options.sack);
  }
  const windowBefore = v.sndWnd;
  const scaledWnd = seg.window << v.sndShift;
  if (seqGt(ack, v.sndUna)) {
    onNewAck(c, seg, ack);
  } else if (
    ack === v.sndUna &&
    seg.payload.length === 0 &&
    (seg.flags & (TCP_SYN | TCP_FIN)) === 0 &&
    scaledWnd === windowBefore &&
    windowBefore > 0 &&
    seqGt(v.sndNxt, v.sndUna)
  ) {
    // RFC 5681 section 2's duplicate ACK; a zero window's probe answers are not (persist).
    onDupAck(c);
  }
  acceptWindowFromPeer(c, seg, false);
  return true;
}

/** RFC 9293: "If SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK), set SND.WND <- SEG.WND ..." */
export function acceptWindowFromPeer(c: Connection, seg: TcpSegment, unscaled: boolean): void {
  const v = c.v;
  // "If SND.UNA =< SEG.ACK =< SND.NXT, the send window should be updated": an old ACK carries an old window.
  if (seqLt(seg.ack, v.sndUna)) return;
  if (seqLt(v.sndWl1, seg.seq) || (v.sndWl1 === seg.seq && seqLe(v.sndWl2, seg.ack))) {
    const w = unscaled ? seg.window : seg.window << v.sndShift;
    const opened = v.sndWnd === 0 && w > 0;
    v.sndWnd = w;
    v.sndWl1 = seg.seq;
    v.sndWl2 = seg.ack;
    if (w > v.maxSndWnd) v.maxSndWnd = w;
    if (opened) {
      v.persistDeadline = null;
      v.persistBackoff = 0;
      // A probe byte beyond the old window may be outstanding: send from SND.UNA again.
      if (seqGt(v.sndMax, v.sndNxt) && v.sndNxt === v.sndUna && v.rtxDeadline === null) v.sndMax = v.sndNxt;
    }
  }
}

function onNewAck(c: Connection, seg: TcpSegment, ack: SeqNum): void {
  const v = c.v;
  const acked = seqDiff(ack, v.sndUna);
  const fromBuf = Math.max(0, Math.min(c.sndBuf.length, seqDiff(ack, c.sndDataStart)));
  if (fromBuf > 0) {
    c.sndBuf.consume(fromBuf);
    c.sndDataStart = seqAdd(c.sndDataStart, fromBuf);
  }
  let rtt: number | null = null;
  if (v.rttSeq !== null && seqGe(ack, v.rttSeq)) {
    rtt = Math.max(1, c.now - v.rttStart);
    c.rto.sample(rtt);
    v.rttSeq = null;
  }
  v.sndUna = ack;
  if (seqLt(v.sndNxt, ack)) v.sndNxt = ack;
  v.rtxCount = 0;
  c.rto.resetBackoff();
  const inFlight = seqDiff(v.sndMax, v.sndUna);
  if (v.inRecovery) {
    if (seqGe(ack, v.recover)) {
      // RFC 6582 3.2 step 6 / RFC 6675 step (A): a full acknowledgment ends recovery.
      v.inRecovery = false;
      v.dupAcks = 0;
      c.cc.onExitRecovery(c.now);
    } else if (!v.sackEnabled) {
      // RFC 6582 3.2 step 5, partial ACK: retransmit the first unacknowledged segment, deflate.
      c.cc.onPartialAck(c.now, acked);
      retransmitAt(c, v.sndUna, c.maxSeg);
      v.rtxDeadline = null;
    }
  } else {
    v.dupAcks = 0;
    c.cc.onAck(c.now, acked, rtt, inFlight);
  }
  if (v.sackEnabled && v.inRecovery === false) c.scoreboard.update(ack, []);
  // RFC 6298 5.2/5.3: stop the timer when all is acknowledged, else restart it.
  v.rtxDeadline = null;
  if (seqGt(v.sndMax, v.sndUna) && v.persistDeadline === null) armRetransmit(c);
  if (fromBuf > 0) c.emit({ type: 'writable' });
  void seg;
}

function onDupAck(c: Connection): void {
  const v = c.v;
  v.dupAcks++;
  const mss = c.sendMss;
  if (!v.inRecovery) {
    const lossBySack = v.sackEnabled && c.scoreboard.isLost(v.sndUna, mss);
    // RFC 6582 section 4.1: no new recovery until the previous recovery point is acknowledged.
    // RFC 6582 section 4.1 asks for an ACK covering more than "recover"; an ACK exactly at
    // recover already acknowledges everything sent before the last recovery or timeout, so its
    // duplicates can only be about newer data, and a new recovery is safe.
    if ((v.dupAcks === 3 || lossBySack) && seqGe(v.sndUna, v.recover)) {
      const inFlight = seqDiff(v.sndMax, v.sndUna);
      v.inRecovery = true;
      v.recover = v.sndMax;
      v.highRxt = v.sndUna;
      c.cc.onEnterRecovery(c.now, inFlight);
      // Fast retransmit (RFC 5681 3.2 step 2 / RFC 6675 step 4.3).
      const n = retransmitAt(c, v.sndUna, c.maxSeg);
      v.highRxt = seqAdd(v.sndUna, n);
      if (!v.sackEnabled) c.cc.inflate(3 * mss);
      v.rtxDeadline = null;
      armRetransmit(c);
    }
  } else if (!v.sackEnabled) {
    // RFC 5681 3.2 step 4: each further duplicate ACK inflates cwnd by SMSS.
    c.cc.inflate(mss);
  }
}

/**
 * The retransmission timer fired in a synchronized state (RFC 6298 5.4-5.7): back off, collapse
 * the window, and resend from SND.UNA.
 */
export function onRetransmitTimeout(c: Connection): void {
  const v = c.v;
  v.rtxCount++;
  if (v.rtxCount > c.cfg.maxRetransmits) {
    sendRst(c, v.sndNxt, v.rcvNxt, true);
    c.enterClosed('ETIMEDOUT');
    return;
  }
  c.rto.backoff();
  c.cc.onRetransmitTimeout(c.now, seqDiff(v.sndMax, v.sndUna));
  v.inRecovery = false;
  v.dupAcks = 0;
  v.recover = v.sndMax;
  v.rttSeq = null;
  if (v.sackEnabled) c.scoreboard.clear();
  v.sndNxt = v.sndUna;
  v.rtxDeadline = null;
  // The persist probe byte, if any, is resent as ordinary data.
  flushAfterTimeout(c);
}

function flushAfterTimeout(c: Connection): void {
  const v = c.v;
  const before = v.sndNxt;
  sendNew(c);
  if (v.sndNxt === before) {
    // Window closed: still retransmit one segment so the peer answers (RFC 6298 5.4).
    const n = retransmitAt(c, v.sndUna, c.maxSeg);
    if (n > 0) v.sndNxt = seqMin(seqAdd(v.sndUna, n), v.sndMax);
  }
  armRetransmit(c);
}
