// Reintegration (ARCHITECTURE.md 5.5): the tap follows connections while unprotected, keeps the
// client's bytes since each service boundary, and brings every open connection to a joining
// backup as a snapshot; the backup's shadow and replica start from it.

import { describe, expect, it } from 'vitest';
import type { SnapshotRecord } from '../../../src/replication/log-records.js';
import { OutputMatcher, type Divergence } from '../../../src/replication/output-matcher.js';
import { OutputStore } from '../../../src/replication/output-store.js';
import { PrimaryTap, type ReintegrationProgress } from '../../../src/replication/primary-tap.js';
import { RetainedInput, retentionBudget } from '../../../src/replication/retained-input.js';
import { ShadowTable, shadowState } from '../../../src/replication/shadow.js';
import { createPassiveConnection } from '../../../src/stack/tcp/connection.js';
import { SpyLog } from './spy-log.js';
import { bytes, plainConfig, seg, testEnv, TUPLE } from '../tcp/harness.js';


function setup(retention = retentionBudget()): { log: SpyLog; tap: PrimaryTap; progress: ReintegrationProgress[] } {
  const log = new SpyLog();
  let now = 0;
  const progress: ReintegrationProgress[] = [];
  const tap = new PrimaryTap({ log, clock: () => (now += 1000), retention, onReintegration: (p) => progress.push(p) });
  return { log, tap, progress };
}

/** An established connection on the tap: 100 client bytes in, 300 written, the client acked 200 of them. */
function busyConnection(tap: PrimaryTap) {
  const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig(), tap.wrapEnv(testEnv()), 1000);
  c.onSegment(1000, seg('.', 5001, 1001));
  c.onSegment(2000, seg('.P', 5001, 1001, { data: bytes(100, 1) }));
  expect(c.write(3000, bytes(300, 7))).toBe(300);
  c.onSegment(4000, seg('.', 5101, 1201));
  return c;
}

describe('reintegration on the primary', () => {
  it('tap: a connection opened unprotected is snapshotted on attach with the input since its boundary and the unacknowledged output', () => {
    const { log, tap, progress } = setup();
    const c = busyConnection(tap);
    // The service consumed 60 bytes and had answered them with 150 when it held no state.
    c.markBoundary(60, 150);
    expect(log.records).toEqual([]);
    tap.protect();
    expect(log.records.map((r) => r.kind)).toEqual(['snapshot']);
    const snap = log.records[0] as SnapshotRecord;
    expect(snap.state).toMatchObject({ iss: 1000, irs: 5000, rcvNxt: 5101, inputEnd: 100, sndUna: 1201, ackedOutput: 200, outputEnd: 300, ourFin: false, peerFin: false, boundary: { input: 60, output: 150 } });
    expect(snap.retained).toEqual([
      { stream: 'input', offset: 60, data: bytes(40, 61) },
      { stream: 'output', offset: 200, data: bytes(100, 207) },
    ]);
    expect(progress.at(-1)).toEqual({ snapshots: 1, pending: 0, bytes: 140, done: true });
    // The backup has the connection once it acknowledged this LSN (status waits for it).
    expect(tap.reintegrationLsn).toBe(snap.lsn);
    expect(tap.pendingCount).toBe(0);
    // From now on it is logged like any other connection, at the offsets the snapshot ended.
    c.onSegment(5000, seg('.P', 5101, 1201, { data: bytes(5, 9) }));
    expect(log.records.at(-1)).toMatchObject({ kind: 'input', offset: 100, data: bytes(5, 9) });
  });

  it('tap: a connection whose retained input overflowed waits for its next boundary, is counted pending, then snapshotted', () => {
    const { log, tap, progress } = setup(retentionBudget(64, 1024));
    const c = busyConnection(tap);
    tap.protect();
    expect(log.records).toEqual([]);
    expect(tap.pendingCount).toBe(1);
    expect(progress.at(-1)).toMatchObject({ snapshots: 0, pending: 1, done: false });
    c.markBoundary(100, 300);
    expect(log.records.map((r) => r.kind)).toEqual(['snapshot']);
    expect((log.records[0] as SnapshotRecord).retained[0]).toEqual({ stream: 'input', offset: 100, data: new Uint8Array(0) });
    expect(tap.pendingCount).toBe(0);
    expect(progress.at(-1)).toMatchObject({ snapshots: 1, pending: 0, done: true });
  });

  it('tap: a half-open connection is brought over as an open record; a protected one is not snapshotted again', () => {
    const { log, tap } = setup();
    const half = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig(), tap.wrapEnv(testEnv()), 1000);
    tap.protect();
    expect(log.records.map((r) => r.kind)).toEqual(['open']);
    half.onSegment(1000, seg('.', 5001, 1001, { data: 10 }));
    expect(log.records.filter((r) => r.kind === 'snapshot')).toEqual([]);
    expect(log.records.map((r) => r.kind)).toEqual(['open', 'input']);
    expect(log.records.at(-1)).toMatchObject({ kind: 'input', offset: 0, data: expect.objectContaining({ length: 10 }) });
  });

  it('retained input: bounded per connection and per node, trimmed at boundaries, given back on release', () => {
    const budget = retentionBudget(10, 15);
    const a = new RetainedInput(budget);
    a.append(bytes(8));
    expect(a.complete).toBe(true);
    a.append(bytes(4, 8));
    // 12 > 10: the oldest 2 bytes went, and the boundary at 0 cannot be replayed from any more.
    expect(a.complete).toBe(false);
    a.boundaryAt({ input: 9, output: 3 });
    expect(a.complete).toBe(true);
    expect(a.sinceBoundary()).toEqual(bytes(3, 9));
    const b = new RetainedInput(budget);
    b.append(bytes(13));
    // The node's 15 are passed: the connection that grew gives up all it held.
    expect(b.heldBytes).toBe(0);
    expect(budget.used).toBe(3);
    a.release();
    expect(budget.used).toBe(0);
  });
});

describe('reintegration on the backup', () => {
  it('shadow: a snapshot makes a shadow whose promoted state continues the primary’s', () => {
    const { log, tap } = setup();
    const c = busyConnection(tap);
    c.markBoundary(100, 300);
    tap.protect();
    const table = new ShadowTable(() => 0);
    table.apply(log.records[0]!);
    const s = table.get(1)!;
    expect(s).toMatchObject({ rcvNxt: 5101, inputEnd: 100, sndUna: 1201, ackedOutput: 200, outputEnd: 300 });
    expect(shadowState(s)).toBe('ESTABLISHED');
    expect(s.output.slice(200, 300)).toEqual(bytes(100, 207));
    expect(() => table.apply({ ...(log.records[0] as SnapshotRecord), lsn: 9 })).toThrow(/already open/);
  });

  it('matcher: replica output the client already acknowledged is dropped unseen, comparison starts at SND.UNA', () => {
    const primary = new OutputStore(1000);
    primary.append(bytes(200, 1000));
    const seen: Divergence[] = [];
    // The replica restarts at the connection's start boundary: it regenerates 1,000 bytes first.
    const m = new OutputMatcher(primary, (d) => seen.push(d), 0);
    expect(m.skipping).toBe(1000);
    // Different bytes below SND.UNA are not compared: the client has the primary's.
    m.replicaWrote(new Uint8Array(990).fill(0xee));
    expect(m.compared).toBe(1000);
    m.replicaWrote(bytes(60, 990));
    expect(m.compared).toBe(1050);
    expect(seen).toEqual([]);
    m.replicaWrote(new Uint8Array(10));
    expect(seen[0]?.offset).toBe(1050);
  });
});
