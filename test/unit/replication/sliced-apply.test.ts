import { describe, expect, it } from 'vitest';
import type { LogRecord } from '../../../src/replication/log-records.js';
import { SlicedApply } from '../../../src/replication/node/sliced-apply.js';
import { ReplicaLog } from '../../../src/replication/replication-log.js';

const rec = (lsn: number): LogRecord => ({ kind: 'boundary', lsn, conn: 1, inputOffset: lsn });
const recs = (from: number, to: number): LogRecord[] => Array.from({ length: to - from + 1 }, (_, i) => rec(from + i));

/**
 * A replica whose every record costs `costMs` of a fake clock, acks sent at once, and slices
 * run only when the test says so: what happens between two turns is visible.
 */
function harness(costMs: number, sliceMs = 20, badLsn = -1) {
  let now = 0;
  const applied: number[] = [];
  const acks: number[] = [];
  const turns: (() => void)[] = [];
  const failures: string[] = [];
  const replica = new ReplicaLog({
    apply: (r) => {
      if (r.lsn === badLsn) throw new Error('bad record');
      applied.push(r.lsn);
      now += costMs;
    },
    sendAck: (lsn) => acks.push(lsn),
  });
  const sa = new SlicedApply(replica, { sliceMs, schedule: (run) => turns.push(run), onFailure: (r) => failures.push(r.error), now: () => now });
  const turn = (): void => (turns.shift() as () => void)();
  /** Moves the fake clock, as verifying and decoding a message would. */
  const spend = (ms: number): number => (now += ms);
  return { sa, applied, acks, turns, failures, turn, replica, spend };
}

describe('SlicedApply', () => {
  it('sliced apply: a cheap message is applied whole in the turn it arrives', () => {
    const h = harness(0.01);
    h.sa.push(recs(1, 100));
    expect(h.applied.length).toBe(100);
    expect(h.turns.length).toBe(0);
    expect(h.sa.queued).toBe(0);
  });

  it('sliced apply: an expensive message yields between slices and acknowledges only what was applied', () => {
    const h = harness(1, 20);
    h.sa.push(recs(1, 100));
    // 8 records per clock check: the first slice stops at the first check past 20 ms.
    expect(h.applied.length).toBe(24);
    expect(h.acks.at(-1)).toBe(24);
    expect(h.sa.queued).toBe(76);
    expect(h.turns.length).toBe(1);
    h.turn();
    expect(h.applied.length).toBe(48);
    expect(h.acks.at(-1)).toBe(48);
    while (h.turns.length > 0) h.turn();
    expect(h.applied).toEqual(recs(1, 100).map((r) => r.lsn));
    expect(h.acks.at(-1)).toBe(100);
    expect(h.sa.yields).toBe(4);
  });

  it('sliced apply: the first slice counts from the message arrival: decoding that used 12 of 20 ms leaves 8, decoding past 20 leaves the whole message to the next turn', () => {
    const h = harness(1, 20);
    const at = h.spend(0);
    h.spend(12);
    h.sa.push(recs(1, 100), at);
    expect(h.applied.length).toBe(8);
    expect(h.turns.length).toBe(1);
    while (h.turns.length > 0) h.turn();
    expect(h.replica.lastApplied).toBe(100);

    const late = h.spend(0);
    h.spend(25);
    h.sa.push(recs(101, 110), late);
    expect(h.applied.length).toBe(100);
    expect(h.acks.at(-1)).toBe(100);
    expect(h.turns.length).toBe(1);
    h.turn();
    expect(h.replica.lastApplied).toBe(110);
  });

  it('sliced apply: a message arriving while an earlier one waits is applied after it, in log order', () => {
    const h = harness(1, 20);
    h.sa.push(recs(1, 40));
    h.sa.push(recs(41, 45));
    // The second message does not jump the queue or start a second runner.
    expect(h.applied.length).toBe(24);
    expect(h.turns.length).toBe(1);
    h.turn();
    expect(h.applied).toEqual(recs(1, 45).map((r) => r.lsn));
    expect(h.turns.length).toBe(0);
  });

  it('sliced apply: flush applies everything queued in the same turn (before a takeover or a handover)', () => {
    const h = harness(1, 5, 13);
    h.sa.push(recs(1, 12));
    h.sa.push(recs(13, 20));
    expect(h.sa.queued).toBe(12);
    h.sa.flush();
    expect(h.sa.queued).toBe(0);
    expect(h.replica.lastApplied).toBe(12);
    // LSN 13 throws in the handler: the failure is reported once and the rest is dropped.
    expect(h.failures).toEqual(['applying boundary record LSN 13 failed: bad record']);
    expect(h.applied).toEqual(recs(1, 12).map((r) => r.lsn));
    // The turn scheduled before the flush finds nothing left.
    while (h.turns.length > 0) h.turn();
    expect(h.applied.length).toBe(12);
  });

  it('sliced apply: a gap stops the queue and reports it; clear forgets what waits', () => {
    const h = harness(1, 20);
    h.sa.push([...recs(1, 30), rec(32)]);
    while (h.turns.length > 0) h.turn();
    expect(h.failures).toEqual(['gap in the replication log: expected LSN 31, got 32 (1 records missing)']);
    expect(h.replica.lastApplied).toBe(30);
    h.sa.push(recs(31, 100));
    h.sa.clear();
    while (h.turns.length > 0) h.turn();
    expect(h.replica.lastApplied).toBe(54);
  });
});
