// A backup attaching to a primary with many open connections: the tap brings them over in slices
// across turns, each connection at its own attach point (docs/replication.md, "Reintegration").
// The slices run on a virtual clock that moves a quarter millisecond per look, and "turns" are
// run by hand.

import { describe, expect, it } from 'vitest';
import type { LogRecord, SnapshotRecord } from '../../../src/replication/log-records.js';
import { PrimaryTap, type ReintegrationProgress } from '../../../src/replication/primary-tap.js';
import { createPassiveConnection, type Connection } from '../../../src/stack/tcp/connection.js';
import { emitTcpIpv4 } from '../../../src/stack/wire/tcp.js';
import { IPPROTO_TCP, TCP_ACK, type FourTuple } from '../../../src/stack/wire/types.js';
import { emptyLinkStats } from '../../../src/tun/link.js';
import { SpyLog } from './spy-log.js';
import { bytes, plainConfig, seg, testEnv, TUPLE } from '../tcp/harness.js';

const tupleOf = (i: number): FourTuple => ({ ...TUPLE, remotePort: 30000 + i });

/** A pure ACK from us on connection i, acknowledging everything the client sent so far. */
function ackPacket(c: Connection, i: number): Uint8Array {
  const t = tupleOf(i);
  return emitTcpIpv4(
    { src: t.localAddr, dst: t.remoteAddr, protocol: IPPROTO_TCP, ttl: 64, tos: 0, id: 1, df: true },
    { srcPort: t.localPort, dstPort: t.remotePort, seq: c.v.sndNxt, ack: c.v.rcvNxt, flags: TCP_ACK, window: 1000, urgent: 0, options: {}, payload: new Uint8Array(0) },
  );
}

function setup(n: number) {
  const log = new SpyLog();
  const messages: number[] = [];
  log.attach((b) => messages.push(b.records.length), 0);
  const turns: (() => void)[] = [];
  let t = 0;
  const progress: ReintegrationProgress[] = [];
  const tap = new PrimaryTap({
    log,
    clock: () => 0,
    onReintegration: (p) => progress.push(p),
    attachSlices: { sliceMs: 1, schedule: (run) => turns.push(run), now: () => (t += 0.25) },
  });
  const sent: number[] = [];
  // Packets are told apart by the client port they go to.
  const gate = tap.wrapLink({ mtu: 1500, stats: emptyLinkStats(), send: (ps) => ps.forEach((p) => sent.push((p[22]! << 8) | p[23]!)), onReceive: () => undefined, close: () => undefined });
  const env = tap.wrapEnv(testEnv());
  const conns: Connection[] = [];
  for (let i = 0; i < n; i++) {
    const c = createPassiveConnection(0, tupleOf(i), seg('S', 5000, 0), plainConfig(), env, 1000);
    c.onSegment(1000, seg('.', 5001, 1001, { data: bytes(10, i) }));
    // A service that was last state-free 4 bytes in: 6 client bytes to replay.
    c.markBoundary(4, 0);
    conns.push(c);
  }
  const nextTurn = (): void => {
    const run = turns.shift();
    if (run === undefined) throw new Error('no slice scheduled');
    run();
  };
  const snapshots = (): SnapshotRecord[] => log.records.filter((r): r is SnapshotRecord => r.kind === 'snapshot');
  return { log, tap, turns, nextTurn, progress, gate, sent, conns, snapshots, messages };
}

const connOf = (r: LogRecord): number | null => (r.kind === 'heartbeat' ? null : r.conn);

describe('attach in slices', () => {
  it('attach slices: 100 connections come over 32 per slice on the virtual clock, each snapshotted once, and status waits for the last', () => {
    const { log, tap, turns, nextTurn, progress, snapshots, messages } = setup(100);
    tap.protect();
    // Four looks at the clock (every 8 snapshots) reach the 1 ms budget: the rest waits for a turn.
    expect(snapshots()).toHaveLength(32);
    // The slice's records left as one message (32 snapshots and their ack records), not held for the next.
    expect(messages).toEqual([64]);
    expect(turns).toHaveLength(1);
    expect(tap.pendingCount).toBe(68);
    expect(progress[0]).toEqual({ snapshots: 0, pending: 100, bytes: 0, done: false });
    nextTurn();
    nextTurn();
    expect(snapshots()).toHaveLength(96);
    nextTurn();
    expect(turns).toHaveLength(0);
    const snaps = snapshots();
    expect(snaps.map((s) => s.state.tuple.remotePort).sort()).toEqual(Array.from({ length: 100 }, (_, i) => 30000 + i));
    expect(new Set(snaps.map((s) => s.conn)).size).toBe(100);
    expect(tap.pendingCount).toBe(0);
    expect(tap.reintegrationLsn).toBe(snaps.at(-1)!.lsn);
    expect(progress.at(-1)).toEqual({ snapshots: 100, pending: 0, bytes: 600, done: true });
    expect(log.lastLsn).toBe(snaps.at(-1)!.lsn);
  });

  it('attach slices: a connection not yet snapshotted stays outside the log (events unlogged, packets ungated); its snapshot then holds what it did, and its later records follow it', () => {
    const { log, tap, nextTurn, gate, sent, conns, snapshots } = setup(40);
    tap.protect();
    const early = conns[0]!;
    const late = conns[39]!;
    expect(snapshots().map((s) => s.state.tuple.remotePort)).toContain(30000);
    expect(snapshots().map((s) => s.state.tuple.remotePort)).not.toContain(30039);
    const before = log.records.length;
    // The late connection moves before its turn: nothing logged for it, and our ACK of the new
    // bytes leaves at once, as it would before the attach.
    late.onSegment(2000, seg('.P', 5011, 1001, { data: bytes(5, 77) }));
    expect(log.records.slice(before).filter((r) => connOf(r) !== null && r.kind !== 'snapshot' && r.kind !== 'ack')).toEqual([]);
    gate.send([ackPacket(late, 39)]);
    expect(sent).toEqual([30039]);
    // The early one was snapshotted: its ACK waits for the backup's acknowledgement of that snapshot.
    const snapEarly = snapshots().find((s) => s.state.tuple.remotePort === 30000)!;
    gate.send([ackPacket(early, 0)]);
    expect(sent).toEqual([30039]);
    log.flush();
    expect(log.onAck(snapEarly.lsn)).toEqual({ ok: true });
    expect(sent).toEqual([30039, 30000]);

    nextTurn();
    const snapLate = snapshots().find((s) => s.state.tuple.remotePort === 30039)!;
    // One moment of the connection: the 15 client bytes, replayed from its boundary at 4.
    expect(snapLate.state).toMatchObject({ inputEnd: 15, rcvNxt: 5016, boundary: { input: 4, output: 0 } });
    expect(snapLate.retained[0]).toEqual({ stream: 'input', offset: 4, data: Uint8Array.from([...bytes(10, 39).subarray(4), ...bytes(5, 77)]) });
    late.onSegment(3000, seg('.P', 5016, 1001, { data: bytes(3, 9) }));
    const next = log.records.filter((r) => r.kind === 'input' && r.conn === snapLate.conn);
    expect(next).toEqual([expect.objectContaining({ offset: 15, rcvNxt: 5019 })]);
    expect(next[0]!.lsn).toBeGreaterThan(snapLate.lsn);
    // From its snapshot on, its packets wait for the backup too.
    gate.send([ackPacket(late, 39)]);
    expect(sent).toEqual([30039, 30000]);
  });

  it('attach slices: a connection that closes while it waits for its turn gets no snapshot and is not counted as pending', () => {
    const { tap, nextTurn, conns, snapshots } = setup(40);
    tap.protect();
    conns[39]!.abort(2000);
    expect(tap.pendingCount).toBe(7);
    nextTurn();
    expect(snapshots()).toHaveLength(39);
    expect(snapshots().map((s) => s.state.tuple.remotePort)).not.toContain(30039);
    expect(tap.pendingCount).toBe(0);
  });

  it('attach slices: a backup lost mid-attach leaves the rest outside the log; the slice already scheduled adds nothing, and the next attach starts over', () => {
    const { log, tap, turns, nextTurn, snapshots } = setup(40);
    tap.protect();
    expect(snapshots()).toHaveLength(32);
    tap.unprotect('test: backup gone');
    expect(tap.pendingCount).toBe(0);
    const n = log.records.length;
    nextTurn();
    expect(log.records.length).toBe(n);
    tap.protect();
    while (turns.length > 0) nextTurn();
    // Every open connection again, each once more (the node gives a new backup a fresh log).
    expect(snapshots()).toHaveLength(72);
    expect(tap.pendingCount).toBe(0);
  });

  it('attach slices: without a scheduler every connection comes over in the attach turn', () => {
    const log = new SpyLog();
    const tap = new PrimaryTap({ log, clock: () => 0 });
    const env = tap.wrapEnv(testEnv());
    for (let i = 0; i < 50; i++) {
      const c = createPassiveConnection(0, tupleOf(i), seg('S', 5000, 0), plainConfig(), env, 1000);
      c.onSegment(1000, seg('.', 5001, 1001));
    }
    tap.protect();
    expect(log.records.filter((r) => r.kind === 'snapshot')).toHaveLength(50);
    expect(tap.pendingCount).toBe(0);
  });
});
