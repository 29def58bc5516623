// What the primary's tap records of a connection for the log: the options it negotiated (for
// `open`) and, for a connection a joining backup never saw, its whole state (`snapshot`,
// reintegration, ARCHITECTURE.md 5.5).

import type { Micros, ObservableConnection } from '../stack/tcp/api.js';
import { seqDiff } from '../stack/wire/seq.js';
import type { NegotiatedOptions, NewRecord, SnapshotState, StreamOffset } from './log-records.js';
import type { RetainedInput } from './retained-input.js';

const MS = 1000;

export function negotiatedOptions(c: ObservableConnection, now: Micros): NegotiatedOptions {
  const v = c.vars;
  return {
    sndMss: v.peerMss,
    rcvMss: c.config.mss,
    sndWindowScale: v.sndShift,
    rcvWindowScale: v.rcvShift,
    sackPermitted: v.sackEnabled,
    timestamps: v.tsEnabled,
    // The host's TSval clock is milliseconds plus an offset; the backup continues from it.
    tsOffset: (c.environment.tsClock(now) - Math.floor(now / MS)) >>> 0,
    sndWindow: Math.min(v.sndWnd, 0xffffffff),
    rcvWindow: Math.max(0, (v.rcvAdv - v.rcvNxt) | 0) || Math.min(65535, c.config.rcvBuf),
  };
}

/**
 * The snapshot record of an established (or closing) connection. `inputEnd` and `outputEnd` are
 * the tap's stream offsets: client bytes accepted, and service bytes the send buffer took.
 * The send buffer holds the output from SND.UNA on; what the client acknowledged is gone.
 */
export function snapshotRecord(
  conn: number,
  c: ObservableConnection,
  now: Micros,
  inputEnd: StreamOffset,
  outputEnd: StreamOffset,
  retained: RetainedInput,
): Extract<NewRecord, { kind: 'snapshot' }> {
  const tcb = c.snapshot();
  const v = tcb.vars;
  const sendBuffer = tcb.sendBuffer;
  const bufStart = outputEnd - sendBuffer.length;
  // SND.UNA may sit past the buffer's first byte (acknowledged, not yet trimmed) or, once our FIN
  // was acknowledged, one past the last.
  const into = Math.max(0, seqDiff(v.sndUna, tcb.sndDataStart));
  const ackedOutput = bufStart + Math.min(into, sendBuffer.length);
  const ourFin = v.finQueued;
  const finAcked = ourFin && into > sendBuffer.length;
  const peerFin = v.peerFinReceived;
  const firstFin = !ourFin ? (peerFin ? 'peer' : null) : !peerFin ? 'ours' : v.state === 'LAST-ACK' || v.state === 'CLOSE-WAIT' ? 'peer' : 'ours';
  const state: SnapshotState = {
    version: 2,
    tuple: { ...tcb.tuple },
    iss: v.iss,
    irs: v.irs,
    options: negotiatedOptions(c, now),
    rcvNxt: v.rcvNxt,
    inputEnd,
    peerFin,
    sndUna: v.sndUna,
    ackedOutput,
    outputEnd,
    ourFin,
    finAcked,
    firstFin,
    sndWnd: Math.min(v.sndWnd, 0xffffffff),
    tsRecent: v.tsEnabled ? v.tsRecent >>> 0 : null,
    boundary: { ...retained.boundary },
  };
  return {
    kind: 'snapshot',
    conn,
    state,
    retained: [
      { stream: 'input', offset: retained.boundary.input, data: retained.sinceBoundary() },
      { stream: 'output', offset: ackedOutput, data: sendBuffer.subarray(ackedOutput - bufStart) },
    ],
  };
}

/**
 * Why a snapshot's stream offsets disagree with its sequence numbers, or null when they agree.
 * The backup places output offset o at sequence number ISS + 1 + o and input offset i at IRS + 1
 * + i (shadow.ts); the tap counts offsets from what the send buffer took and what was accepted. A
 * snapshot whose two counts differ would resume the client's stream with the right bytes at the
 * wrong sequence numbers -- a download cut short by the difference, or bytes given twice -- so it
 * must not go into the log (the connection then stays unprotected, and a takeover resets it).
 */
export function snapshotOffsetsDisagree(st: SnapshotState): string | null {
  // A SYN-ACK not yet acknowledged has no data offsets to check.
  if (st.sndUna === st.iss) return null;
  const acked = seqDiff(st.sndUna, st.iss) - 1 - (st.finAcked ? 1 : 0);
  if (acked !== st.ackedOutput) return `output acknowledged to offset ${st.ackedOutput} by the tap's count, ${acked} by SND.UNA ${st.sndUna} (ISS ${st.iss})`;
  const input = seqDiff(st.rcvNxt, st.irs) - 1 - (st.peerFin ? 1 : 0);
  if (input !== st.inputEnd) return `input accepted to offset ${st.inputEnd} by the tap's count, ${input} by RCV.NXT ${st.rcvNxt} (IRS ${st.irs})`;
  return null;
}
