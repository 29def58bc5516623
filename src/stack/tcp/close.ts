// Closing: the peer's FIN and the state it moves us to, TIME-WAIT's segment rules, and the
// application's shutdown / close / abort (RFC 9293 3.6, 3.10.4, 3.10.5).

import { seqAdd, seqGt } from '../wire/seq.js';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type TcpSegment } from '../wire/types.js';
import type { Connection } from './connection.js';
import { processSyn } from './segment-arrives.js';
import { finAcked, flush, sendReset } from './sender.js';
import { armFinWait2, enterTimeWait } from './timers.js';

/**
 * TIME-WAIT, as BSD's tcp_twcheck does it within RFC 9293's rules (and like it, without PAWS or
 * the missing-timestamp rule, which would hide a new incarnation's SYN): RST is ignored (RFC 1337),
 * segments without ACK are dropped, a retransmitted FIN is acknowledged and restarts 2MSL,
 * anything else but an exact duplicate ACK is acknowledged. A SYN gets a challenge ACK (RFC 5961
 * 4.2 covers every synchronized state, and the suite's STANDARD branch expects it): a peer that
 * really starts a new connection answers it with a RST, which TIME-WAIT ignores, so the new
 * connection waits for 2MSL -- the price of RFC 1337.
 */
export function processTimeWait(c: Connection, seg: TcpSegment, len: number): void {
  const v = c.v;
  const f = seg.flags;
  // RFC 1337: TIME-WAIT ignores RST, so that an old duplicate cannot assassinate it.
  if (f & TCP_RST) return;
  if (f & TCP_SYN) {
    if (c.cfg.timeWaitReuse && (f & (TCP_ACK | TCP_RST)) === 0 && isNewIncarnation(c, seg)) {
      c.endedBySyn = true;
      c.enterClosed(null);
      return;
    }
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

/**
 * RFC 9293 3.6.1: a new SYN may reopen a connection in TIME-WAIT "if its initial sequence number
 * for the new incarnation is larger than the largest sequence number used on the previous
 * connection incarnation"; RFC 6191 allows it instead when timestamps are in use and the SYN's
 * TSval is larger than TS.Recent.
 */
function isNewIncarnation(c: Connection, seg: TcpSegment): boolean {
  const v = c.v;
  const ts = seg.options.timestamp;
  if (v.tsEnabled && ts) return seqGt(ts.tsval, v.tsRecent);
  return seqGt(seg.seq, v.rcvNxt);
}

/** Eighth step: the FIN is in order. */
export function receiveFin(c: Connection): void {
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

/**
 * Fifth step, the closing states: what an ACK of our FIN does (RFC 9293 3.10.7.4). Returns false
 * when the segment needs no further processing.
 */
export function afterOurFinAcked(c: Connection): boolean {
  const v = c.v;
  if (!finAcked(c)) return true;
  switch (v.state) {
    case 'FIN-WAIT-1':
      // "In addition to the processing for the ESTABLISHED state, if the FIN segment is now
      // acknowledged, then enter FIN-WAIT-2 and continue processing in that state."
      v.state = 'FIN-WAIT-2';
      armFinWait2(c);
      return true;
    case 'CLOSING':
      // "if the ACK acknowledges our FIN, then enter the TIME-WAIT state; otherwise, ignore the
      // segment": the peer's FIN is already acknowledged, so nothing more is sent (as in BSD).
      enterTimeWait(c);
      v.ackNow = false;
      return false;
    case 'LAST-ACK':
      // "The only thing that can arrive in this state is an acknowledgment of our FIN. If our FIN
      // is now acknowledged, delete the TCB, enter the CLOSED state, and return."
      c.enterClosed(null);
      return false;
    default:
      return true;
  }
}

/** SHUTDOWN (half close): the FIN goes after the queued data (RFC 9293 3.10.4, CLOSE call). */
export function userShutdown(c: Connection): void {
  const v = c.v;
  if (v.finQueued) return;
  switch (v.state) {
    case 'SYN-SENT':
      // RFC 9293: "Delete the TCB and return 'error: closing' responses to any queued SENDs".
      // That loses data written before the handshake finished, so when there is some we do as
      // BSD does (TF_NEEDFIN): the FIN follows it once the connection is established.
      if (c.sndBuf.length === 0) {
        c.enterClosed(null);
        return;
      }
      v.finQueued = true;
      return;
    case 'SYN-RECEIVED':
      // RFC 9293 allows the FIN at once; like BSD (TF_NEEDFIN) we send it once the handshake
      // completes, which then goes straight to FIN-WAIT-1.
      v.finQueued = true;
      return;
    case 'ESTABLISHED':
      v.finQueued = true;
      v.state = 'FIN-WAIT-1';
      break;
    case 'CLOSE-WAIT':
      v.finQueued = true;
      v.state = 'LAST-ACK';
      break;
    default:
      return;
  }
  flush(c);
}

/** CLOSE: shut down and stop reading; unread data turns it into an abort. */
export function userClose(c: Connection): void {
  const v = c.v;
  if (v.state === 'CLOSED') return;
  // RFC 9293 3.6 / RFC 2525 2.17: closing with unread received data must reset the connection so
  // that the peer learns its data was not consumed.
  if (c.rcvBuf.length > 0 || (v.state !== 'SYN-SENT' && !c.ooo.isEmpty)) {
    userAbort(c);
    return;
  }
  v.userClosed = true;
  if (v.state === 'LISTEN') {
    c.enterClosed(null);
    return;
  }
  if (v.state === 'FIN-WAIT-2') armFinWait2(c);
  userShutdown(c);
}

/**
 * ABORT (RFC 9293 3.10.5): SYN-RECEIVED, ESTABLISHED, FIN-WAIT-*, CLOSE-WAIT send a reset
 * <SEQ=SND.NXT><CTL=RST>; the other states just delete the TCB.
 */
export function userAbort(c: Connection): void {
  const v = c.v;
  const s = v.state;
  if (s === 'CLOSED') return;
  if (s === 'SYN-RECEIVED' || s === 'ESTABLISHED' || s === 'FIN-WAIT-1' || s === 'FIN-WAIT-2' || s === 'CLOSE-WAIT') {
    sendReset(c);
  }
  c.enterClosed(null);
}
