// The human form of `understudy status`: a header about the node, its counters, its links and
// their faults, then one aligned row per connection in the spirit of `ss -ti`.

import type { ConnectionStatus, FaultLogEntry, LinkStatus, NodeStatus, SeqPosition } from '../control/status.js';
import type { FaultCounters } from '../tun/fault-link.js';
import type { SwitchoverInfo } from '../replication/node/switchover.js';
import type { ReplicationStatus } from '../replication/node/replicated-node.js';

export function formatStatus(s: NodeStatus & { replication?: ReplicationStatus }): string {
  const lines: string[] = [];
  lines.push(`node ${s.vip}:${s.port}  role ${s.role}  epoch ${s.epoch}  pid ${s.pid}  up ${formatDuration(s.uptimeMs)}`);
  lines.push(`  service ${s.service}  tun ${s.tun}${s.lan !== null ? `  lan ${s.lan}` : ''}`);
  lines.push(`  protected ${s.protected ? 'yes' : `no (${s.protectedReason ?? 'unknown'})`}`);
  lines.push(`  control ${s.control}${s.metrics !== null ? `  metrics http://${s.metrics}/metrics` : ''}`);
  lines.push('');

  const c = s.counters;
  lines.push('counters');
  lines.push(
    table(
      [
        ['packets', `in ${c.packetsIn}`, `out ${c.packetsOut}`],
        ['bytes', `in ${formatBytes(c.bytesIn)}`, `out ${formatBytes(c.bytesOut)}`],
        ['segments', `in ${c.segmentsIn}`, ''],
        ['retransmissions', c.retransmissions === null ? 'n/a (not counted by the stack)' : String(c.retransmissions), ''],
        ['connections', `open ${c.connectionsOpen}`, `accepted ${c.connectionsAccepted}`],
      ],
      '  ',
    ),
  );
  const drops = Object.entries(c.drops);
  lines.push(`  drops            ${drops.length === 0 ? 'none' : drops.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  lines.push('');
  if (s.replication !== undefined) {
    lines.push(...formatReplication(s.replication));
    lines.push('');
  }

  lines.push('links');
  for (const l of s.links) lines.push(...formatLink(l));
  if (s.faultLog.length > 0) {
    lines.push('');
    lines.push('faults applied');
    lines.push(...formatFaultLog(s.faultLog));
  }
  lines.push('');
  lines.push(`connections ${s.connections.length}`);
  if (s.connections.length > 0) lines.push(formatConnections(s.connections));
  return lines.join('\n') + '\n';
}

export function formatSwitchoverInfo(sw: SwitchoverInfo): string {
  const figures = [sw.stallMs !== null ? `stall ${sw.stallMs} ms` : '', sw.takeoverMs !== null ? `takeover ${sw.takeoverMs} ms` : ''].filter((x) => x !== '').join(', ');
  const peer = sw.peer === null ? '' : sw.outcome === 'took-over' ? ` from ${sw.peer}` : ` to ${sw.peer}`;
  return `${formatAt(sw.at)} ${sw.outcome}${peer} epoch ${sw.epoch}${figures === '' ? '' : ` (${figures})`}${sw.reason === null ? '' : `: ${sw.reason}`}`;
}

const formatUs = (us: number): string => (us >= 10_000 ? `${(us / 1000).toFixed(0)} ms` : us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us} µs`);

/** The peer, the lag and its age, heartbeat ages and the channel's refusals. */
export function formatReplication(r: ReplicationStatus): string[] {
  const p = r.peer;
  const peer = p.state === 'connected' ? `${p.role ?? 'peer'} ${p.nodeId ?? '?'} at ${p.address ?? '?'} (epoch ${p.epoch ?? '?'})` : 'disconnected';
  const age = (ms: number | null): string => (ms === null ? 'never' : `${ms} ms ago`);
  const lines = ['replication', `  peer             ${peer}`];
  if (r.lag !== null) {
    const l = r.lag;
    const waiting = l.records > 0 ? `, no acknowledgement for ${l.waitingMs} ms` : '';
    lines.push(`  not acknowledged ${l.records} records, ${formatBytes(l.bytes)} (LSN ${l.ackedLsn} of ${l.lastLsn}, ${l.messagesInFlight} messages in flight${waiting})`);
    const c = l.commit;
    if (c !== undefined && c !== null) lines.push(`  commit time      p50 ${formatUs(c.p50Us)}, p99 ${formatUs(c.p99Us)}, max ${formatUs(c.maxUs)} (sent to acknowledged, last ${c.samples} messages)`);
  }
  if (r.applied !== null) lines.push(`  applied          LSN ${r.applied.lastLsn}, ${r.applied.shadows} shadow connections, ${r.applied.divergences} divergences, ${r.applied.replicaFailed} unprotected (the service's copy failed)`);
  lines.push(`  heartbeats       replication ${age(r.heartbeatAgeMs)}, LAN ${age(r.lanHeartbeatAgeMs)} (every ${r.heartbeatMs} ms, dead after ${r.deadAfterMs} ms)`);
  lines.push(`  channel          sessions ${r.channel.sessions}, authentication failures ${r.channel.authFailures}, protocol errors ${r.channel.protocolErrors}`);
  if (r.lastPeerLoss !== null) lines.push(`  last peer loss   ${formatAt(r.lastPeerLoss.at)}: ${r.lastPeerLoss.reason}`);
  if (r.takeover !== null) lines.push(`  took over        ${formatAt(r.takeover.at)} in ${r.takeover.ms} ms, ${r.takeover.promoted} connections`);
  if (r.switchover !== null) lines.push(`  last switchover  ${formatSwitchoverInfo(r.switchover)}`);
  return lines;
}

export function formatLink(l: LinkStatus): string[] {
  const spec = (x: string): string => (x === '' ? 'none' : x);
  return [
    `  ${l.name} (${l.device})  faults in: ${spec(l.faultSpec.in)}  out: ${spec(l.faultSpec.out)}`,
    `    in:  ${formatFaultCounters(l.faultCounters.in)}`,
    `    out: ${formatFaultCounters(l.faultCounters.out)}`,
  ];
}

function formatFaultCounters(f: FaultCounters): string {
  const parts = [`passed ${f.passed}`];
  for (const k of ['lost', 'partitioned', 'corrupted', 'duplicated', 'reordered', 'delayed'] as const) if (f[k] > 0) parts.push(`${k} ${f[k]}`);
  return parts.join('  ');
}

export function formatFaultLog(log: readonly FaultLogEntry[]): string[] {
  return log.map((e) => `  ${formatAt(e.at)}  ${e.description}`);
}

/** An ISO time as `2026-11-28 16:11:36Z`. */
function formatAt(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

const seq = (p: SeqPosition): string => `${p.rel} (${p.abs})`;

export function formatConnections(conns: readonly ConnectionStatus[]): string {
  const head = ['LOCAL', 'REMOTE', 'STATE', 'SND.UNA', 'SND.NXT', 'RCV.NXT', 'SND.WND', 'RCV.WND', 'SEND-Q', 'UNREAD', 'CWND', 'SSTHRESH', 'SRTT', 'RTO', 'BACKOFF'];
  const rows = conns.map((c) => [
    c.local,
    c.remote,
    c.state,
    seq(c.sndUna),
    seq(c.sndNxt),
    seq(c.rcvNxt),
    String(c.sndWnd),
    String(c.rcvWnd),
    String(c.sendQueued),
    String(c.unread),
    String(c.cwnd),
    c.ssthresh === null ? '-' : String(c.ssthresh),
    c.srttMs === null ? '-' : `${c.srttMs}ms`,
    `${c.rtoMs}ms`,
    String(c.backoff),
  ]);
  return table([head, ...rows], '  ');
}

/** Left-aligned columns separated by two spaces; trailing blanks trimmed. */
export function table(rows: readonly (readonly string[])[], indent = ''): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((r) => (indent + r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')).trimEnd()).join('\n');
}

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}
