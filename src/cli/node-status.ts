// Builds the status of a running node (control/status.ts) from what the node holds: its
// configuration, the host's counters and connections, and the client link's fault state. Shared by
// the `status` control method and the Prometheus endpoint, so both always agree.

import type { Host } from '../stack/host-api.js';
import type { FaultLink } from '../tun/fault-link.js';
import { formatFaultSpec } from '../tun/fault-link.js';
import type { LinkStats } from '../tun/link.js';
import { STATUS_VERSION, type FaultLogEntry, type LinkStatus, type NodeStatus, type StatusCounters } from '../control/status.js';
import { connectionStatuses } from './connection-info.js';
import type { ConnectionStats } from './connection-log.js';
import type { SwitchoverResult } from '../replication/node/switchover.js';
import type { ReplicationLinkView, ReplicationStatus } from '../replication/node/replicated-node.js';

/** The node's configuration fields are reported as they are. */
export interface NodeView extends Pick<NodeStatus, 'vip' | 'port' | 'service' | 'tun' | 'lan' | 'control' | 'metrics'> {
  startedAt: Date;
  /** Undefined until the stack exists. */
  host: Host | undefined;
  clientLink: FaultLink;
  /** The tun device under the fault link: what really crossed the wire. */
  deviceStats: LinkStats & { rxNonIpv4?: number; txErrors?: number };
  connections: Readonly<ConnectionStats>;
  faultLog: readonly FaultLogEntry[];
  /** The replication state of a primary or backup; absent on a standalone node. */
  replication?: (() => ReplicationStatus) | undefined;
  /** Planned switchover (a primary of a replicated pair); absent on a standalone node. */
  switchover?: ((timeoutMs: number) => Promise<SwitchoverResult>) | undefined;
  /** The replication link (its faults and frame counts); absent on a standalone node. */
  replicationLink?: (() => ReplicationLinkView) | undefined;
}

/** The status with the replication section (role, epoch, peer, lag, heartbeat ages) when replicated. */
export type ReplicatedNodeStatus = NodeStatus & { replication?: ReplicationStatus };

/**
 * Host counters that count traffic or things done, not packets thrown away. Everything else the
 * host counts is a drop reason (bad checksums, no listener, full queues, ...).
 */
const HOST_EVENTS = new Set([
  'ip.rx',
  'ip.tx',
  'tcp.rx',
  'tcp.active-open',
  'tcp.passive-open',
  'tcp.syncookie-sent',
  'tcp.syncookie-accepted',
  'tcp.time-wait-reused',
  'tcp.listen-ack-rst-sent',
  'tcp.no-connection-rst-sent',
  'icmp.echo-reply-sent',
  'icmp.error-delivered',
  'icmp.reassembly-timeout-sent',
  'frag.received',
  'frag.reassembled',
]);

/** The stack's name for retransmitted segments, once it counts them. */
const RETRANSMIT_COUNTERS = ['tcp.retransmit', 'tcp.retransmits', 'tcp.retransmitted'];

export function buildStatus(view: NodeView, now: Date = new Date()): ReplicatedNodeStatus {
  const r = view.replication?.();
  return {
    version: STATUS_VERSION,
    role: r?.role ?? 'standalone',
    epoch: r?.epoch ?? 0,
    pid: process.pid,
    vip: view.vip,
    port: view.port,
    service: view.service,
    tun: view.tun,
    lan: view.lan,
    control: view.control,
    metrics: view.metrics,
    protected: r?.protected ?? false,
    protectedReason: r === undefined ? 'no backup configured' : r.protectedReason,
    startedAt: view.startedAt.toISOString(),
    uptimeMs: Math.max(0, now.getTime() - view.startedAt.getTime()),
    counters: buildCounters(view),
    links: linkStatuses(view),
    faultLog: [...view.faultLog],
    connections: view.host === undefined ? [] : connectionStatuses(view.host.connections.values()),
    ...(r === undefined ? {} : { replication: r }),
  };
}

/** The client link, then the replication link where there is one. */
export function linkStatuses(view: NodeView): LinkStatus[] {
  const repl = replicationLinkStatus(view);
  return repl === undefined ? [clientLinkStatus(view)] : [clientLinkStatus(view), repl];
}

/** Counted in frames, not packets: the link is a TCP stream carrying replication frames. */
export function replicationLinkStatus(view: NodeView): LinkStatus | undefined {
  const r = view.replicationLink?.();
  if (r === undefined) return undefined;
  const faults = r.faults.faults();
  return {
    name: 'replication',
    device: r.device,
    faults,
    faultSpec: { in: formatFaultSpec(faults.in), out: formatFaultSpec(faults.out) },
    faultCounters: r.faults.counters(),
    stats: {
      rxPackets: r.frames.received,
      rxBytes: r.frames.bytesReceived,
      rxBatches: 0,
      rxDropped: r.frames.refused,
      txPackets: r.frames.sent,
      txBytes: r.frames.bytesSent,
      txDropped: 0,
    },
  };
}

export function clientLinkStatus(view: NodeView): LinkStatus {
  const faults = view.clientLink.faults();
  return {
    name: 'client',
    device: view.tun,
    faults,
    faultSpec: { in: formatFaultSpec(faults.in), out: formatFaultSpec(faults.out) },
    faultCounters: view.clientLink.counters(),
    stats: { ...view.deviceStats },
  };
}

function buildCounters(view: NodeView): StatusCounters {
  const host = view.host?.counters ?? {};
  const drops: Record<string, number> = {};
  const events: Record<string, number> = {};
  for (const [k, v] of Object.entries(host)) {
    if (v === 0) continue;
    if (RETRANSMIT_COUNTERS.includes(k)) continue;
    (HOST_EVENTS.has(k) ? events : drops)[k] = v;
  }
  const fc = view.clientLink.counters();
  const add = (key: string, n: number | undefined): void => {
    if (n !== undefined && n > 0) drops[key] = (drops[key] ?? 0) + n;
  };
  add('fault.lost', fc.in.lost + fc.out.lost);
  add('fault.partitioned', fc.in.partitioned + fc.out.partitioned);
  add('link.rx-dropped', view.deviceStats.rxDropped);
  add('link.tx-dropped', view.deviceStats.txDropped);
  add('link.rx-not-ipv4', view.deviceStats.rxNonIpv4);
  add('link.tx-errors', view.deviceStats.txErrors);
  let retransmissions: number | null = null;
  for (const k of RETRANSMIT_COUNTERS) if (host[k] !== undefined) retransmissions = (retransmissions ?? 0) + host[k];
  return {
    packetsIn: host['ip.rx'] ?? 0,
    packetsOut: host['ip.tx'] ?? 0,
    segmentsIn: host['tcp.rx'] ?? 0,
    bytesIn: view.deviceStats.rxBytes,
    bytesOut: view.deviceStats.txBytes,
    retransmissions,
    connectionsAccepted: view.connections.total,
    connectionsOpen: view.connections.open,
    drops: sortKeys(drops),
    events: sortKeys(events),
  };
}

function sortKeys(r: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
