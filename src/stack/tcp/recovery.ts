// Loss detection and recovery on the sending side: ACK processing (RFC 9293 3.10.7.4 fifth step,
// RFC 5961 5.2), duplicate ACKs and fast retransmit / NewReno recovery (RFC 5681, RFC 6582),
// SACK-based recovery (RFC 6675) and the retransmission timeout (RFC 6298).

import { type SeqNum, seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from '../wire/seq.js';
import { TCP_FIN, TCP_SYN, type TcpSegment } from '../wire/types.js';
import type { Connection } from './connection.js';
import { retransmitAt, sendNew, sendReset } from './sender.js';
import { armRetransmit } from './timers.js';
import { nextLostRange, rackEnabled, rackMarkLost, rackOf, rackOnAck, rackOnTimeout, rackPipe } from './rack.js';

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
  v.probesUnanswered = 0;
  if (v.sackEnabled && seg.options.sack && seg.options.sack.length > 0) {
    c.scoreboard.update(seqGt(ack, v.sndUna) ? ack : v.sndUna, seg.options.sack, v.sndMax);
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
  // RFC 8985 6.2: RACK runs on every ACK, after the scoreboard and SND.UNA are updated.
  if (v.sackEnabled) rackOnAck(c, seg);
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
      // An unacknowledged probe byte is simply sent again with the data that follows it.
      v.persistDeadline = null;
      v.persistBackoff = 0;
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
    // The timed segment (never a retransmitted one: Karn) is acknowledged: a sample in µs.
    rtt = Math.max(1, c.now - v.rttStart);
    v.rttSeq = null;
  } else if (v.rttSeq === null) {
    rtt = timestampRtt(c, seg);
  }
  if (rtt !== null) c.rto.sample(rtt);
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
  // SACK information below the new SND.UNA is history.
  if (v.sackEnabled) c.scoreboard.update(ack, []);
  // RFC 6298 5.2/5.3: stop the timer when all is acknowledged, else restart it.
  v.rtxDeadline = null;
  if (seqGt(v.sndMax, v.sndUna) && v.persistDeadline === null) armRetransmit(c);
  if (fromBuf > 0) c.emit({ type: 'writable' });
}

function onDupAck(c: Connection): void {
  const v = c.v;
  v.dupAcks++;
  const mss = c.sendMss;
  if (!v.inRecovery) {
    const lossBySack = v.sackEnabled && c.scoreboard.isLost(v.sndUna, mss);
    // RFC 6582 section 4.1: no new recovery until the previous recovery point is acknowledged.
    // It asks for an ACK covering more than "recover"; an ACK exactly at
    // recover already acknowledges everything sent before the last recovery or timeout, so its
    // duplicates can only be about newer data, and a new recovery is safe.
    if ((v.dupAcks === 3 || lossBySack) && seqGe(v.sndUna, v.recover)) {
      const inFlight = seqDiff(v.sndMax, v.sndUna);
      v.inRecovery = true;
      v.recover = v.sndMax;
      v.highRxt = v.sndUna;
      c.cc.onEnterRecovery(c.now, inFlight);
      // Fast retransmit (RFC 5681 3.2 step 2 / RFC 6675 step 4.3). RACK learns that the segment
      // is lost, so that its retransmission counts once in the pipe.
      if (rackEnabled(c)) rackMarkLost(c, v.sndUna);
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
    sendReset(c);
    c.enterClosed('ETIMEDOUT');
    return;
  }
  c.rto.backoff();
  rackOnTimeout(c);
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
  if (v.sndNxt === before && seqGt(v.sndMax, v.sndUna)) {
    // The peer's window is closed (it may have shrunk it over data in flight), so sendNew sent
    // nothing. RFC 6298 5.4: "Retransmit the earliest segment that has not been acknowledged by
    // the TCP receiver" -- a segment that was sent, i.e. at most SND.MAX - SND.UNA of it
    // (retransmitAt stops at SND.MAX). Bytes never sent stay queued: a closed window is probed
    // by the persist timer with one octet that advances SND.MAX (RFC 9293 3.8.6.1).
    const n = retransmitAt(c, v.sndUna, c.maxSeg);
    if (n > 0) v.sndNxt = seqAdd(v.sndUna, n);
  }
  // RFC 6298 5.5/5.6 restart the timer for what is outstanding; with nothing outstanding the
  // output loop arms the persist timer instead (RFC 6298 5.2: "When all outstanding data has been
  // acknowledged, turn off the retransmission timer").
  if (seqGt(v.sndMax, v.sndUna)) armRetransmit(c);
}

/** RFC 6675 section 5, step (C): send while cwnd - pipe >= 1 SMSS, retransmitting lost data first. */
export function sackRecoverySend(c: Connection): void {
  if (rackEnabled(c)) {
    rackRecoverySend(c);
    return;
  }
  const v = c.v;
  const mss = c.sendMss;
  for (let guard = 0; guard < 1000; guard++) {
    const pipe = c.scoreboard.pipe(v.sndUna, v.sndMax, v.highRxt, mss);
    if (c.cc.cwnd - pipe < mss) return;
    const canSendNew = seqLt(v.sndNxt, c.sndSendableEnd) && seqDiff(seqAdd(v.sndUna, v.sndWnd), v.sndNxt) > 0;
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
 * RFC 6675 section 5 step (C) with RACK's loss marks (RFC 8985 section 6.2: segments marked lost
 * are retransmitted "as allowed by the congestion control"): "cwnd - pipe >= 1 SMSS" decides,
 * NextSeg rule (1) becomes "the lowest segment marked lost", which includes a retransmission RACK
 * found lost again, below HighRxt. Rule (2), new data, is sendNew's; rule (3)'s rescue
 * retransmission is left to the tail loss probe.
 */
function rackRecoverySend(c: Connection): void {
  const v = c.v;
  const mss = c.sendMss;
  const r = rackOf(c);
  for (let guard = 0; guard < 1000; guard++) {
    const x = nextLostRange(c);
    if (x === null) return;
    // "cwnd - pipe >= 1 SMSS", or the whole range when it is smaller: a retransmission that
    // carried SACK blocks left the tail of a full-sized original (a few octets) behind, and that
    // sliver must not wait for the pipe to drain a full segment's worth.
    const room = Math.min(mss, seqDiff(x.end, x.start));
    if (!r.fastRetransmitPending && c.cc.cwnd - rackPipe(c) < room) return;
    r.fastRetransmitPending = false;
    const n = retransmitAt(c, x.start, Math.min(seqDiff(x.end, x.start), c.maxSeg));
    if (n === 0) return;
    const sent = seqAdd(x.start, n);
    if (seqGt(sent, v.highRxt)) v.highRxt = sent;
  }
}

/**
 * RFC 7323 section 4 (RTTM): "the RTT measurement ... TSecr ... is the timestamp of the segment
 * that caused the ACK", so it stays valid when the data was retransmitted, where Karn's rule
 * leaves the timer without a sample. Used only then: the timed segment gives microseconds, the
 * timestamp clock only its own ticks.
 */
function timestampRtt(c: Connection, seg: TcpSegment): number | null {
  const ts = seg.options.timestamp;
  if (!c.v.tsEnabled || !ts || ts.tsecr === 0) return null;
  const ticks = (c.env.tsClock(c.now) - ts.tsecr) >>> 0;
  // A TSecr from the future or from long ago is not one of ours.
  if (ticks === 0 || ticks >= 0x80000000) return null;
  const us = (ticks * 1_000_000) / (c.env.tsClockHz ?? 1000);
  return us > c.cfg.maxRtoUs ? null : us;
}
