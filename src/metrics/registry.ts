// The Prometheus view of a node: every counter of `status`, read from the same status snapshot at
// scrape time (no bookkeeping on the packet path). Counters that the node only reads are exposed
// as counters by resetting and setting them on each scrape.

import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { NodeStatus } from '../control/status.js';
import type { ReplicationStatus } from '../replication/node/replicated-node.js';

/** A replicated node's status carries its replication section (cli/node-status.ts). */
type MetricsStatus = NodeStatus & { replication?: ReplicationStatus };

/** TCP states always exported, so a dashboard sees 0 rather than a missing series. */
const STATES = ['SYN-RECEIVED', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT', 'CLOSING', 'LAST-ACK', 'TIME-WAIT'];

const FAULT_SETTINGS = ['lossPct', 'delayMs', 'jitterMs', 'duplicatePct', 'reorderPct', 'corruptPct'] as const;

export interface NodeMetrics {
  readonly registry: Registry;
  /** The Prometheus text exposition. */
  render(): Promise<string>;
  readonly contentType: string;
}

export function createNodeMetrics(status: () => MetricsStatus, opts: { processMetrics?: boolean } = {}): NodeMetrics {
  const registry = new Registry();
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'understudy_process_' });
  // One snapshot per scrape, shared by every metric's collect().
  let snapshot: MetricsStatus | undefined;
  const current = (): MetricsStatus => (snapshot ??= status());
  const registers = [registry];

  const counterFrom = (name: string, help: string, labelNames: string[], fill: (c: Counter<string>, s: MetricsStatus) => void): void => {
    new Counter({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        fill(this, current());
      },
    });
  };
  const gaugeFrom = (name: string, help: string, labelNames: string[], fill: (g: Gauge<string>, s: MetricsStatus) => void): void => {
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        fill(this, current());
      },
    });
  };

  gaugeFrom('understudy_info', 'Constant 1, labelled with what the node serves', ['role', 'vip', 'port', 'service', 'tun'], (g, s) =>
    g.set({ role: s.role, vip: s.vip, port: String(s.port), service: s.service, tun: s.tun }, 1),
  );
  gaugeFrom('understudy_epoch', 'Takeover epoch', [], (g, s) => g.set(s.epoch));
  gaugeFrom('understudy_protected', '1 when a backup holds every connection', [], (g, s) => g.set(s.protected ? 1 : 0));
  gaugeFrom('understudy_uptime_seconds', 'Seconds since the node started', [], (g, s) => g.set(s.uptimeMs / 1000));
  gaugeFrom('understudy_connections', 'Connections by TCP state', ['state'], (g, s) => {
    const by = new Map<string, number>(STATES.map((st) => [st, 0]));
    for (const c of s.connections) by.set(c.state, (by.get(c.state) ?? 0) + 1);
    for (const [state, n] of by) g.set({ state }, n);
  });
  counterFrom('understudy_connections_accepted_total', 'Connections handed to the service', [], (c, s) => c.inc(s.counters.connectionsAccepted));
  counterFrom('understudy_packets_total', 'IPv4 packets through the stack', ['direction'], (c, s) => {
    c.inc({ direction: 'in' }, s.counters.packetsIn);
    c.inc({ direction: 'out' }, s.counters.packetsOut);
  });
  counterFrom('understudy_segments_received_total', 'TCP segments that reached the TCP layer', [], (c, s) => c.inc(s.counters.segmentsIn));
  counterFrom('understudy_bytes_total', 'Bytes through the tun device (IP headers included)', ['direction'], (c, s) => {
    c.inc({ direction: 'in' }, s.counters.bytesIn);
    c.inc({ direction: 'out' }, s.counters.bytesOut);
  });
  counterFrom('understudy_drops_total', 'Packets dropped, by reason', ['reason'], (c, s) => {
    for (const [reason, n] of Object.entries(s.counters.drops)) c.inc({ reason }, n);
  });
  counterFrom('understudy_events_total', 'Other named stack counters (opens, SYN cookies, RSTs, ICMP)', ['event'], (c, s) => {
    for (const [event, n] of Object.entries(s.counters.events)) c.inc({ event }, n);
  });
  counterFrom('understudy_fault_packets_total', 'What the fault injector did to packets', ['link', 'direction', 'outcome'], (c, s) => {
    for (const l of s.links) {
      for (const direction of ['in', 'out'] as const) {
        for (const [outcome, n] of Object.entries(l.faultCounters[direction])) c.inc({ link: l.name, direction, outcome }, n);
      }
    }
  });
  gaugeFrom('understudy_fault_setting', 'Active fault settings (percent or milliseconds; partition 0/1)', ['link', 'direction', 'setting'], (g, s) => {
    for (const l of s.links) {
      for (const direction of ['in', 'out'] as const) {
        const f = l.faults[direction];
        for (const setting of FAULT_SETTINGS) g.set({ link: l.name, direction, setting }, f[setting]);
        g.set({ link: l.name, direction, setting: 'partition' }, f.partition ? 1 : 0);
      }
    }
  });

  // The replication section of status, labelled with the node's role: a series exists only on a
  // primary or backup (a label-less one would read 0 on a standalone node), and only where it
  // applies (lag on a primary, the applied LSN on a backup).
  gaugeFrom('understudy_replication_peer_connected', '1 while a session with the other node of the pair is up', ['role'], (g, s) => {
    if (s.replication !== undefined) g.set({ role: s.replication.role }, s.replication.peer.state === 'connected' ? 1 : 0);
  });
  gaugeFrom('understudy_replication_lag_records', 'Primary: log records the backup has not acknowledged', ['role'], (g, s) => {
    if (s.replication?.lag != null) g.set({ role: s.replication.role }, s.replication.lag.records);
  });
  gaugeFrom('understudy_replication_lag_bytes', 'Primary: encoded bytes of the records the backup has not acknowledged', ['role'], (g, s) => {
    if (s.replication?.lag != null) g.set({ role: s.replication.role }, s.replication.lag.bytes);
  });
  gaugeFrom('understudy_replication_lag_waiting_seconds', 'Primary: time without acknowledgement progress while records are outstanding', ['role'], (g, s) => {
    if (s.replication?.lag != null) g.set({ role: s.replication.role }, s.replication.lag.waitingMs / 1000);
  });
  gaugeFrom('understudy_replication_applied_lsn', 'Backup: last log record applied', ['role'], (g, s) => {
    if (s.replication?.applied != null) g.set({ role: s.replication.role }, s.replication.applied.lastLsn);
  });
  gaugeFrom('understudy_replication_heartbeat_age_seconds', 'Time since the other node was last heard, by path', ['role', 'path'], (g, s) => {
    const r = s.replication;
    if (r === undefined) return;
    if (r.heartbeatAgeMs !== null) g.set({ role: r.role, path: 'replication' }, r.heartbeatAgeMs / 1000);
    if (r.lanHeartbeatAgeMs !== null) g.set({ role: r.role, path: 'lan' }, r.lanHeartbeatAgeMs / 1000);
  });
  counterFrom('understudy_replication_refusals_total', 'Replication connections dropped for what the peer sent (auth: bad MAC or frame counter)', ['role', 'kind'], (c, s) => {
    const r = s.replication;
    if (r === undefined) return;
    c.inc({ role: r.role, kind: 'auth' }, r.channel.authFailures);
    c.inc({ role: r.role, kind: 'protocol' }, r.channel.protocolErrors);
  });
  counterFrom('understudy_replication_sessions_total', 'Replication sessions established with the other node', ['role'], (c, s) => {
    if (s.replication !== undefined) c.inc({ role: s.replication.role }, s.replication.channel.sessions);
  });
  counterFrom('understudy_replication_divergences_total', "Backup: differences between its service replica's output and the primary's", ['role'], (c, s) => {
    if (s.replication?.applied != null) c.inc({ role: s.replication.role }, s.replication.applied.divergences);
  });

  return {
    registry,
    contentType: registry.contentType,
    render: async () => {
      snapshot = undefined;
      try {
        return await registry.metrics();
      } finally {
        snapshot = undefined;
      }
    },
  };
}
