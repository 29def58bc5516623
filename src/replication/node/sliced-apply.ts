// The backup's side of a replication message, applied in slices of bounded time. A message can
// hold hundreds of snapshot records (reintegration: every open connection at once when a backup
// attaches), and applying one starts a service replica and replays its retained input. Applied in
// one turn, a large message keeps the event loop from the channel's heartbeat timer, and a
// primary with the default dead-after (300 ms) drops a backup that fell silent that long: it goes
// unprotected, starts a fresh log, the backup resyncs and reattaches, and reintegration starts
// over. Between slices the loop runs timers and I/O, so the heartbeats go out on time.
//
// A record can also block (an output digest whose bytes the service replica has not written yet,
// docs/replication.md "Output digests"): the queue then waits, unapplied and unacknowledged,
// until resume() says the replica moved.
//
// Order is kept: records are applied strictly in arrival order, a later message waits behind an
// earlier one's rest. Acknowledgements stay exact: the ReplicaLog acknowledges what it applied,
// slice by slice, never what only waits here (ARCHITECTURE.md 5.1 rule 1: the primary's output
// waits for the backup's ack of the records it depends on, so records queued here hold it back).

import type { LogRecord } from '../log-records.js';
import type { ReplicaLog, ReplicaResult } from '../replication-log.js';

export interface SlicedApplyOptions {
  /** Time one slice may take before the rest waits for the next turn, ms. */
  sliceMs: number;
  /** A record failed to apply (gap, duplicate, handler error): what was queued is dropped. */
  onFailure: (r: Extract<ReplicaResult, { ok: false }>) => void;
  /** The next slice's turn (setImmediate in the node). */
  schedule: (run: () => void) => void;
  now?: () => number;
}

/** Records applied between two looks at the clock: a snapshot costs well under a millisecond. */
const RECORDS_PER_CLOCK_CHECK = 8;

export class SlicedApply {
  private readonly queue: (readonly LogRecord[])[] = [];
  /** Index of the next record to apply in queue[0]. */
  private next = 0;
  private scheduled = false;
  /** The head record blocked: nothing runs until resume(). */
  private blocked = false;
  /** resume() came while a slice ran (from inside a record's apply): it counts when that slice blocks. */
  private wakeDuringRun = false;
  private readonly now: () => number;
  /** Times the rest of the queue waited for the next turn. */
  yields = 0;

  constructor(
    private readonly replica: ReplicaLog,
    private readonly opts: SlicedApplyOptions,
  ) {
    this.now = opts.now ?? (() => performance.now());
  }

  /** Records received and not yet applied. */
  get queued(): number {
    let n = 0;
    for (const m of this.queue) n += m.length;
    return n - this.next;
  }

  /**
   * A message from the channel: applied now while the slice's time lasts, the rest later. With
   * `receivedAt` (on the `now` clock) the slice counts from there: verifying and decoding a
   * message of a thousand snapshots takes its own milliseconds in the same turn, and a slice
   * on top of them ran that turn to 50-65 ms at 4000 connections.
   */
  push(records: readonly LogRecord[], receivedAt?: number): void {
    if (records.length === 0) return;
    this.queue.push(records);
    if (this.queue.length !== 1 || this.scheduled || this.blocked) return;
    const budget = receivedAt === undefined ? this.opts.sliceMs : this.opts.sliceMs - (this.now() - receivedAt);
    if (budget > 0) this.run(budget);
    else this.later();
  }

  /** The head record is waiting for the service replica. */
  get isBlocked(): boolean {
    return this.blocked;
  }

  /** The replica moved: a blocked head record is tried again (in a later turn, never re-entrantly). */
  resume(): void {
    if (!this.blocked) {
      this.wakeDuringRun = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    this.opts.schedule(() => {
      this.scheduled = false;
      if (this.blocked) {
        this.blocked = false;
        this.run(this.opts.sliceMs);
      }
    });
  }

  /**
   * Applies everything queued that can be applied now, in this turn: before a takeover promotes
   * the shadows or a handover compares positions, what arrived must be in them. Records from a
   * blocked one on stay queued (never acknowledged, so nothing sent depends on them).
   */
  flush(): void {
    this.blocked = false;
    this.run(Infinity);
  }

  /** Forgets what is queued (a new session, or a fresh replica after a resync). */
  clear(): void {
    this.queue.length = 0;
    this.next = 0;
    this.blocked = false;
  }

  private run(budgetMs: number): void {
    const until = this.now() + budgetMs;
    this.wakeDuringRun = false;
    while (this.queue.length > 0) {
      const msg = this.queue[0] as readonly LogRecord[];
      const end = Math.min(msg.length, this.next + RECORDS_PER_CLOCK_CHECK);
      const r = this.replica.receive(this.next === 0 && end === msg.length ? msg : msg.slice(this.next, end));
      if (!r.ok) {
        this.clear();
        this.opts.onFailure(r);
        return;
      }
      if (r.blocked === true) {
        this.next += r.applied;
        if (this.next >= msg.length) {
          this.queue.shift();
          this.next = 0;
        }
        this.blocked = true;
        if (this.wakeDuringRun) this.resume();
        return;
      }
      if (end < msg.length) this.next = end;
      else {
        this.queue.shift();
        this.next = 0;
      }
      if (this.queue.length > 0 && this.now() >= until) {
        this.later();
        return;
      }
    }
  }

  /** The rest waits for the next turn. */
  private later(): void {
    this.yields++;
    this.scheduled = true;
    this.opts.schedule(() => {
      this.scheduled = false;
      this.run(this.opts.sliceMs);
    });
  }
}
