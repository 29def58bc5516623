// The receiving half: the window we advertise (receiver SWS avoidance, never shrinking), the SACK
// blocks we report, in-order delivery and reassembly of the segment text, and the ACK policy
// (delayed ACK, immediate ACK for out-of-order data and for filling a hole).

import { seqAdd, seqDiff, seqGt } from '../wire/seq.js';
import { TCP_FIN, type SackBlock, type TcpSegment } from '../wire/types.js';
import type { TcpConnection } from './api.js';
import type { Connection } from './connection.js';
import { RecvBuffer } from './recv-buffer.js';
import { sendReset } from './sender.js';
import { receiveFin } from './close.js';

/** Free receive-buffer space: what the window may offer. Out-of-order data is not counted. */
export function freeSpace(c: Connection): number {
  return Math.max(0, c.cfg.rcvBuf - c.rcvBuf.length);
}

/**
 * The most bytes a connection holds for its peer: unread in-order data plus the reassembly queue,
 * at most rcvBuf + max(2^Rcv.Wind.Shift, rcvBuf / 16). A segment whose new bytes would take it
 * beyond is dropped whole, unacknowledged, and counted (RecvBuffer.drops), as Linux drops what it
 * cannot charge to sk_rcvbuf; the peer sends it again once the application has read.
 *
 * Why: the right edge never moves left, so a scaled field is rounded up from the last edge
 * (receiveWindowField) and may overshoot the free space by up to 2^shift - 1 bytes. A peer that
 * stops short of each edge while the application reads nothing makes every ACK overshoot again,
 * and without a cap the buffer would grow without limit. The slack above rcvBuf is one unit at
 * least, but honest senders stop short too (MSS-sized segments are no multiple of the unit, the
 * persist timer fills odd windows): a bulk transfer from this stack to a pausing reader was seen
 * to end up 144 bytes above rcvBuf, with its advertised edge 1455 bytes beyond. rcvBuf / 16
 * (16 KiB of 256 KiB, 4 KiB of FreeBSD's 65700) leaves room for that, and a peer meets the cap only
 * after dozens of such overshoots without a read. Without scaling nothing overshoots.
 */
export function rcvMemoryCap(c: Connection): number {
  const rcvBuf = c.cfg.rcvBuf;
  return rcvBuf + Math.max(1 << c.v.rcvShift, Math.floor(rcvBuf / 16));
}

/** Segments a core connection dropped at its receive memory cap (0 for anything else), for the host's counters. */
export function rcvbufDropsOf(c: TcpConnection): number {
  const b = (c as Partial<Connection>).rcvBuf;
  return b instanceof RecvBuffer ? b.drops : 0;
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
 * RFC 7323 2.4), so the field is rounded up whenever rounding down (scaling, SWS) would put
 * RCV.NXT + (field << Rcv.Wind.Shift) left of RCV.ADV, the largest edge already advertised.
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
  // Rounded down, a scaled field may fall short of the edge already advertised even when the free
  // space does not (free 2010, advertised 2000, wscale 7: 15 units, 1920 bytes): then it is
  // rounded up from that edge instead, overshooting the free space by less than one unit.
  let field = win >>> shift;
  if (field << shift < current) field = (current + (1 << shift) - 1) >>> shift;
  if (field > 65535) field = 65535;
  const edge = (v.rcvNxt + (field << shift)) >>> 0;
  if (seqGt(edge, v.rcvAdv)) v.rcvAdv = edge;
  return field;
}

/**
 * The SACK blocks the next segment would carry within `room` option bytes (a pending D-SACK
 * block first, then the queue's blocks), leaving the D-SACK block pending: the sender sizes a
 * segment's payload by them before deciding to send it.
 */
export function sackBlocksPending(c: Connection, room = 40): SackBlock[] {
  // 40 option bytes; timestamps take 12 (with padding); a SACK option 2 + 8n, padded to 4 + 8n.
  const max = Math.min(c.v.tsEnabled ? 3 : 4, Math.floor((room - (c.v.tsEnabled ? 12 : 0) - 4) / 8));
  if (max <= 0) return [];
  const out: SackBlock[] = [];
  if (c.pendingDsack) out.push(c.pendingDsack);
  for (const b of c.ooo.sackBlocks(max)) {
    if (out.length >= max) break;
    out.push(b);
  }
  return out;
}

/** SACK blocks for the next segment: a pending D-SACK block first (reported once), then the queue's blocks. */
export function sackBlocksToSend(c: Connection, room = 40): SackBlock[] {
  const out = sackBlocksPending(c, room);
  if (out.length > 0 && out[0] === c.pendingDsack) c.pendingDsack = null;
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
      sendReset(c, seqAdd(seq, payload.length));
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
    // The memory cap (rcvMemoryCap): only bytes not already queued out of order are charged.
    let capped = false;
    if (payload.length > 0) {
      const charge = payload.length - (c.ooo.isEmpty ? 0 : c.ooo.coveredBytes(seq, payload.length));
      if (charge > 0 && c.rcvBuf.length + c.ooo.size + charge > rcvMemoryCap(c)) {
        c.rcvBuf.drops++;
        payload = EMPTY;
        capped = true;
      }
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
    if (trimmedRight || capped) {
      // The FIN, if any, lay beyond the window (or came with data dropped at the cap) and was cut
      // off with the data: the peer sends it again once the window opens.
      v.ackNow = true;
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
export function deliverQueued(c: Connection): void {
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

/** Delayed ACK (RFC 9293 3.8.6.3, RFC 5681 4.2): ACK at least every second segment, else within the delay. */
export function noteInOrderSegment(c: Connection, seg: TcpSegment): void {
  const v = c.v;
  v.segsSinceAck++;
  if (c.cfg.delayedAckUs === 0 || v.segsSinceAck >= 2 || (seg.flags & TCP_FIN) !== 0) {
    v.ackNow = true;
  } else if (v.delAckDeadline === null) {
    v.delAckDeadline = c.now + c.cfg.delayedAckUs;
  }
}

const EMPTY = new Uint8Array(0);
