// The replication section of status as Prometheus series: lag, heartbeat ages, refusals and
// sessions, read from the same status snapshot as the rest.

import { describe, expect, it } from 'vitest';
import type { NodeStatus } from '../../../src/control/status.js';
import { createNodeMetrics } from '../../../src/metrics/registry.js';
import type { ReplicationStatus } from '../../../src/replication/node/replicated-node.js';
import { replicationStatus } from '../fixtures/replication-status.js';

function status(replication?: ReplicationStatus): NodeStatus & { replication?: ReplicationStatus } {
  const base: NodeStatus = {
    version: 1,
    role: replication?.role ?? 'standalone',
    epoch: replication?.epoch ?? 0,
    pid: 1,
    vip: '198.18.0.100',
    port: 80,
    service: 'echo',
    tun: 'us0',
    lan: 'eth0',
    control: '/run/understudy/us0.sock',
    metrics: null,
    protected: false,
    protectedReason: null,
    startedAt: new Date(0).toISOString(),
    uptimeMs: 1000,
    counters: { packetsIn: 0, packetsOut: 0, segmentsIn: 0, bytesIn: 0, bytesOut: 0, retransmissions: null, connectionsAccepted: 0, connectionsOpen: 0, drops: {}, events: {} },
    links: [],
    faultLog: [],
    connections: [],
  };
  return replication === undefined ? base : { ...base, replication };
}

const primary = replicationStatus({
  epoch: 2,
  peer: { state: 'connected', nodeId: 'b', address: '198.19.0.2:4000', role: 'backup', epoch: 2 },
  lag: { records: 42, bytes: 9000, lastLsn: 142, ackedLsn: 100, messagesInFlight: 2, waitingMs: 250 },
  heartbeatAgeMs: 12,
  connections: { replicated: 3, unreplicated: 0, logged: 3 },
  channel: { authFailures: 3, protocolErrors: 1, sessions: 4 },
});

describe('replication metrics', () => {
  it('a primary exports its lag, the age of the lag, heartbeat age, refusals by kind and sessions', async () => {
    const text = await createNodeMetrics(() => status(primary), { processMetrics: false }).render();
    expect(text).toMatch(/^understudy_replication_peer_connected\{role="primary"\} 1$/m);
    expect(text).toMatch(/^understudy_replication_lag_records\{role="primary"\} 42$/m);
    expect(text).toMatch(/^understudy_replication_lag_bytes\{role="primary"\} 9000$/m);
    expect(text).toMatch(/^understudy_replication_lag_waiting_seconds\{role="primary"\} 0\.25$/m);
    expect(text).toMatch(/^understudy_replication_heartbeat_age_seconds\{role="primary",path="replication"\} 0\.012$/m);
    expect(text).not.toMatch(/^understudy_replication_heartbeat_age_seconds\{role="primary",path="lan"\}/m);
    expect(text).toMatch(/^understudy_replication_refusals_total\{role="primary",kind="auth"\} 3$/m);
    expect(text).toMatch(/^understudy_replication_refusals_total\{role="primary",kind="protocol"\} 1$/m);
    expect(text).toMatch(/^understudy_replication_sessions_total\{role="primary"\} 4$/m);
  });

  it('a backup exports the LSN it applied and its divergences, and no lag', async () => {
    const backup: ReplicationStatus = { ...primary, role: 'backup', lag: null, applied: { lastLsn: 77, shadows: 2, divergences: 5, replicaFailed: 0 }, lanHeartbeatAgeMs: 30 };
    const text = await createNodeMetrics(() => status(backup), { processMetrics: false }).render();
    expect(text).toMatch(/^understudy_replication_applied_lsn\{role="backup"\} 77$/m);
    expect(text).toMatch(/^understudy_replication_divergences_total\{role="backup"\} 5$/m);
    expect(text).toMatch(/^understudy_replication_heartbeat_age_seconds\{role="backup",path="lan"\} 0\.03$/m);
    expect(text).not.toMatch(/^understudy_replication_lag_records\{/m);
  });

  it('a standalone node exports no replication values', async () => {
    const text = await createNodeMetrics(() => status(), { processMetrics: false }).render();
    expect(text).not.toMatch(/^understudy_replication_peer_connected[{ ]/m);
    expect(text).not.toMatch(/^understudy_replication_sessions_total[{ ]/m);
  });
});
