// Replies the host makes for segments no connection owns: the CLOSED-state reset of RFC 9293
// section 3.10.7.1 and the LISTEN-state reset for a stray ACK (section 3.10.7.2).

import { seqAdd } from './wire/seq.js';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type TcpSegment } from './wire/types.js';

const EMPTY = new Uint8Array(0);

/** SEG.LEN: payload octets plus one for SYN and one for FIN (RFC 9293 section 3.4). */
export function segmentLength(seg: TcpSegment): number {
  let n = seg.payload.length;
  if ((seg.flags & TCP_SYN) !== 0) n++;
  if ((seg.flags & TCP_FIN) !== 0) n++;
  return n;
}

function rst(seg: TcpSegment, seq: number, ack: number, flags: number): TcpSegment {
  return {
    srcPort: seg.dstPort,
    dstPort: seg.srcPort,
    seq,
    ack,
    flags,
    window: 0,
    urgent: 0,
    options: {},
    payload: EMPTY,
  };
}

/**
 * RFC 9293 section 3.10.7.1, state CLOSED: "An incoming segment containing a RST is discarded.
 * An incoming segment not containing a RST causes a RST to be sent in response. The
 * acknowledgment and sequence field values are selected to make the reset sequence acceptable to
 * the TCP endpoint that sent the offending segment.
 *   If the ACK bit is off, sequence number zero is used,
 *     <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
 *   If the ACK bit is on,
 *     <SEQ=SEG.ACK><CTL=RST>"
 * Returns null when no reset is due.
 */
export function closedStateReset(seg: TcpSegment): TcpSegment | null {
  if ((seg.flags & TCP_RST) !== 0) return null;
  if ((seg.flags & TCP_ACK) === 0) {
    return rst(seg, 0, seqAdd(seg.seq, segmentLength(seg)), TCP_RST | TCP_ACK);
  }
  return rst(seg, seg.ack, 0, TCP_RST);
}

/**
 * RFC 9293 section 3.10.7.2, state LISTEN, "second, check for an ACK": "Any acknowledgment is
 * bad if it arrives on a connection still in the LISTEN state. An acceptable reset segment
 * should be formed for any arriving ACK-bearing segment. The RST should be formatted as follows:
 *   <SEQ=SEG.ACK><CTL=RST>"
 */
export function listenStateAckReset(seg: TcpSegment): TcpSegment {
  return rst(seg, seg.ack, 0, TCP_RST);
}
