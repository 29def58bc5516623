import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch } from '../../../src/replication/codec.js';
import type { LogRecord, NewRecord } from '../../../src/replication/log-records.js';
import { LogClosedError, ReplicaLog, ReplicationLog, type OutgoingBatch } from '../../../src/replication/replication-log.js';

const input = (conn: number, size: number, offset = 0): NewRecord => ({
  kind: 'input',
  conn,
  offset,
  data: new Uint8Array(size).fill(conn & 0xff),
  rcvNxt: offset + size,
  fin: false,
});

/** A log with a sink that records what it was handed. */
function primary(opts: ConstructorParameters<typeof ReplicationLog>[0] = {}): { log: ReplicationLog; sent: OutgoingBatch[] } {
  const log = new ReplicationLog(opts);
  const sent: OutgoingBatch[] = [];
  expect(log.attach((b) => sent.push({ ...b, records: [...b.records] }), 0)).toEqual({ ok: true });
  return { log, sent };
}

function lsns(b: OutgoingBatch): number[] {
  return b.records.map((r) => r.lsn);
}

describe('ReplicationLog (primary)', () => {
  it('commit time: each message from the sink to its acknowledgement, on the clock given; a message acknowledged only by a reattach is not timed', () => {
    let nowUs = 1000;
    const { log } = primary({ clockUs: () => nowUs });
    expect(log.lag().commit).toBeNull();
    log.append(input(1, 10));
    log.flush();
    nowUs += 300;
    log.append(input(2, 10));
    log.flush();
    nowUs += 500;
    log.onAck(2);
    // 800 µs for the first message, 500 for the second.
    expect(log.lag().commit).toEqual({ p50Us: 800, p99Us: 800, maxUs: 800, samples: 2 });
    log.append(input(3, 10));
    log.flush();
    log.detach();
    nowUs += 60_000_000;
    expect(log.attach(() => undefined, 3)).toEqual({ ok: true });
    expect(log.lag().commit?.samples).toBe(2);
  });

  it('commit time: without a clock nothing is timed', () => {
    const { log } = primary();
    log.append(input(1, 10));
    log.flush();
    log.onAck(1);
    expect(log.lag().commit).toBeNull();
  });

  it('numbers records consecutively from 1 and sends nothing until flushed', () => {
    const { log, sent } = primary();
    expect([log.append(input(1, 10)), log.append(input(2, 10)), log.append({ kind: 'close', conn: 1, reason: 'done' })]).toEqual([1, 2, 3]);
    expect(sent).toEqual([]);
    log.flush();
    expect(sent.map(lsns)).toEqual([[1, 2, 3]]);
    expect(sent[0]).toMatchObject({ firstLsn: 1, lastLsn: 3 });
  });

  it('continues numbering after startAfter', () => {
    const log = new ReplicationLog({ startAfter: 41 });
    expect(log.append(input(1, 1))).toBe(42);
    expect(log.ackedLsn).toBe(41);
  });

  it('seals a batch when it reaches the size limit, without waiting for a flush', () => {
    const { log, sent } = primary({ maxBatchBytes: 900 });
    for (let i = 0; i < 5; i++) log.append(input(1, 300));
    // Each record is 332 bytes: the third crosses 900.
    expect(sent.map(lsns)).toEqual([[1, 2, 3]]);
    log.flush();
    expect(sent.map(lsns)).toEqual([[1, 2, 3], [4, 5]]);
  });

  it('never builds a message above the message limit and refuses a record that alone exceeds it', () => {
    const { log, sent } = primary({ maxMessageBytes: 1000, maxBatchBytes: 1 << 20 });
    log.append(input(1, 600));
    log.append(input(1, 600));
    log.flush();
    expect(sent.map(lsns)).toEqual([[1], [2]]);
    expect(() => log.append(input(1, 1000))).toThrow(/exceeds the 1000-byte message limit/);
    expect(log.lastLsn).toBe(2);
  });

  it('flushes once per scheduled turn however many records were appended', () => {
    const turns: (() => void)[] = [];
    const log = new ReplicationLog({ scheduleFlush: (run) => turns.push(run) });
    const sent: OutgoingBatch[] = [];
    log.attach((b) => sent.push(b), 0);
    for (let i = 0; i < 10; i++) log.append(input(1, 5));
    expect(turns).toHaveLength(1);
    turns[0]();
    expect(sent).toHaveLength(1);
    expect(sent[0].records).toHaveLength(10);
    log.append(input(1, 5));
    expect(turns).toHaveLength(2);
  });

  it('keeps at most `window` messages in flight and sends the next as acks arrive', () => {
    const { log, sent } = primary({ window: 2 });
    for (let i = 0; i < 4; i++) {
      log.append(input(1, 1));
      log.flush();
    }
    expect(sent.map(lsns)).toEqual([[1], [2]]);
    expect(log.lag()).toMatchObject({ messagesInFlight: 2, messagesQueued: 2, records: 4 });
    log.onAck(1);
    expect(sent.map(lsns)).toEqual([[1], [2], [3]]);
    log.onAck(3);
    expect(sent.map(lsns)).toEqual([[1], [2], [3], [4]]);
    expect(log.lag()).toMatchObject({ messagesInFlight: 1, messagesQueued: 0, records: 1, ackedLsn: 3 });
  });

  it('sends every batch once, in order, when the sink acknowledges synchronously', () => {
    const log = new ReplicationLog({ window: 1 });
    const seen: number[][] = [];
    for (let i = 0; i < 4; i++) {
      log.append(input(1, 1));
      log.flush();
    }
    log.attach((b) => {
      seen.push(lsns(b));
      expect(log.onAck(b.lastLsn)).toEqual({ ok: true });
    }, 0);
    expect(seen).toEqual([[1], [2], [3], [4]]);
    expect(log.lag()).toMatchObject({ records: 0, messagesInFlight: 0, messagesQueued: 0 });
  });

  it('releases output-commit callbacks in LSN order once a cumulative ack covers them', async () => {
    const { log } = primary();
    const order: number[] = [];
    for (let i = 0; i < 5; i++) log.append(input(1, 1));
    log.flush();
    log.onCommitted(4, () => order.push(4));
    log.onCommitted(2, () => order.push(2));
    log.onCommitted(5, () => order.push(5));
    const p3 = log.waitFor(3).then(() => order.push(3));
    log.onAck(1);
    expect(order).toEqual([]);
    log.onAck(4);
    await p3;
    expect(order).toEqual([2, 4, 3]);
    expect(log.isCommitted(4)).toBe(true);
    expect(log.isCommitted(5)).toBe(false);
    log.onAck(5);
    expect(order).toEqual([2, 4, 3, 5]);
    let immediate = false;
    log.onCommitted(5, () => (immediate = true));
    expect(immediate).toBe(true);
  });

  it('tells advance listeners each new acknowledged LSN, and stops after unsubscribe', () => {
    const { log } = primary();
    for (let i = 0; i < 3; i++) log.append(input(1, 1));
    log.flush();
    const seen: number[] = [];
    const stop = log.onAdvance((acked) => seen.push(acked));
    log.onAck(1);
    log.onAck(1);
    log.onAck(3);
    stop();
    log.append(input(1, 1));
    log.flush();
    log.onAck(4);
    expect(seen).toEqual([1, 3]);
  });

  it('ignores stale acks and refuses an ack beyond what was sent', () => {
    const { log } = primary();
    log.append(input(1, 1));
    log.append(input(1, 1));
    expect(log.onAck(1)).toMatchObject({ ok: false, error: expect.stringMatching(/only up to 0 was sent/) });
    log.flush();
    expect(log.onAck(2)).toEqual({ ok: true });
    expect(log.onAck(1)).toEqual({ ok: true });
    expect(log.ackedLsn).toBe(2);
    expect(log.onAck(3).ok).toBe(false);
  });

  it('reports lag in records and bytes, and drops acknowledged bytes', () => {
    const { log } = primary();
    log.append(input(1, 100));
    log.append(input(1, 50));
    log.append(input(1, 10));
    const each = [132, 82, 42];
    expect(log.lag()).toMatchObject({ records: 3, bytes: 256, pendingRecords: 3, lastLsn: 3, ackedLsn: 0, attached: true });
    log.flush();
    // An ack in the middle of a message trims its head.
    log.onAck(1);
    expect(log.lag()).toMatchObject({ records: 2, bytes: each[1] + each[2], pendingRecords: 0 });
    log.onAck(3);
    expect(log.lag()).toMatchObject({ records: 0, bytes: 0, messagesInFlight: 0 });
  });

  it('resends unacknowledged messages from where a reattached backup stands', () => {
    const { log, sent } = primary({ window: 8 });
    for (let i = 0; i < 3; i++) {
      log.append(input(1, 1));
      log.append(input(1, 1));
      log.flush();
    }
    expect(sent.map(lsns)).toEqual([[1, 2], [3, 4], [5, 6]]);
    log.onAck(2);
    log.detach();
    log.append(input(1, 1));
    log.flush();
    expect(sent).toHaveLength(3);
    const again: OutgoingBatch[] = [];
    // The backup applied up to 3 before the connection died: 4 onwards is resent.
    expect(log.attach((b) => again.push({ ...b, records: [...b.records] }), 3)).toEqual({ ok: true });
    expect(again.map(lsns)).toEqual([[4], [5, 6], [7]]);
    expect(log.ackedLsn).toBe(3);
  });

  it('refuses to attach a backup that lacks discarded records or claims records never sent', () => {
    const { log } = primary();
    log.append(input(1, 1));
    log.append(input(1, 1));
    log.flush();
    log.onAck(2);
    log.detach();
    expect(log.attach(() => undefined, 1)).toMatchObject({ ok: false, error: expect.stringMatching(/discarded: it needs a snapshot/) });
    expect(log.attach(() => undefined, 9)).toMatchObject({ ok: false, error: expect.stringMatching(/only up to 2: it follows another history/) });
    expect(log.attached).toBe(false);
    expect(log.attach(() => undefined, 2)).toEqual({ ok: true });
  });

  it('holds messages while detached and sends them on attach', () => {
    const log = new ReplicationLog();
    log.append(input(1, 1));
    log.flush();
    expect(log.lag()).toMatchObject({ messagesQueued: 1, attached: false });
    const sent: OutgoingBatch[] = [];
    log.attach((b) => sent.push(b), 0);
    expect(sent.map(lsns)).toEqual([[1]]);
  });

  it('fails waiters and refuses appends once closed', async () => {
    const { log } = primary();
    log.append(input(1, 1));
    const p = log.waitFor(1);
    log.close();
    await expect(p).rejects.toBeInstanceOf(LogClosedError);
    await expect(log.waitFor(2)).rejects.toBeInstanceOf(LogClosedError);
    expect(() => log.append(input(1, 1))).toThrow(LogClosedError);
  });
});

describe('ReplicaLog (backup)', () => {
  const rec = (lsn: number): LogRecord => ({ kind: 'boundary', lsn, conn: 1, inputOffset: lsn });

  it('applies records in order and acknowledges the last one per message', () => {
    const applied: number[] = [];
    const acks: number[] = [];
    const r = new ReplicaLog({ apply: (x) => void applied.push(x.lsn), sendAck: (l) => acks.push(l) });
    expect(r.receive([rec(1), rec(2)])).toEqual({ ok: true, applied: 2 });
    expect(r.receive([rec(3)])).toEqual({ ok: true, applied: 1 });
    expect(applied).toEqual([1, 2, 3]);
    expect(acks).toEqual([2, 3]);
    expect(r.lastApplied).toBe(3);
  });

  it('refuses a gap, applying and acknowledging only what came before it', () => {
    const applied: number[] = [];
    const acks: number[] = [];
    const r = new ReplicaLog({ apply: (x) => void applied.push(x.lsn), sendAck: (l) => acks.push(l) });
    expect(r.receive([rec(1), rec(2), rec(5), rec(6)])).toEqual({
      ok: false,
      kind: 'gap',
      error: 'gap in the replication log: expected LSN 3, got 5 (2 records missing)',
      applied: 2,
    });
    expect(applied).toEqual([1, 2]);
    expect(acks).toEqual([2]);
    expect(r.lastApplied).toBe(2);
    expect(r.receive([rec(3)]).ok).toBe(true);
  });

  it('refuses a duplicate without applying it again', () => {
    const applied: number[] = [];
    const r = new ReplicaLog({ apply: (x) => void applied.push(x.lsn), sendAck: () => undefined, lastApplied: 10 });
    expect(r.receive([rec(10)])).toMatchObject({ ok: false, kind: 'duplicate', error: 'duplicate in the replication log: LSN 10 arrived, 10 already applied' });
    expect(applied).toEqual([]);
    expect(r.receive([rec(11)])).toEqual({ ok: true, applied: 1 });
  });

  it('does not count a record whose handler throws as applied', () => {
    const acks: number[] = [];
    const r = new ReplicaLog({
      apply: (x) => {
        if (x.lsn === 2) throw new Error('service replica refused');
      },
      sendAck: (l) => acks.push(l),
    });
    expect(r.receive([rec(1), rec(2)])).toMatchObject({ ok: false, kind: 'handler', error: 'applying boundary record LSN 2 failed: service replica refused', applied: 1 });
    expect(r.lastApplied).toBe(1);
    expect(acks).toEqual([1]);
  });

  it('coalesces acks of several messages into one per scheduled run', () => {
    const runs: (() => void)[] = [];
    const acks: number[] = [];
    const r = new ReplicaLog({ apply: () => undefined, sendAck: (l) => acks.push(l), scheduleAck: (run) => runs.push(run) });
    r.receive([rec(1)]);
    r.receive([rec(2), rec(3)]);
    r.receive([]);
    expect(runs).toHaveLength(1);
    expect(acks).toEqual([]);
    runs[0]();
    expect(acks).toEqual([3]);
    runs[0]();
    expect(acks).toEqual([3]);
  });
});

describe('primary and replica logs together', () => {
  it('deliver 2,000 records of random sizes in order through encoded messages with a small window', () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const log = new ReplicationLog({ window: 3, maxBatchBytes: 4096 });
    const wire: Uint8Array[] = [];
    log.attach((b) => wire.push(Uint8Array.from(Buffer.concat(encodeBatch(b.records).chunks))), 0);
    const got: LogRecord[] = [];
    const replica = new ReplicaLog({ apply: (r) => void got.push(r), sendAck: (lsn) => expect(log.onAck(lsn).ok).toBe(true) });
    let offset = 0;
    for (let i = 0; i < 2000; i++) {
      const size = rand(700);
      log.append({ ...input(3, size, offset), data: new Uint8Array(size).fill(i & 0xff) } as NewRecord);
      offset += size;
      if (rand(10) === 0) log.flush();
      // The backup processes a random number of messages now and then.
      for (let k = rand(3); k > 0 && wire.length > 0; k--) {
        const records = decodeBatch(wire.shift() as Uint8Array);
        if ('error' in records) throw new Error(records.error);
        expect(replica.receive(records).ok).toBe(true);
      }
      expect(log.lag().messagesInFlight).toBeLessThanOrEqual(3);
    }
    log.flush();
    while (wire.length > 0) {
      const records = decodeBatch(wire.shift() as Uint8Array);
      if ('error' in records) throw new Error(records.error);
      replica.receive(records);
    }
    expect(log.lag()).toMatchObject({ records: 0, bytes: 0, ackedLsn: 2000 });
    expect(got.map((r) => r.lsn)).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    let at = 0;
    for (const r of got) {
      if (r.kind !== 'input') throw new Error('unexpected kind');
      expect(r.offset).toBe(at);
      expect(r.data.every((b) => b === ((r.lsn - 1) & 0xff))).toBe(true);
      at += r.data.length;
    }
    expect(at).toBe(offset);
  });
});
