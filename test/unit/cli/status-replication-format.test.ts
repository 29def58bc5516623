// The replication section of the human `status`: who the peer is, what it has not acknowledged and
// for how long, heartbeat ages, refusals, and why the last session ended.

import { describe, expect, it } from 'vitest';
import { formatReplication } from '../../../src/cli/status-format.js';
import { replicationStatus } from '../fixtures/replication-status.js';

const base = replicationStatus();

describe('status: replication section', () => {
  it('a lagging backup: records and bytes not acknowledged, and how long no acknowledgement came', () => {
    expect(formatReplication(base)).toEqual([
      'replication',
      '  peer             backup hostb:77 at 198.19.0.2:40000 (epoch 1)',
      '  not acknowledged 120 records, 166.0 KiB (LSN 4880 of 5000, 3 messages in flight, no acknowledgement for 180 ms)',
      '  heartbeats       replication 180 ms ago, LAN never (every 50 ms, dead after 300 ms)',
      '  channel          sessions 3, authentication failures 2, protocol errors 0',
    ]);
  });

  it('a lost backup: disconnected, nothing outstanding, and why the session ended', () => {
    const lines = formatReplication({
      ...base,
      peer: { state: 'disconnected', nodeId: null, address: null, role: null, epoch: null },
      lag: { ...base.lag!, records: 0, bytes: 0, ackedLsn: 0, lastLsn: 0, messagesInFlight: 0, waitingMs: 0 },
      lastPeerLoss: { at: '2026-11-28T17:23:48.120Z', reason: 'silent for 309 ms (limit 300 ms)' },
    });
    expect(lines[1]).toBe('  peer             disconnected');
    expect(lines[2]).toBe('  not acknowledged 0 records, 0 B (LSN 0 of 0, 0 messages in flight)');
    expect(lines.at(-1)).toBe('  last peer loss   2026-11-28 17:23:48Z: silent for 309 ms (limit 300 ms)');
  });

  it('a protected primary: the commit time of the last messages, sent to acknowledged', () => {
    const lines = formatReplication({ ...base, lag: { ...base.lag!, commit: { p50Us: 812, p99Us: 4300, maxUs: 36_120, samples: 512 } } });
    expect(lines[3]).toBe('  commit time      p50 812 µs, p99 4.3 ms, max 36 ms (sent to acknowledged, last 512 messages)');
  });
});
