// One `ss -ti` style row per connection, read from the TCB in place. Not Connection.snapshot():
// that copies every buffered byte, and status may be polled every second on a busy node.

import { HostedConnection } from '../stack/hosted-connection.js';
import { INITIAL_SSTHRESH } from '../stack/tcp/congestion.js';
import { Connection } from '../stack/tcp/connection.js';
import type { TcpConnection } from '../stack/tcp/api.js';
import { ipv4ToString } from '../stack/wire/types.js';
import type { ConnectionStatus } from '../control/status.js';

const rel = (seq: number, base: number): number => (seq - base) >>> 0;
const ms = (us: number): number => Math.round(us / 100) / 10;

/** The core connection behind what the host hands out, or undefined for a foreign implementation. */
function coreOf(c: TcpConnection): Connection | undefined {
  const inner = c instanceof HostedConnection ? c.inner : c;
  return inner instanceof Connection ? inner : undefined;
}

export function connectionStatus(c: TcpConnection): ConnectionStatus {
  const t = c.tuple;
  // Named fields, not a spread of a base object: with a spread V8 built each row through its slow
  // path, 20-25 us a row, and status on a node with 4000 connections stalled it 100-300 ms.
  const local = `${ipv4ToString(t.localAddr)}:${t.localPort}`;
  const remote = `${ipv4ToString(t.remoteAddr)}:${t.remotePort}`;
  const state = c.state;
  const core = coreOf(c);
  if (core === undefined) {
    return {
      local,
      remote,
      state,
      iss: 0,
      irs: 0,
      sndUna: { abs: 0, rel: 0 },
      sndNxt: { abs: 0, rel: 0 },
      rcvNxt: { abs: 0, rel: 0 },
      sndWnd: 0,
      rcvWnd: 0,
      sendQueued: 0,
      unread: c.readableLength,
      inFlight: 0,
      mss: 0,
      cwnd: 0,
      ssthresh: null,
      srttMs: null,
      rttvarMs: 0,
      rtoMs: 0,
      backoff: 0,
      congestionControl: '?',
      inRecovery: false,
    };
  }
  const v = core.v;
  const srtt = core.rto.srttUs;
  return {
    local,
    remote,
    state,
    iss: v.iss,
    irs: v.irs,
    sndUna: { abs: v.sndUna, rel: rel(v.sndUna, v.iss) },
    sndNxt: { abs: v.sndNxt, rel: rel(v.sndNxt, v.iss) },
    rcvNxt: { abs: v.rcvNxt, rel: rel(v.rcvNxt, v.irs) },
    sndWnd: v.sndWnd,
    rcvWnd: Math.max(0, (v.rcvAdv - v.rcvNxt) | 0),
    sendQueued: core.sndBuf.length,
    unread: core.rcvBuf.length,
    inFlight: (v.sndNxt - v.sndUna) >>> 0,
    mss: core.maxSeg,
    cwnd: core.cc.cwnd,
    ssthresh: core.cc.ssthresh >= INITIAL_SSTHRESH ? null : core.cc.ssthresh,
    srttMs: srtt === null ? null : ms(srtt),
    rttvarMs: ms(core.rto.rttvarUs),
    rtoMs: ms(core.rto.rtoUs),
    backoff: v.rtxCount,
    congestionControl: core.cc.name,
    inRecovery: core.cc.inRecovery,
  };
}

export function connectionStatuses(connections: Iterable<TcpConnection>): ConnectionStatus[] {
  const rows: ConnectionStatus[] = [];
  for (const c of connections) rows.push(connectionStatus(c));
  // Stable order for humans and diffs: by remote endpoint.
  rows.sort((a, b) => (a.remote < b.remote ? -1 : a.remote > b.remote ? 1 : a.local < b.local ? -1 : a.local > b.local ? 1 : 0));
  return rows;
}
