import { describe, expect, it } from 'vitest';
import type { NewRecord } from '../../../src/replication/log-records.js';
import { ReplicationLog, type OutgoingBatch } from '../../../src/replication/replication-log.js';

const input = (size: number, offset: number): NewRecord => ({
  kind: 'input',
  conn: 1,
  offset,
  data: new Uint8Array(size),
  rcvNxt: offset + size,
  fin: false,
});

/** A log whose end-of-turn flushes run only when the test says so. */
function heldLog(): { log: ReplicationLog; sent: number[][]; endTurn: () => void } {
  const turns: Array<() => void> = [];
  const log = new ReplicationLog({ holdWhileInFlight: 1, scheduleFlush: (run) => turns.push(run) });
  const sent: number[][] = [];
  expect(log.attach((b: OutgoingBatch) => sent.push(b.records.map((r) => r.lsn)), 0)).toEqual({ ok: true });
  return { log, sent, endTurn: () => turns.splice(0).forEach((run) => run()) };
}

describe('ReplicationLog holdWhileInFlight', () => {
  it('sends the first part-filled batch at the end of the turn when nothing is in flight', () => {
    const { log, sent, endTurn } = heldLog();
    log.append(input(10, 0));
    expect(sent).toEqual([]);
    endTurn();
    expect(sent).toEqual([[1]]);
  });

  it('holds later records while a message is in flight and sends them together on its ack', () => {
    const { log, sent, endTurn } = heldLog();
    log.append(input(10, 0));
    endTurn();
    log.append(input(10, 10));
    endTurn();
    log.append(input(10, 20));
    endTurn();
    expect(sent).toEqual([[1]]);
    expect(log.onAck(1)).toEqual({ ok: true });
    expect(sent).toEqual([[1], [2, 3]]);
    expect(log.onAck(3)).toEqual({ ok: true });
    expect(log.lag().records).toBe(0);
  });

  it('an explicit flush is never held', () => {
    const { log, sent, endTurn } = heldLog();
    log.append(input(10, 0));
    endTurn();
    log.append(input(10, 10));
    log.flush();
    expect(sent).toEqual([[1], [2]]);
  });

  it('runs the beforeSeal hook when a batch is sealed: at the end of the turn, and when an ack sends what was held', () => {
    const { log, sent, endTurn } = heldLog();
    let owed = 0;
    // A coalescing producer: what it owes goes in as one record per seal, however often it grew.
    log.setBeforeSeal(() => {
      if (owed > 0) log.append(input(owed, 1000));
      owed = 0;
    });
    owed = 5;
    log.requestFlush();
    endTurn();
    expect(sent).toEqual([[1]]);
    owed = 3;
    log.requestFlush();
    endTurn();
    owed = 4;
    log.requestFlush();
    endTurn();
    // Held behind the message in flight: nothing sealed, the hook not run yet.
    expect(sent).toEqual([[1]]);
    expect(log.lastLsn).toBe(1);
    log.onAck(1);
    expect(sent).toEqual([[1], [2]]);
    expect(owed).toBe(0);
  });

  it('requestFlush alone schedules the end-of-turn flush once', () => {
    const turns: Array<() => void> = [];
    const log = new ReplicationLog({ scheduleFlush: (run) => turns.push(run) });
    let runs = 0;
    log.setBeforeSeal(() => runs++);
    log.requestFlush();
    log.requestFlush();
    expect(turns.length).toBe(1);
    turns.splice(0).forEach((run) => run());
    expect(runs).toBe(1);
  });

  it('refuses a hold below one message', () => {
    expect(() => new ReplicationLog({ holdWhileInFlight: 0 })).toThrow(RangeError);
  });
});
