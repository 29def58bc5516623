// RACK-TLP loss detection (RFC 8985) for connections that negotiated SACK.
//
// RACK ("Recent ACKnowledgment") decides loss by time rather than by counting: "a segment is
// lost if a segment sent sufficiently later has been delivered" (RFC 8985 section 3.1), so a
// lost retransmission is detected like a lost original. TLP (the Tail Loss Probe, section 7)
// sends one segment when the ACK stream dries up, so that a loss at the tail of a flight is
// reported by SACK (and repaired by RACK) instead of waiting for the retransmission timer.
//
// Per-segment state (transmission time, retransmitted, lost, delivered) is a list of sequence
// ranges beside the TCB, kept for [SND.UNA, SND.MAX). It is not replicated: a restored connection
// starts with one range of unknown age (see rackOf), which RACK treats as retransmitted and so
// never takes an RTT sample from. The two timers are deadlines in the TCB (TcbVars.rackDeadline,
// TcbVars.tlpDeadline) like every other timer; timers.ts runs them.

import { type SeqNum, seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from '../wire/seq.js';
import type { SackBlock, TcpSegment } from '../wire/types.js';
import type { Micros, TcpConnection } from './api.js';
import type { Connection } from './connection.js';
import { DUP_THRESH } from './sack-scoreboard.js';

const MS = 1000;

/** RFC 8985 section 7.2: "WCDelAckT stands for worst-case delayed ACK timer ... 200 ms". */
export const DEFAULT_TLP_DELACK_US = 200 * MS;
/**
 * Floor of the PTO. RFC 8985 leaves it to the implementation; Linux adds TCP_TIMEOUT_MIN (2
 * jiffies) to 2*SRTT, so on a 0.1 ms path a probe goes after about 2 ms.
 */
export const DEFAULT_TLP_MIN_US = 2 * MS;
/** RFC 8985 section 6.2 step 4: "RACK.reo_wnd_persist = 16". */
const REO_WND_PERSIST = 16;

/** One transmitted range: [start, end), FIN counted in the sequence space like on the wire. */
export interface SentRange {
  start: SeqNum;
  end: SeqNum;
  /** RFC 8985 Segment.xmit_ts: time of the latest (re)transmission. */
  xmitTs: Micros;
  /** RFC 8985 Segment.retransmitted. */
  retransmitted: boolean;
  /** Marked lost (by RACK, by RFC 6675 IsLost, or by the RTO); waits to be sent again unless rtxInFlight. */
  lost: boolean;
  /** A retransmission of it is in flight (counts in the pipe, RFC 6675 SetPipe (b)). */
  rtxInFlight: boolean;
  /** SACKed (or cumulatively acknowledged). */
  delivered: boolean;
}

export interface LossCounters {
  /** Retransmission timeouts (RFC 6298 5.4) of established connections, with or without SACK. */
  rto: number;
  /** Tail loss probes sent (RFC 8985 section 7.3). */
  tlp: number;
  /** Segments RACK marked lost by time (RFC 8985 section 6.2 step 5). */
  rackLost: number;
}

export class RackState {
  ranges: SentRange[] = [];
  // RFC 8985 section 6.1 per-connection variables.
  /** RACK.xmit_ts, RACK.end_seq, RACK.rtt: the most recently sent segment that was delivered. */
  xmitTs: Micros | null = null;
  endSeq: SeqNum = 0;
  rtt = 0;
  /** RACK.min_RTT (a plain minimum: a path's minimum rarely grows within one connection). */
  minRtt: number | null = null;
  /** RACK.fack: the highest end sequence of a delivered segment. */
  fack: SeqNum | null = null;
  reorderingSeen = false;
  reoWndMult = 1;
  reoWndPersist = 0;
  /** RACK.dsack_round: SND.NXT when the multiplier last grew; null for none. */
  dsackRound: SeqNum | null = null;
  /** TLP.end_seq: SND.MAX after the probe was sent; null when no probe is outstanding. */
  tlpEndSeq: SeqNum | null = null;
  tlpWasRetransmit = false;
  /** SND.UNA and SND.MAX when the PTO was last armed: it restarts when either moves. */
  armedUna: SeqNum | null = null;
  armedMax: SeqNum | null = null;
  wasInRecovery = false;
  /** Recovery just began: its first retransmission goes regardless of the pipe (see enterRecoveryOnLoss). */
  fastRetransmitPending = false;
  readonly counters: LossCounters = { rto: 0, tlp: 0, rackLost: 0 };
}

const states = new WeakMap<Connection, RackState>();

/** The RACK state of a connection, created on first use. */
export function rackOf(c: Connection): RackState {
  let r = states.get(c);
  if (r === undefined) {
    r = new RackState();
    const v = c.v;
    if (seqGt(v.sndMax, v.sndUna)) {
      // Data in flight of unknown age (a restored replica): never an RTT sample, never "sent after".
      r.ranges.push({ start: v.sndUna, end: v.sndMax, xmitTs: 0, retransmitted: true, lost: false, rtxInFlight: false, delivered: false });
    }
    states.set(c, r);
  }
  return r;
}

/** The loss-recovery counters of a core connection (zeros for anything else). */
export function lossCountersOf(c: TcpConnection): LossCounters {
  const r = states.get(c as Connection);
  return r === undefined ? { rto: 0, tlp: 0, rackLost: 0 } : r.counters;
}

/** RACK-TLP runs on SACK connections unless the configuration turns it off. */
export function rackEnabled(c: Connection): boolean {
  return c.v.sackEnabled && c.cfg.rack !== false;
}

// ---- transmissions ------------------------------------------------------------------------

/** Index of the first range whose end is above seq. */
function firstEndingAfter(ranges: SentRange[], seq: SeqNum): number {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (seqLe(ranges[mid]!.end, seq)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Makes seq a range boundary (when it falls inside a range). */
function splitAt(ranges: SentRange[], seq: SeqNum): void {
  const i = firstEndingAfter(ranges, seq);
  const r = ranges[i];
  if (r === undefined || !seqGt(seq, r.start)) return;
  ranges.splice(i + 1, 0, { ...r, start: seq });
  r.end = seq;
}

/**
 * Records a transmission of [seq, seq + len) at c.now (len counts a FIN). New sequence space is
 * appended; sequence space sent before becomes "retransmitted" with a new xmit_ts (RFC 8985
 * section 6.1: "Segment.xmit_ts is the time of the most recent transmission").
 */
export function rackOnSent(c: Connection, seq: SeqNum, len: number): void {
  if (len <= 0 || !rackEnabled(c)) return;
  const r = rackOf(c);
  const end = seqAdd(seq, len);
  const rs = r.ranges;
  const last = rs[rs.length - 1];
  const top = last === undefined ? seq : last.end;
  if (seqGe(seq, top)) {
    rs.push({ start: seq, end, xmitTs: c.now, retransmitted: false, lost: false, rtxInFlight: false, delivered: false });
    return;
  }
  splitAt(rs, seq);
  splitAt(rs, end);
  for (let i = firstEndingAfter(rs, seq); i < rs.length && seqLe(rs[i]!.end, end); i++) {
    const x = rs[i]!;
    x.xmitTs = c.now;
    x.retransmitted = true;
    // A lost range stays lost: its original is gone, only the retransmission is in flight and
    // counts in the pipe once (RFC 6675 SetPipe: IsLost is true, S1 <= HighRxt counts it once).
    x.rtxInFlight = true;
  }
  if (seqGt(end, top)) {
    rs.push({ start: top, end, xmitTs: c.now, retransmitted: false, lost: false, rtxInFlight: false, delivered: false });
  }
}

// ---- ACK processing (RFC 8985 section 6.2) ---------------------------------------------------

/** True when the first SACK block is a D-SACK (RFC 2883 section 4). */
function hasDsack(blocks: readonly SackBlock[] | undefined, ack: SeqNum): boolean {
  if (!blocks || blocks.length === 0) return false;
  const b = blocks[0]!;
  if (seqLe(b.right, ack)) return true;
  const o = blocks[1];
  return o !== undefined && seqGe(b.left, o.left) && seqLe(b.right, o.right);
}

/**
 * Runs after the ACK's cumulative and SACK information is in the TCB and the scoreboard: updates
 * the RACK state from every segment the ACK newly delivered, detects losses, handles the TLP
 * episode, and enters recovery when RACK found a loss. Returns the number of segments marked lost.
 */
export function rackOnAck(c: Connection, seg: TcpSegment): number {
  if (!rackEnabled(c)) return 0;
  const v = c.v;
  const r = rackOf(c);
  const now = c.now;
  const ack = v.sndUna;
  const rs = r.ranges;
  const tsecr = v.tsEnabled && seg.options.timestamp ? seg.options.timestamp.tsecr : null;

  // Newly delivered: cumulatively acknowledged, or newly covered by a SACK block. A peer's block
  // edges are where its segments ended, which need not be where ours did (a retransmission may
  // be cut differently), so the ranges are cut there first.
  splitAt(rs, ack);
  const blocks = c.scoreboard.blocks();
  for (const b of blocks) {
    splitAt(rs, b.left);
    splitAt(rs, b.right);
  }
  let bi = 0;
  let acked = 0;
  for (const x of rs) {
    let newly = false;
    if (seqLe(x.end, ack)) {
      acked++;
      newly = !x.delivered;
    } else if (!x.delivered) {
      while (bi < blocks.length && seqLe(blocks[bi]!.right, x.start)) bi++;
      const b = blocks[bi];
      newly = b !== undefined && seqLe(b.left, x.start) && seqGe(b.right, x.end);
    }
    if (!newly) continue;
    x.delivered = true;
    x.lost = false;
    x.rtxInFlight = false;
    rackUpdate(c, r, x, tsecr, now);
  }
  rs.splice(0, acked);

  // Step 4: "RACK_update_reo_wnd()" -- D-SACK widens the reordering window once per round trip.
  if (hasDsack(seg.options.sack, ack)) {
    if (r.dsackRound === null || seqGe(ack, r.dsackRound)) {
      r.dsackRound = v.sndMax;
      r.reoWndMult++;
      r.reoWndPersist = REO_WND_PERSIST;
    }
  }
  // "If RACK.reo_wnd_persist is 0, RACK.reo_wnd_mult = 1" after 16 loss recoveries.
  if (r.wasInRecovery && !v.inRecovery) {
    if (r.reoWndPersist > 0) r.reoWndPersist--;
    if (r.reoWndPersist === 0) r.reoWndMult = 1;
  }

  // TLP episode (RFC 8985 section 7.4), simplified to its congestion consequence.
  if (r.tlpEndSeq !== null && seqGe(ack, r.tlpEndSeq)) {
    const dsack = hasDsack(seg.options.sack, ack);
    // "If the TLP sender receives a D-SACK for the TLP retransmission ... there was no loss";
    // otherwise the probe repaired a loss and "the sender MUST invoke a congestion control
    // response equivalent to fast recovery" -- one reduction, outside a recovery already doing it.
    if (r.tlpWasRetransmit && !dsack && !v.inRecovery) {
      c.cc.onEnterRecovery(now, seqDiff(v.sndMax, v.sndUna));
      c.cc.onExitRecovery(now);
    }
    r.tlpEndSeq = null;
  }

  const lost = rackDetectLoss(c, r);
  enterRecoveryOnLoss(c, r);
  r.wasInRecovery = v.inRecovery;
  return lost;
}

/** RFC 8985 section 6.2 steps 1-3 for one newly delivered segment. */
function rackUpdate(c: Connection, r: RackState, x: SentRange, tsecr: number | null, now: Micros): void {
  const rtt = now - x.xmitTs;
  // Step 2: "If Segment.retransmitted is TRUE: If ACK.ts_option.echo_reply < Segment.xmit_ts:
  // Return. If Now() - Segment.xmit_ts < RACK.min_RTT: Return" -- the ACK may be for the original.
  if (x.retransmitted) {
    if (tsecr !== null && ((tsecr - (c.env.tsClock(x.xmitTs) >>> 0)) | 0) < 0) return;
    if (r.minRtt !== null && rtt < r.minRtt) return;
    if (x.xmitTs === 0) return;
  } else {
    // Step 1: "Use the RTT measurements obtained via [RFC6298] or [RFC7323] to update the
    // estimated minimum RTT in RACK.min_RTT." An original's delivery time is such a measurement.
    if (r.minRtt === null || rtt < r.minRtt) r.minRtt = Math.max(1, rtt);
  }
  // "RACK.rtt = Now() - Segment.xmit_ts; If RACK_sent_after(Segment.xmit_ts, Segment.end_seq,
  // RACK.xmit_ts, RACK.end_seq): RACK.xmit_ts = Segment.xmit_ts; RACK.end_seq = Segment.end_seq"
  r.rtt = rtt;
  if (r.xmitTs === null || sentAfter(x.xmitTs, x.end, r.xmitTs, r.endSeq)) {
    r.xmitTs = x.xmitTs;
    r.endSeq = x.end;
  }
  // Step 3: "If Segment.end_seq > RACK.fack: RACK.fack = Segment.end_seq; Else if
  // Segment.end_seq < RACK.fack AND Segment.retransmitted is FALSE: RACK.reordering_seen = TRUE".
  if (r.fack === null || seqGt(x.end, r.fack)) r.fack = x.end;
  else if (seqLt(x.end, r.fack) && !x.retransmitted) r.reorderingSeen = true;
}

/** "RACK_sent_after(t1, seq1, t2, seq2): If t1 > t2: Return true ... Else if t1 == t2 AND seq1 > seq2". */
function sentAfter(t1: Micros, seq1: SeqNum, t2: Micros, seq2: SeqNum): boolean {
  return t1 > t2 || (t1 === t2 && seqGt(seq1, seq2));
}

/**
 * RFC 8985 section 6.2 step 4, RACK_update_reo_wnd: "If RACK.reordering_seen is FALSE: If in
 * loss recovery: Return 0 ... Else if RACK.segs_sacked >= DupThresh: Return 0" and then
 * "Return min(RACK.reo_wnd_mult * RACK.min_RTT / 4, SRTT)".
 */
export function reoWnd(c: Connection, r: RackState = rackOf(c)): number {
  if (!r.reorderingSeen) {
    if (c.v.inRecovery || c.v.rtxCount > 0) return 0;
    if (c.scoreboard.sackedBytes() >= DUP_THRESH * c.sendMss) return 0;
  }
  const minRtt = r.minRtt ?? 0;
  const srtt = c.rto.srttUs ?? minRtt;
  return Math.min((r.reoWndMult * minRtt) / 4, srtt);
}

/**
 * RFC 8985 section 6.2 step 5, RACK_detect_loss: "For each segment, Segment, not acknowledged yet:
 * If RACK_sent_after(RACK.xmit_ts, RACK.end_seq, Segment.xmit_ts, Segment.end_seq): remaining =
 * Segment.xmit_ts + RACK.rtt + RACK.reo_wnd - Now(); If remaining <= 0: Segment.lost = TRUE ...
 * Else: timeout = max(remaining, timeout)". "If timeout != 0: Arm the RACK timer to timeout".
 *
 * RFC 6675's DupThresh rule (IsLost) marks segments too, so SACK recovery is never slower than
 * before (RFC 8985 section 6.2: RACK "can be used together with" DupThresh). Returns the number
 * of segments marked lost by time.
 */
export function rackDetectLoss(c: Connection, r: RackState = rackOf(c)): number {
  const v = c.v;
  const now = c.now;
  let timeout = 0;
  let lost = 0;
  const wnd = reoWnd(c, r);
  const mss = c.sendMss;
  for (const x of r.ranges) {
    if (x.delivered || (x.lost && !x.rtxInFlight)) continue;
    if (r.xmitTs !== null && sentAfter(r.xmitTs, r.endSeq, x.xmitTs, x.end)) {
      const remaining = x.xmitTs + r.rtt + wnd - now;
      if (remaining <= 0) {
        x.lost = true;
        x.rtxInFlight = false;
        lost++;
        continue;
      }
      timeout = Math.max(timeout, remaining);
    }
    if (!x.rtxInFlight && !x.retransmitted && c.scoreboard.isLost(x.start, mss)) x.lost = true;
  }
  r.counters.rackLost += lost;
  v.rackDeadline = timeout > 0 ? now + Math.ceil(timeout) : null;
  return lost;
}

/** Marks the range holding seq lost (the DupThresh fast retransmit of RFC 6675 step 4.3). */
export function rackMarkLost(c: Connection, seq: SeqNum): void {
  const rs = rackOf(c).ranges;
  const x = rs[firstEndingAfter(rs, seq)];
  if (x === undefined || x.delivered || !seqLe(x.start, seq)) return;
  x.lost = true;
  x.rtxInFlight = false;
}

/** True when some range is lost and waiting to be sent again below SND.NXT. */
export function rackHasLost(c: Connection): boolean {
  if (!rackEnabled(c)) return false;
  const sndNxt = c.v.sndNxt;
  for (const x of rackOf(c).ranges) {
    if (!seqLt(x.start, sndNxt)) return false;
    if (x.lost && !x.rtxInFlight && !x.delivered) return true;
  }
  return false;
}

/**
 * A loss found by RACK (or the DupThresh rule) starts SACK recovery (RFC 6675 section 5 step 4;
 * RFC 8985 section 6.2: "the sender ... MUST follow ... congestion control"): one window
 * reduction per episode -- RFC 6582 section 4.1's "recover" blocks a second one until everything
 * outstanding when the first began is acknowledged. After a timeout (SND.UNA below "recover")
 * the RTO has already reduced the window and the lost segments are sent again without entering
 * recovery.
 */
function enterRecoveryOnLoss(c: Connection, r: RackState): void {
  const v = c.v;
  if (v.inRecovery || !seqGe(v.sndUna, v.recover)) return;
  let any = false;
  for (const x of r.ranges) if (x.lost && !x.delivered && !x.rtxInFlight) any = true;
  if (!any) return;
  v.inRecovery = true;
  v.recover = v.sndMax;
  v.highRxt = v.sndUna;
  c.cc.onEnterRecovery(c.now, seqDiff(v.sndMax, v.sndUna));
  // RFC 6675 section 5 step (4.3): "The TCP sender MUST retransmit the first segment ... regardless
  // of cwnd" -- else a small flight, whose pipe still counts its unSACKed tail, waits for more ACKs.
  r.fastRetransmitPending = true;
  // The probe's outcome no longer matters: this recovery is the congestion response.
  r.tlpEndSeq = null;
  v.tlpDeadline = null;
}

/** The reorder timer fired: "RACK_detect_loss_and_arm_timer()" (RFC 8985 section 6.3). */
export function onRackTimer(c: Connection): void {
  c.v.rackDeadline = null;
  if (!rackEnabled(c)) return;
  const r = rackOf(c);
  rackDetectLoss(c, r);
  enterRecoveryOnLoss(c, r);
  r.wasInRecovery = c.v.inRecovery;
}

/**
 * RFC 6675 SetPipe from per-segment state, with RACK's loss marks: a range counts if it is
 * neither delivered nor lost, and again while a retransmission of it is in flight.
 */
export function rackPipe(c: Connection): number {
  let pipe = 0;
  for (const x of rackOf(c).ranges) {
    if (x.delivered) continue;
    const n = seqDiff(x.end, x.start);
    if (!x.lost) pipe += n;
    if (x.rtxInFlight) pipe += n;
  }
  return pipe;
}

/** The first range marked lost, not delivered, not being retransmitted, below SND.NXT. */
export function nextLostRange(c: Connection): SentRange | null {
  const sndNxt = c.v.sndNxt;
  for (const x of rackOf(c).ranges) {
    if (!seqLt(x.start, sndNxt)) return null;
    if (x.lost && !x.rtxInFlight && !x.delivered) return x;
  }
  return null;
}

/** RTO (RFC 8985 section 6.3: after an RTO "all unacknowledged segments are lost"). */
export function rackOnTimeout(c: Connection): void {
  const v = c.v;
  v.rackDeadline = null;
  v.tlpDeadline = null;
  const r = states.get(c) ?? (rackEnabled(c) ? rackOf(c) : undefined);
  if (r === undefined) {
    states.set(c, new RackState());
    states.get(c)!.counters.rto++;
    return;
  }
  r.counters.rto++;
  r.tlpEndSeq = null;
  r.armedUna = r.armedMax = null;
  // The scoreboard is cleared on a timeout (RFC 6675 section 5.1, RFC 2018 section 8 reneging),
  // and go-back-N resends everything from SND.UNA.
  for (const x of r.ranges) {
    x.lost = true;
    x.delivered = false;
    x.rtxInFlight = false;
  }
}

// ---- Tail Loss Probe (RFC 8985 section 7) -----------------------------------------------------

/**
 * RFC 8985 section 7.2: "the sender SHOULD start or restart a loss probe PTO timer after
 * transmitting new data ... or upon receiving an ACK that cumulatively acknowledges new data,
 * unless it is already in fast recovery, RTO recovery, or the sender has segments delivered
 * out of order (i.e., not cumulatively acknowledged)". Called at the end of the output loop.
 */
export function armTlp(c: Connection): void {
  const v = c.v;
  if (!rackEnabled(c)) return;
  const r = rackOf(c);
  const s = v.state;
  const sending = s === 'ESTABLISHED' || s === 'CLOSE-WAIT' || s === 'FIN-WAIT-1' || s === 'CLOSING' || s === 'LAST-ACK';
  const eligible =
    sending &&
    seqGt(v.sndMax, v.sndUna) &&
    !v.inRecovery &&
    v.rtxCount === 0 &&
    v.sndNxt === v.sndMax &&
    v.persistDeadline === null &&
    r.tlpEndSeq === null &&
    c.scoreboard.highestSacked() === null;
  if (!eligible) {
    v.tlpDeadline = null;
    r.armedUna = r.armedMax = null;
    return;
  }
  if (v.tlpDeadline != null && r.armedUna === v.sndUna && r.armedMax === v.sndMax) return;
  r.armedUna = v.sndUna;
  r.armedMax = v.sndMax;
  v.tlpDeadline = c.now + ptoUs(c);
}

/**
 * RFC 8985 section 7.2: "If SRTT is available: PTO = 2 * SRTT. If FlightSize is one segment,
 * PTO += WCDelAckT ... Else: PTO = 1 second"; "PTO = min(RTO, PTO)" is left to the two timers
 * (the earlier fires). The floor keeps a probe from racing a receiver's ordinary ACK on a
 * sub-millisecond path.
 */
export function ptoUs(c: Connection): number {
  const srtt = c.rto.srttUs;
  if (srtt === null) return 1_000_000;
  let pto = 2 * srtt;
  // Linux's form of the single-segment rule: max(2*SRTT, 1.5*SRTT + WCDelAckT).
  if (seqDiff(c.v.sndMax, c.v.sndUna) <= c.sendMss) pto = Math.max(pto, 1.5 * srtt + (c.cfg.tlpDelAckUs ?? DEFAULT_TLP_DELACK_US));
  return Math.ceil(Math.max(pto, c.cfg.tlpMinUs ?? DEFAULT_TLP_MIN_US));
}

/**
 * The PTO fired (RFC 8985 section 7.3): "If a previously unsent segment exists AND the receive
 * window allows new data to be sent: Send that segment ... Else: Retransmit the last segment".
 * `sendNewOne` sends one new segment and returns the sequence space sent (0 when none could go);
 * `retransmit` resends [seq, seq+len). Then "the sender MUST re-arm the RTO timer, not the PTO
 * timer" -- the caller restarts the retransmission timer.
 */
export function onTlpTimer(c: Connection, sendNewOne: (c: Connection) => number, retransmit: (c: Connection, seq: SeqNum, len: number) => number): boolean {
  const v = c.v;
  v.tlpDeadline = null;
  if (!rackEnabled(c) || !seqGt(v.sndMax, v.sndUna) || v.inRecovery) return false;
  const r = rackOf(c);
  let sent = sendNewOne(c);
  r.tlpWasRetransmit = false;
  if (sent === 0) {
    const last = r.ranges[r.ranges.length - 1];
    if (last === undefined || last.delivered) return false;
    sent = retransmit(c, last.start, seqDiff(last.end, last.start));
    if (sent === 0) return false;
    r.tlpWasRetransmit = true;
  }
  r.counters.tlp++;
  r.tlpEndSeq = v.sndMax;
  return true;
}
