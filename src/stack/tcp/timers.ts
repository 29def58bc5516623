// Timers as data: each is a deadline in the TCB (null when not armed). The driver calls onTimer
// at or after the earliest one; this module decides which fired and what each does.

import type { Micros } from './api.js';
import type { Connection } from './connection.js';
import type { TcbVars } from './state.js';
import { sendSyn, sendSynAck } from './handshake.js';
import { onRetransmitTimeout } from './recovery.js';
import { onRackTimer, onTlpTimer } from './rack.js';
import { retransmitAt, sendAckNow, sendKeepaliveProbe, sendOneNewSegment, sendReset, sendWindowProbe } from './sender.js';

export function nextDeadlineOf(v: TcbVars): Micros | null {
  const base = earlier(earlier(earlier(v.rtxDeadline, v.delAckDeadline), earlier(v.persistDeadline, v.keepaliveDeadline)), v.timeWaitDeadline);
  // The RACK timers only matter while data can be outstanding.
  if (v.state === 'CLOSED' || v.state === 'TIME-WAIT') return base;
  return earlier(base, earlier(v.rackDeadline ?? null, v.tlpDeadline ?? null));
}

function earlier(a: Micros | null, b: Micros | null): Micros | null {
  if (a === null) return b;
  if (b === null) return a;
  return a < b ? a : b;
}

/** (Re)starts the retransmission timer at now + RTO (RFC 6298 5.1, 5.3). */
export function armRetransmit(c: Connection): void {
  c.v.rtxDeadline = c.now + c.rto.rtoUs;
}

/** Keepalive runs in synchronized states while enabled; any received segment restarts the idle wait. */
export function armKeepalive(c: Connection): void {
  const v = c.v;
  const ka = v.keepalive;
  if (!ka || !(v.state === 'ESTABLISHED' || v.state === 'CLOSE-WAIT' || v.state === 'FIN-WAIT-1' || v.state === 'FIN-WAIT-2')) {
    v.keepaliveDeadline = null;
    v.keepaliveProbes = 0;
    return;
  }
  v.keepaliveProbes = 0;
  v.keepaliveDeadline = v.lastRecvAt + ka.idleUs;
}

/** Enters (or restarts) TIME-WAIT: "Start the time-wait timer, turn off the other timers." */
export function enterTimeWait(c: Connection): void {
  const v = c.v;
  v.state = 'TIME-WAIT';
  v.rtxDeadline = v.persistDeadline = v.keepaliveDeadline = null;
  if (v.rackDeadline != null) v.rackDeadline = null;
  if (v.tlpDeadline != null) v.tlpDeadline = null;
  v.timeWaitDeadline = c.now + c.cfg.timeWaitUs;
}

/**
 * FIN-WAIT-2 after close(): nobody can read any more, so a peer that never sends its FIN must not
 * hold the TCB forever (RFC 9293 leaves this open; Linux's tcp_fin_timeout and BSD's
 * tcp_finwait2_timeout do the same). The TIME-WAIT deadline field serves, for the same length.
 * A half-close by shutdown() keeps waiting, since the application still reads.
 */
export function armFinWait2(c: Connection): void {
  if (c.v.userClosed) c.v.timeWaitDeadline = c.now + c.cfg.timeWaitUs;
}

export function runTimers(c: Connection): void {
  const v = c.v;
  const now = c.now;
  if (v.timeWaitDeadline !== null && now >= v.timeWaitDeadline) {
    v.timeWaitDeadline = null;
    c.enterClosed(null);
    return;
  }
  if (v.rtxDeadline !== null && now >= v.rtxDeadline) {
    v.rtxDeadline = null;
    if (v.state === 'SYN-SENT' || v.state === 'SYN-RECEIVED') handshakeTimeout(c);
    else onRetransmitTimeout(c);
    if (v.state === 'CLOSED') return;
  }
  if (v.rackDeadline != null && now >= v.rackDeadline) onRackTimer(c);
  if (v.tlpDeadline != null && now >= v.tlpDeadline) {
    // RFC 8985 7.3: "the sender MUST re-arm the RTO timer, not the PTO timer, if the FlightSize
    // is not zero".
    if (onTlpTimer(c, sendOneNewSegment, retransmitAt)) armRetransmit(c);
  }
  if (v.persistDeadline !== null && now >= v.persistDeadline) {
    sendWindowProbe(c);
  }
  if (v.delAckDeadline !== null && now >= v.delAckDeadline) {
    v.delAckDeadline = null;
    if (v.segsSinceAck > 0) sendAckNow(c);
  }
  if (v.keepaliveDeadline !== null && now >= v.keepaliveDeadline) keepaliveTimeout(c);
}

/** SYN or SYN-ACK retransmission with exponential backoff; give up after synRetries. */
function handshakeTimeout(c: Connection): void {
  const v = c.v;
  v.rtxCount++;
  if (v.rtxCount > c.cfg.synRetries) {
    const err = v.softError ?? 'ETIMEDOUT';
    if (v.state === 'SYN-RECEIVED' && !v.activeOpen) c.enterClosed(null);
    else c.enterClosed(err);
    return;
  }
  c.rto.backoff();
  // Karn: the handshake RTT is not sampled after a retransmission.
  v.rttSeq = null;
  if (v.state === 'SYN-SENT') sendSyn(c);
  else sendSynAck(c);
}

function keepaliveTimeout(c: Connection): void {
  const v = c.v;
  const ka = v.keepalive;
  if (!ka) {
    v.keepaliveDeadline = null;
    return;
  }
  if (c.now - v.lastRecvAt < ka.idleUs && v.keepaliveProbes === 0) {
    v.keepaliveDeadline = v.lastRecvAt + ka.idleUs;
    return;
  }
  if (v.keepaliveProbes >= ka.probes) {
    sendReset(c);
    c.enterClosed('ETIMEDOUT');
    return;
  }
  // Probe only an idle connection: with data outstanding the retransmission timer covers liveness.
  if (v.sndNxt === v.sndUna) sendKeepaliveProbe(c);
  v.keepaliveProbes++;
  v.keepaliveDeadline = c.now + ka.intervalUs;
}
