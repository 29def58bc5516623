// ICMP errors quoting this connection (RFC 1122 4.2.3.9, RFC 5927, RFC 1191).

import { type SeqNum, seqLe, seqLt } from '../wire/seq.js';
import type { IcmpErrorKind, TcpErrorCode } from './api.js';
import type { Connection } from './connection.js';

/** RFC 1191: the smallest MSS we accept from a frag-needed message (68-byte MTU minus headers). */
const MIN_PMTU_MSS = 28;

export function onIcmpError(c: Connection, err: IcmpErrorKind, quotedSeq?: SeqNum): void {
  const v = c.v;
  // RFC 5927 4.1: "TCP SHOULD check that the TCP sequence number contained in the payload of the
  // ICMP error message is within the range SND.UNA =< SEG.SEQ < SND.NXT" (blind-attack defence).
  if (quotedSeq !== undefined && !(seqLe(v.sndUna, quotedSeq) && seqLt(quotedSeq, v.sndMax))) return;
  if (v.state === 'CLOSED' || v.state === 'TIME-WAIT') return;
  if (err.kind === 'frag-needed') {
    // RFC 1191: lower the segment size to fit the reported next-hop MTU (IP + TCP headers: 40).
    const mss = Math.max(MIN_PMTU_MSS, err.mtu - 40);
    if (mss < c.sendMss) {
      v.pmtuMss = mss;
      c.cc.setMss(c.maxSeg);
      // Resend what is outstanding at the new size instead of waiting for the timer.
      if (v.sndNxt !== v.sndUna && v.state !== 'SYN-SENT' && v.state !== 'SYN-RECEIVED') {
        v.sndNxt = v.sndUna;
        v.rttSeq = null;
      }
    }
    return;
  }
  // RFC 1122 4.2.3.9: unreachable codes 0, 1 and 5 are soft errors, 2-4 hard (the stack "SHOULD
  // abort the connection"), time exceeded soft. Like FreeBSD (icmp_may_rst), only a connection
  // still in SYN-SENT is aborted -- also for the administratively prohibited codes and TTL
  // exceeded -- since there a blind attacker cannot know the quoted ISS; an established
  // connection keeps the error as a soft one, reported if it later times out.
  const mayReset = v.state === 'SYN-SENT' && c.cfg.icmpMayReset !== false;
  if (err.kind === 'time-exceeded') {
    if (mayReset) c.enterClosed('EHOSTUNREACH');
    else v.softError = 'EHOSTUNREACH';
    return;
  }
  const code = unreachableError(err.code);
  if (mayReset && isHardInSynSent(err.code)) {
    c.enterClosed(code);
    return;
  }
  v.softError = code;
}

function unreachableError(code: number): TcpErrorCode {
  switch (code) {
    case 0: // net unreachable
      return 'ENETUNREACH';
    case 2: // protocol unreachable
    case 3: // port unreachable
    case 9: // net administratively prohibited
    case 10: // host administratively prohibited
    case 13: // communication administratively prohibited
      return 'ECONNREFUSED';
    default:
      return 'EHOSTUNREACH';
  }
}

function isHardInSynSent(code: number): boolean {
  return code === 2 || code === 3 || code === 9 || code === 10 || code === 13;
}
