// ICMP errors quoting this connection (RFC 1122 4.2.3.9, RFC 5927, RFC 1191).

import type { IcmpErrorKind, TcpErrorCode } from './api.js';
import type { Connection } from './connection.js';

/** RFC 1191: the smallest MSS we accept from a frag-needed message (68-byte MTU minus headers). */
const MIN_PMTU_MSS = 28;

export function onIcmpError(c: Connection, err: IcmpErrorKind): void {
  const v = c.v;
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
  if (err.kind === 'time-exceeded') return;
  const code = unreachableError(err.code);
  // RFC 1122 4.2.3.9: unreachable codes 0, 1 and 5 are soft errors; in SYN-SENT FreeBSD turns
  // protocol/port unreachable and the administratively prohibited codes into a hard error.
  if (v.state === 'SYN-SENT') {
    if (isHardInSynSent(err.code)) c.enterClosed(code);
    else v.softError = code;
    return;
  }
  v.softError = code;
}

function unreachableError(code: number): TcpErrorCode {
  switch (code) {
    case 0: // net unreachable
    case 6: // net unknown
    case 9: // net prohibited
      return code === 0 ? 'ENETUNREACH' : 'EHOSTUNREACH';
    case 2: // protocol unreachable
    case 3: // port unreachable
      return 'ECONNREFUSED';
    default:
      return 'EHOSTUNREACH';
  }
}

function isHardInSynSent(code: number): boolean {
  return code === 2 || code === 3 || code === 9 || code === 10 || code === 13;
}
