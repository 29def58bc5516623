// The sending half: building segments, the output loop (segmentation to the effective MSS,
// Nagle, sender-side silly window avoidance, congestion and flow control), zero-window probes and
// keepalive probes. Loss recovery lives in recovery.ts.

import { type SeqNum, seqAdd, seqDiff, seqGe, seqGt, seqLt } from '../wire/seq.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, type TcpOptions, type TcpSegment } from '../wire/types.js';
import { tcpOptionsLength } from '../wire/tcp.js';
import type { Connection } from './connection.js';
import { receiveWindowField, sackBlocksPending, sackBlocksToSend } from './receiver.js';
import { sackRecoverySend } from './recovery.js';
import { armTlp, rackEnabled, rackHasLost, rackOnSent, rackPipe } from './rack.js';
import { armRetransmit } from './timers.js';

const EMPTY = new Uint8Array(0);

export function makeSegment(c: Connection, seq: SeqNum, ack: SeqNum, flags: number, window: number, options: TcpOptions, payload: Uint8Array): TcpSegment {
  return { srcPort: c.tuple.localPort, dstPort: c.tuple.remotePort, seq, ack, flags, window, urgent: 0, options, payload };
}

/**
 * The largest payload the next segment may carry: the effective send MSS less the options that
 * segment will have. RFC 9293 3.7.1: "if there are any IP or TCP options to be sent in a packet,
 * then the sender must decrease the size of the TCP data accordingly" (Eff.snd.MSS =
 * min(SendMSS+20, MMS_S) - TCPhdrsize - IPoptionsize, TCPhdrsize counting the options); RFC 6691
 * section 2: "the sender MUST reduce the TCP data length to account for any IP or TCP options
 * that it is including in the packets that it sends". The options are the ones sendSegment will
 * build: TSopt, and every SACK block waiting to be reported, so a segment sized here carries all
 * of them and still fits the MTU. Without SACK blocks this is maxSeg, the full size.
 */
export function dataRoom(c: Connection): number {
  const v = c.v;
  if (!v.sackEnabled) return c.maxSeg;
  const blocks = sackBlocksPending(c);
  if (blocks.length === 0) return c.maxSeg;
  const opts: TcpOptions = { sack: blocks };
  if (v.tsEnabled) opts.timestamp = { tsval: 0, tsecr: 0 };
  // tcpOptionsLength is at most 40 and sendMss at least 64 (its floor), so this stays positive.
  return c.sendMss - tcpOptionsLength(opts, TCP_ACK);
}

/**
 * The TSval for the next segment: the timestamp clock at the input's time, but never below a TSval
 * this connection already sent (modulo 2^32). A receiver drops a segment whose TSval is below its
 * TS.Recent (RFC 7323 5.3, R1), so one stamped with an earlier batch time after a user call used a
 * later one would be lost to PAWS.
 */
export function nextTsval(c: Connection): number {
  const v = c.v;
  let ts = c.env.tsClock(c.now) >>> 0;
  const last = v.tsLastSent;
  if (last !== undefined && ((ts - last) | 0) < 0) ts = last;
  v.tsLastSent = ts;
  return ts;
}

/** Any segment of a synchronized connection: carries ACK, our window, TSopt and SACK blocks. */
export function sendSegment(c: Connection, seq: SeqNum, flags: number, payload: Uint8Array): void {
  const v = c.v;
  const opts: TcpOptions = {};
  if (v.tsEnabled) opts.timestamp = { tsval: nextTsval(c), tsecr: v.tsRecent };
  if (v.sackEnabled) {
    // Options and payload share the MSS (RFC 9293 3.7.1). Data segments are sized by dataRoom()
    // and so carry every pending block; this bound only guards a payload sized some other way,
    // which then carries fewer blocks rather than exceed the MTU.
    const room = Math.min(40, c.sendMss - payload.length);
    const blocks = sackBlocksToSend(c, room);
    if (blocks.length > 0) opts.sack = blocks;
  }
  const window = receiveWindowField(c);
  c.push(makeSegment(c, seq, v.rcvNxt, flags | TCP_ACK, window, opts, payload));
  v.lastAckSent = v.rcvNxt;
  v.ackNow = false;
  v.segsSinceAck = 0;
  v.delAckDeadline = null;
  if (payload.length > 0) v.lastSendAt = c.now;
  // RACK's per-segment transmission times (RFC 8985 6.1), sequence space only.
  const len = payload.length + (flags & TCP_FIN ? 1 : 0);
  if (len > 0 && v.sackEnabled) rackOnSent(c, seq, len);
}

/** An ACK now, outside the output loop (challenge ACKs, duplicate-segment ACKs). */
export function sendAckNow(c: Connection): void {
  sendSegment(c, c.v.sndNxt, 0, EMPTY);
}

/** A reset: <SEQ=seq><CTL=RST> or, with withAck, <SEQ=seq><ACK=ack><CTL=RST,ACK>. */
export function sendRst(c: Connection, seq: SeqNum, ack: SeqNum, withAck: boolean): void {
  c.push(makeSegment(c, seq, withAck ? ack : 0, withAck ? TCP_RST | TCP_ACK : TCP_RST, 0, {}, EMPTY));
}

/**
 * Resets a synchronized connection: <SEQ=s><ACK=ack><CTL=RST,ACK>, s the highest sequence number
 * sent that the peer's window admits, min(SND.MAX, SND.UNA + SND.WND). RFC 9293 3.10.5 says
 * SEQ=SND.NXT, but SND.NXT falls back to SND.UNA while retransmitting after a timeout, and a
 * promoted connection (replication/shadow.ts) starts there too, while the peer may already hold
 * bytes up to SND.MAX. A peer following RFC 5961 3.2 drops a RST below its RCV.NXT without a word
 * ("If the RST bit is set and the sequence number is outside the current receive window,
 * silently drop the segment") and keeps waiting; at SND.MAX the RST is either exactly RCV.NXT or
 * inside the window, which draws a challenge ACK that the closed connection answers with a RST at
 * its acknowledgment number. The window's edge bounds it for a zero-window probe's byte, sent but
 * never accepted. Linux picks its reset's sequence number the same way (tcp_acceptable_seq).
 */
export function sendReset(c: Connection, ack: SeqNum = c.v.rcvNxt): void {
  const v = c.v;
  const edge = seqAdd(v.sndUna, v.sndWnd);
  sendRst(c, seqLt(v.sndMax, edge) ? v.sndMax : edge, ack, true);
}

/** The FIN's sequence number once the application has shut down its side. */
export function finSeq(c: Connection): SeqNum | null {
  return c.v.finQueued ? c.sndBufEnd : null;
}

/** The FIN's sequence number when it may be sent as new: queued and within the send limit. */
function sendableFin(c: Connection): SeqNum | null {
  const f = finSeq(c);
  return f !== null && c.finWithinLimit(f) ? f : null;
}

export function finAcked(c: Connection): boolean {
  const f = finSeq(c);
  return f !== null && seqGt(c.v.sndUna, f);
}

/**
 * Sends up to maxLen bytes of the send buffer starting at seq (plus FIN when it reaches the FIN's
 * place) without moving SND.NXT: used by fast retransmit, partial-ACK and SACK recovery, and the
 * retransmission timeout. Returns the sequence space sent.
 *
 * Only what was sent before is sent again: never past SND.MAX. Bytes beyond it are new data,
 * subject to the peer's window and accounted for by advancing SND.MAX (sendNew, or a window
 * probe); sent from here, the peer's ACK of them would be one that "acks something not yet sent
 * (SEG.ACK > SND.NXT)" and is dropped (RFC 9293 3.10.7.4). A retransmitted segment is sized by
 * the options it carries (dataRoom), like a new one.
 */
export function retransmitAt(c: Connection, seq: SeqNum, maxLen: number): number {
  const v = c.v;
  const end = c.sndBufEnd;
  // SND.MAX counts the FIN once it was sent, so a sent FIN leaves the whole buffer in range.
  const avail = Math.max(0, Math.min(seqDiff(end, seq), seqDiff(v.sndMax, seq)));
  const len = Math.min(avail, maxLen, dataRoom(c));
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
    // RACK may have marked segments lost outside recovery too: after a timeout, retransmissions
    // that were lost again (RFC 8985 6.3).
    if (v.sackEnabled && (v.inRecovery || rackHasLost(c))) sackRecoverySend(c);
    sendNew(c);
  }
  if (v.ackNow) {
    const fin = finSeq(c);
    if (c.cfg.resendFinWithAck && fin !== null && (s === 'FIN-WAIT-1' || s === 'CLOSING' || s === 'LAST-ACK') && seqGt(v.sndMax, fin) && !finAcked(c)) {
      sendSegment(c, fin, TCP_FIN, EMPTY);
    } else sendAckNow(c);
  }
  // A retransmission timer runs whenever data or a FIN is outstanding (RFC 6298 5.1); a lone
  // window probe byte is the persist timer's business.
  if (seqGt(v.sndNxt, v.sndUna) || (seqGt(v.sndMax, v.sndUna) && v.persistDeadline === null)) {
    if (v.rtxDeadline === null) armRetransmit(c);
  }
  armPersistIfNeeded(c);
  if (v.sackEnabled) armTlp(c);
}

/** New data (or data again after a timeout rewound SND.NXT) and the FIN. */
export function sendNew(c: Connection): void {
  const v = c.v;
  const fin = sendableFin(c);
  const end = c.sndSendableEnd;
  // Cut short by the send limit: the bytes beyond it follow as soon as the backup has them, so
  // the end here is not "all queued data" for Nagle and PSH.
  const capped = end !== c.sndBufEnd;
  // Restart after idle (RFC 5681 4.1): the controller decides what that means for cwnd.
  if (v.sndNxt === v.sndUna && seqLt(v.sndNxt, end) && c.now - v.lastSendAt > c.rto.rtoUs) c.cc.onIdleRestart?.(c.now);
  for (;;) {
    const avail = seqDiff(end, v.sndNxt);
    if (avail > 0) {
      // Per segment: the first one may take a pending D-SACK block that later ones do not carry.
      const maxSeg = dataRoom(c);
      // Limited Transmit (RFC 3042): "the sender can transmit new data upon the arrival of the
      // first two consecutive duplicate ACKs", keeping FlightSize <= cwnd + 2*SMSS.
      const limited = v.inRecovery ? 0 : Math.min(v.dupAcks, 2) * c.sendMss;
      const wnd = Math.min(v.sndWnd, v.inRecovery && v.sackEnabled ? Number.MAX_SAFE_INTEGER : c.cc.cwnd + limited);
      let usable = seqDiff(seqAdd(v.sndUna, wnd), v.sndNxt);
      if (v.inRecovery && v.sackEnabled) {
        const pipe = rackEnabled(c) ? rackPipe(c) : c.scoreboard.pipe(v.sndUna, v.sndMax, v.highRxt, c.sendMss);
        usable = Math.min(usable, c.cc.cwnd - pipe);
      }
      const len = Math.min(avail, maxSeg, usable);
      if (len <= 0) return;
      const retransmitting = seqLt(v.sndNxt, v.sndMax);
      const outstanding = seqGt(v.sndNxt, v.sndUna);
      // RFC 9293 3.8.6.2.1: send if a full segment fits, or all queued data fits and either
      // Nagle is off or nothing is unacknowledged (Nagle, 3.7.4), or the segment is at least
      // half the largest window the peer offered.
      const ok =
        len === maxSeg ||
        retransmitting ||
        (len === avail && !capped && (v.noDelay || !outstanding || v.finQueued)) ||
        len >= v.maxSndWnd / 2;
      if (!ok) return;
      let flags = 0;
      if (len === avail && !capped) flags |= TCP_PSH;
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

/**
 * The tail loss probe's new segment (RFC 8985 7.3): "If a previously unsent segment exists AND
 * the receive window allows new data to be sent: Send that segment" -- one, whatever cwnd says.
 * Returns the sequence space sent; 0 when there is no such segment.
 */
export function sendOneNewSegment(c: Connection): number {
  const v = c.v;
  if (v.sndNxt !== v.sndMax) return 0;
  const end = c.sndSendableEnd;
  const avail = seqDiff(end, v.sndNxt);
  const room = seqDiff(seqAdd(v.sndUna, v.sndWnd), v.sndNxt);
  const len = Math.min(avail, dataRoom(c), room);
  if (len <= 0) return 0;
  let flags = 0;
  if (len === avail && end === c.sndBufEnd) flags |= TCP_PSH;
  if (sendableFin(c) !== null && len === avail) flags |= TCP_FIN;
  const seq = v.sndNxt;
  sendSegment(c, seq, flags, c.sndBuf.slice(seqDiff(seq, c.sndDataStart), len));
  const n = len + (flags & TCP_FIN ? 1 : 0);
  v.sndNxt = v.sndMax = seqAdd(seq, n);
  return n;
}

/**
 * Data is waiting, nothing is in flight and the output loop sent nothing: either the window is
 * zero (persist, RFC 9293 3.8.6.1) or too small to send without silly-window segments. In both
 * cases a timer must run or the connection could stall forever: BSD arms the persist timer, and
 * its expiry is the "override timeout" of RFC 9293 3.8.6.2.1.
 */
function armPersistIfNeeded(c: Connection): void {
  const v = c.v;
  // Data beyond the send limit waits for the backup, not for the peer: no timer for it.
  const dataWaiting = seqLt(v.sndNxt, c.sndSendableEnd);
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
  const avail = seqDiff(c.sndSendableEnd, seq);
  if (avail > 0) {
    if (v.sndWnd === 0) {
      // A peer that answers probes may keep its window closed forever (RFC 9293 3.8.6.1: "as
      // long as the receiving TCP continues to send acknowledgments"); one that stops answering
      // is given up on like an unanswered retransmission.
      if (v.probesUnanswered >= c.cfg.maxRetransmits) {
        sendReset(c);
        c.enterClosed('ETIMEDOUT');
        return;
      }
      v.probesUnanswered++;
      const payload = c.sndBuf.slice(seqDiff(seq, c.sndDataStart), 1);
      sendSegment(c, seq, 0, payload);
      const after = seqAdd(seq, 1);
      if (seqGt(after, v.sndMax)) v.sndMax = after;
      v.persistBackoff = Math.min(v.persistBackoff + 1, 16);
      v.persistDeadline = c.now + persistInterval(c);
      return;
    }
    const len = Math.min(avail, v.sndWnd, dataRoom(c));
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
