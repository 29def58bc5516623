// Snapshot and restore of a whole connection, for replication: the TCB variables, the buffered
// bytes (send buffer, in-order and out-of-order receive data) and the estimators' state.

import type { SeqNum } from '../wire/seq.js';
import type { FourTuple } from '../wire/types.js';
import type { TcpConfig, TcpEnv } from './api.js';
import { type CongestionSnapshot, restoreCongestionController } from './congestion.js';
import { Connection } from './connection.js';
import { RtoEstimator, type RtoSnapshot } from './rto.js';
import type { TcbVars } from './state.js';

export interface TcbSnapshot {
  version: 1;
  tuple: FourTuple;
  vars: TcbVars;
  /** Sequence number of sendBuffer[0]. */
  sndDataStart: SeqNum;
  /** Unacknowledged and unsent bytes, oldest first. */
  sendBuffer: Uint8Array;
  /** In-order bytes not yet read by the application. */
  recvBuffer: Uint8Array;
  /** Out-of-order data held for reassembly. */
  outOfOrder: { seq: SeqNum; data: Uint8Array }[];
  rto: RtoSnapshot;
  congestion: CongestionSnapshot;
}

export function takeSnapshot(c: Connection): TcbSnapshot {
  return {
    version: 1,
    tuple: { ...c.tuple },
    vars: { ...c.v, keepalive: c.v.keepalive ? { ...c.v.keepalive } : null },
    sndDataStart: c.sndDataStart,
    sendBuffer: c.sndBuf.toBytes(),
    recvBuffer: c.rcvBuf.toBytes(),
    outOfOrder: c.ooo.entries().map((e) => ({ seq: e.seq, data: e.data.slice() })),
    rto: c.rto.snapshot(),
    congestion: c.cc.snapshot(),
  };
}

/**
 * Rebuilds a connection from a snapshot. Timer deadlines are kept as they were: both nodes'
 * clocks are expected to be on the same time base (the host rebases them otherwise). The SACK
 * scoreboard is not carried: the peer repeats its SACK information on the next ACKs.
 */
export function restoreConnection(s: TcbSnapshot, config: TcpConfig, env: TcpEnv): Connection {
  const now = s.vars.lastRecvAt;
  const c = new Connection(now, { ...s.tuple }, config, env, { ...s.vars });
  c.sndDataStart = s.sndDataStart;
  if (s.sendBuffer.length > 0) c.sndBuf.append(s.sendBuffer.slice());
  if (s.recvBuffer.length > 0) c.rcvBuf.push(s.recvBuffer.slice());
  for (const e of s.outOfOrder) c.ooo.insert(e.seq, e.data.slice());
  c.rto = RtoEstimator.restore(s.rto, config.initialRtoUs, config.minRtoUs, config.maxRtoUs);
  c.cc = restoreCongestionController(s.congestion, c.maxSeg, config.initialWindowSegments, config.slowStartAckLimitSegments);
  return c;
}
