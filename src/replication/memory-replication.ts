// The replication link without a socket, for simulations: record batches go from the primary's
// ReplicationLog through the real encoding to a receiver (the backup), and acknowledgements come
// back, each way after a delay of at least one macrotask. `cut()` drops everything in flight and
// after, as a dead peer or a pulled cable does.

import { decodeRecord, recordBytes } from './codec.js';
import type { LogRecord, Lsn } from './log-records.js';
import type { OutgoingBatch, ReplicationLog } from './replication-log.js';

export interface MemoryReplicationOptions {
  /** One-way delay in milliseconds, drawn per message (seeded by the caller). Default 0. */
  delayMs?: () => number;
}

/** What the backup end offers: records in, its position for a resume. */
export interface ReplicaEnd {
  receive(records: LogRecord[]): void;
  readonly lastApplied: Lsn;
}

export class MemoryReplication {
  private isCut = false;
  private readonly delay: () => number;
  messages = 0;

  constructor(
    private readonly log: ReplicationLog,
    private readonly replica: ReplicaEnd,
    opts: MemoryReplicationOptions = {},
  ) {
    this.delay = opts.delayMs ?? (() => 0);
  }

  /** Connects the two ends: the log resumes from where the replica stands. */
  connect(): void {
    const r = this.log.attach((b) => this.carry(b), this.replica.lastApplied);
    if (!r.ok) throw new Error(r.error);
  }

  /** The backup acknowledges up to lsn (wire this to the ReplicaLog's sendAck). */
  ack(lsn: Lsn): void {
    this.later(() => {
      const r = this.log.onAck(lsn);
      if (!r.ok) throw new Error(r.error);
    }, this.toPrimary);
  }

  cut(): void {
    this.isCut = true;
  }

  get cutOff(): boolean {
    return this.isCut;
  }

  private carry(batch: OutgoingBatch): void {
    this.messages++;
    // Through the real encoding, as over the channel: the backup sees decoded views.
    const records: LogRecord[] = [];
    for (const e of batch.records) {
      const d = decodeRecord(recordBytes(e));
      if ('error' in d) throw new Error(`memory replication: ${d.error}`);
      records.push(d);
    }
    this.later(() => this.replica.receive(records));
  }

  private later(run: () => void, queue: DelayQueue = this.toBackup): void {
    if (this.isCut) return;
    queue.push(this.delay(), () => {
      if (!this.isCut) run();
    });
  }

  private readonly toBackup = new DelayQueue();
  private readonly toPrimary = new DelayQueue();
}

/** Messages of one direction, delivered in order however their delays were drawn (a TCP stream). */
class DelayQueue {
  private items: { at: number; run: () => void }[] = [];
  private lastAt = 0;
  private armed = false;

  push(delayMs: number, run: () => void): void {
    const at = Math.max(this.lastAt, performance.now() + delayMs);
    this.lastAt = at;
    this.items.push({ at, run });
    this.arm();
  }

  private arm(): void {
    if (this.armed || this.items.length === 0) return;
    this.armed = true;
    const wait = this.items[0]!.at - performance.now();
    const fire = (): void => {
      this.armed = false;
      const now = performance.now();
      let n = 0;
      while (n < this.items.length && this.items[n]!.at <= now) n++;
      // At least the head: a timer may fire a hair early by the clock's rounding.
      const due = this.items.splice(0, Math.max(1, n));
      for (const d of due) d.run();
      this.arm();
    };
    if (wait > 0) setTimeout(fire, Math.ceil(wait));
    else setImmediate(fire);
  }
}
