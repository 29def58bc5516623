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
