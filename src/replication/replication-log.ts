// The replication log, both ends, without I/O.
//
// Primary (ReplicationLog): records get consecutive LSNs as they are appended, gather into a
// pending batch, and the batch becomes a message on flush (explicitly at the end of a JS turn, via
// an injected scheduler, or when it reaches its size limit). At most `window` messages are in flight
// unacknowledged; the rest wait. The backup acknowledges cumulatively, and output commit hangs on
// `onCommitted(lsn, cb)` / `waitFor(lsn)`: a segment that depends on records up to some LSN leaves
// once that LSN is acknowledged (ARCHITECTURE.md 5.1, 5.2).
//
// Backup (ReplicaLog): applies records strictly in LSN order, refuses gaps and duplicates, and
// acknowledges what it applied, coalescing acks when given a scheduler.

import { type CommitLatency, CommitLatencySamples } from './commit-latency.js';
import { BATCH_HEADER_BYTES, encodeRecord, type EncodedRecord } from './codec.js';
import { DEFAULT_MAX_FRAME_BODY } from './framing.js';
import { LSN_NONE, type LogRecord, type Lsn, type NewRecord } from './log-records.js';

/** A message's worth of records, as handed to the channel. */
export interface OutgoingBatch {
  firstLsn: Lsn;
  lastLsn: Lsn;
  records: readonly EncodedRecord[];
  /** Encoded size of the records (the message body is BATCH_HEADER_BYTES more). */
  byteLength: number;
}

/** Sends a batch to the backup. Called only while attached. */
export type BatchSink = (batch: OutgoingBatch) => void;

/** Runs a function later, e.g. `setImmediate` to flush once per event-loop turn. */
export type Scheduler = (run: () => void) => void;

export interface ReplicationLogOptions {
  /** Seal the pending batch once it holds this many bytes of records. Default 256 KiB. */
  maxBatchBytes?: number;
  /** Largest message body the channel accepts; one record may not exceed it. Default 16 MiB. */
  maxMessageBytes?: number;
  /** Messages sent and not yet acknowledged. Default 16. */
  window?: number;
  /** Schedules the end-of-turn flush after an append; without one, only flush() sends. */
  scheduleFlush?: Scheduler;
  /** LSN of the last record already replicated before this log (0 for a fresh log). */
  startAfter?: Lsn;
  /**
   * Nagle for the log: while this many messages are in flight, the scheduled (end-of-turn) flush
   * keeps a part-filled batch open, and the next acknowledgement sends it, so one round trip
   * carries what a whole flight of turns appended instead of one small message (and one ack)
   * per turn. A full batch and an explicit flush() go at once. Default: off (every scheduled flush
   * sends).
   */
  holdWhileInFlight?: number;
  /**
   * A clock in microseconds: with one, the log times each message from the sink to its
   * acknowledgement (lag().commit). Without, nothing is timed (the log itself stays clock-free).
   */
  clockUs?: () => number;
}

export interface LogLag {
  /** Last LSN appended. */
  lastLsn: Lsn;
  /** Highest LSN the backup acknowledged. */
  ackedLsn: Lsn;
  /** Records appended and not acknowledged. */
  records: number;
  /** Encoded bytes of those records. */
  bytes: number;
  /** Messages sent and awaiting acknowledgement. */
  messagesInFlight: number;
  /** Sealed messages waiting for window space or for a backup to attach. */
  messagesQueued: number;
  /** Records not yet sealed into a message. */
  pendingRecords: number;
  /** Sent-to-acknowledged times of the last messages (needs the clockUs option), or null. */
  commit: CommitLatency | null;
  attached: boolean;
}

export type LogResult = { ok: true } | { ok: false; error: string };

interface Batch extends OutgoingBatch {
  records: EncodedRecord[];
  sent: boolean;
  /** clockUs() when it was last handed to the sink. */
  sentAtUs?: number;
}

interface Waiter {
  lsn: Lsn;
  run: (err: Error | null) => void;
}

export class LogClosedError extends Error {
  override name = 'LogClosedError';
}

export class ReplicationLog {
  private readonly maxBatchBytes: number;
  private readonly maxMessageBytes: number;
  private readonly window: number;
  private readonly scheduleFlush: Scheduler | undefined;
  private readonly holdWhileInFlight: number;
  private readonly holding: boolean;

  private nextLsn: Lsn;
  private acked: Lsn;
  private pending: EncodedRecord[] = [];
  private pendingBytes = 0;
  /** Sealed batches in LSN order: the sent ones first, then those waiting. */
  private batches: Batch[] = [];
  private inFlight = 0;
  private unackedBytes = 0;
  private lastSent: Lsn;
  /** Highest LSN ever handed to a sink: a backup cannot hold anything beyond it. */
  private maxSent: Lsn;
  private flushScheduled = false;
  private sink: BatchSink | null = null;
  /** Sorted by LSN; output commit appends in LSN order, so inserting is usually a push. */
  private waiters: Waiter[] = [];
  private closed = false;
  private pumping = false;
  private repump = false;
  private advanceListeners: ((acked: Lsn) => void)[] = [];
  private beforeSeal: (() => void) | null = null;
  private readonly clockUs: (() => number) | undefined;
  private readonly commitTimes = new CommitLatencySamples();

  constructor(opts: ReplicationLogOptions = {}) {
    this.maxBatchBytes = opts.maxBatchBytes ?? 256 * 1024;
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_FRAME_BODY;
    this.window = opts.window ?? 16;
    this.scheduleFlush = opts.scheduleFlush;
    this.holdWhileInFlight = opts.holdWhileInFlight ?? Infinity;
    this.clockUs = opts.clockUs;
    this.holding = this.holdWhileInFlight !== Infinity;
    if (!(this.holdWhileInFlight >= 1)) throw new RangeError('holdWhileInFlight must be at least 1 message');
    if (!(this.window >= 1)) throw new RangeError('window must be at least 1 message');
    if (!(this.maxBatchBytes >= 1)) throw new RangeError('maxBatchBytes must be positive');
    const start = opts.startAfter ?? LSN_NONE;
    this.nextLsn = start + 1;
    this.acked = start;
    this.lastSent = start;
    this.maxSent = start;
  }

  get lastLsn(): Lsn {
    return this.nextLsn - 1;
  }

  get ackedLsn(): Lsn {
    return this.acked;
  }

  get attached(): boolean {
    return this.sink !== null;
  }

  /**
   * Gives the record the next LSN and queues it. Payload bytes are kept by reference until
   * acknowledged (a reconnect resends them): the caller must not modify them afterwards.
   */
  append(record: NewRecord): Lsn {
    if (this.closed) throw new LogClosedError('append to a closed replication log');
    const lsn = this.nextLsn;
    const encoded = encodeRecord({ ...record, lsn });
    if (encoded.byteLength + BATCH_HEADER_BYTES > this.maxMessageBytes) {
      throw new RangeError(`a ${record.kind} record of ${encoded.byteLength} bytes exceeds the ${this.maxMessageBytes}-byte message limit; split it`);
    }
    this.nextLsn++;
    if (this.pendingBytes + encoded.byteLength + BATCH_HEADER_BYTES > this.maxMessageBytes) {
      this.seal();
      this.pump();
    }
    this.pending.push(encoded);
    this.pendingBytes += encoded.byteLength;
    this.unackedBytes += encoded.byteLength;
    if (this.pendingBytes >= this.maxBatchBytes) {
      this.seal();
      this.pump();
    } else {
      this.requestFlush();
    }
    return lsn;
  }

  /**
   * A producer that coalesces records (the tap's ack records) runs this hook when pending records
   * are about to become a message: at a flush, and when an acknowledgement sends a held batch. It
   * appends them there, once per message instead of once per event. Nothing may wait on such
   * records: a segment that depended on one could be held until the next message.
   */
  setBeforeSeal(hook: (() => void) | null): void {
    this.beforeSeal = hook;
  }

  /** Schedules the end-of-turn flush (if a scheduler was given), e.g. for the beforeSeal hook to run. */
  requestFlush(): void {
    if (this.scheduleFlush === undefined || this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    this.scheduleFlush(() => {
      this.flushScheduled = false;
      // Held: onAck() (or attach) sends it once the flight in progress is acknowledged.
      if (this.sink !== null && this.inFlight >= this.holdWhileInFlight) return;
      this.flush();
    });
  }

  /** Seals the pending records into a message and sends what the window allows. */
  flush(): void {
    if (this.closed) return;
    this.beforeSeal?.();
    this.seal();
    this.pump();
  }

  /** Cumulative acknowledgement from the backup. An ack beyond what was sent is refused. */
  onAck(lsn: Lsn): LogResult {
    if (!Number.isSafeInteger(lsn) || lsn > this.lastSent) {
      return { ok: false, error: `acknowledgement of LSN ${lsn}, but only up to ${this.lastSent} was sent` };
    }
    if (lsn <= this.acked) return { ok: true };
    this.acked = lsn;
    this.trimAcked();
    this.release();
    if (this.holding && this.inFlight < this.holdWhileInFlight) {
      this.beforeSeal?.();
      this.seal();
    }
    this.pump();
    return { ok: true };
  }

  /**
   * A backup is reachable and has applied every record up to `resumeAfter` (its hello). Unacked
   * messages are resent from there. Fails when the backup lacks records this log no longer holds,
   * or claims records this log never had: it then needs a snapshot (reintegration).
   */
  attach(sink: BatchSink, resumeAfter: Lsn): LogResult {
    if (this.closed) return { ok: false, error: 'the replication log is closed' };
    if (resumeAfter < this.acked) {
      return { ok: false, error: `backup resumes after LSN ${resumeAfter}, but records up to ${this.acked} were already discarded: it needs a snapshot` };
    }
    if (resumeAfter > this.maxSent) {
      return { ok: false, error: `backup claims LSN ${resumeAfter}, but this log sent only up to ${this.maxSent}: it follows another history and needs a snapshot` };
    }
    this.detach();
    this.sink = sink;
    // Whatever was in flight is now lost with the old connection; from here it counts as sent.
    this.lastSent = Math.max(this.lastSent, resumeAfter);
    if (resumeAfter > this.acked) {
      this.acked = resumeAfter;
      this.trimAcked();
      this.release();
    }
    // Records held open for an acknowledgement that the old session will never bring.
    if (this.holding) {
      this.beforeSeal?.();
      this.seal();
    }
    this.pump();
    return { ok: true };
  }

  /** The backup is gone: in-flight messages will be resent to the next one. */
  detach(): void {
    this.sink = null;
    for (const b of this.batches) b.sent = false;
    this.inFlight = 0;
    this.lastSent = this.acked;
  }

  /** Runs cb once every record up to lsn is acknowledged (at once if it already is), or with an error on close. */
  onCommitted(lsn: Lsn, cb: (err: Error | null) => void): void {
    if (lsn <= this.acked) {
      cb(null);
      return;
    }
    if (this.closed) {
      cb(new LogClosedError('replication log closed before the record was acknowledged'));
      return;
    }
    const w: Waiter = { lsn, run: cb };
    const ws = this.waiters;
    if (ws.length === 0 || ws[ws.length - 1].lsn <= lsn) {
      ws.push(w);
      return;
    }
    let lo = 0;
    let hi = ws.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ws[mid].lsn <= lsn) lo = mid + 1;
      else hi = mid;
    }
    ws.splice(lo, 0, w);
  }

  /**
   * Calls listener with the new acknowledged LSN whenever it advances, after the per-LSN callbacks:
   * a driver holding many segments can release them in one pass instead of one callback each.
   * Returns a function that removes the listener.
   */
  onAdvance(listener: (acked: Lsn) => void): () => void {
    this.advanceListeners.push(listener);
    return () => {
      this.advanceListeners = this.advanceListeners.filter((l) => l !== listener);
    };
  }

  waitFor(lsn: Lsn): Promise<void> {
    return new Promise((resolve, reject) => this.onCommitted(lsn, (err) => (err ? reject(err) : resolve())));
  }

  isCommitted(lsn: Lsn): boolean {
    return lsn <= this.acked;
  }

  lag(): LogLag {
    let queued = 0;
    for (const b of this.batches) if (!b.sent) queued++;
    return {
      lastLsn: this.lastLsn,
      ackedLsn: this.acked,
      records: this.lastLsn - this.acked,
      bytes: this.unackedBytes,
      messagesInFlight: this.inFlight,
      messagesQueued: queued,
      pendingRecords: this.pending.length,
      attached: this.sink !== null,
      commit: this.commitTimes.summary(),
    };
  }

  /** Stops the log: waiters fail, nothing more is sent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sink = null;
    const ws = this.waiters;
    this.waiters = [];
    const err = new LogClosedError('replication log closed before the record was acknowledged');
    for (const w of ws) w.run(err);
  }

  private seal(): void {
    if (this.pending.length === 0) return;
    const records = this.pending;
    this.batches.push({
      firstLsn: records[0].lsn,
      lastLsn: records[records.length - 1].lsn,
      records,
      byteLength: this.pendingBytes,
      sent: false,
    });
    this.pending = [];
    this.pendingBytes = 0;
  }

  private pump(): void {
    // A sink may acknowledge synchronously (loopback, tests), which re-enters pump() through
    // onAck() while batches shift underneath; the outer call then goes round again instead.
    if (this.pumping) {
      this.repump = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.repump = false;
        for (let i = 0; i < this.batches.length && this.sink !== null && this.inFlight < this.window; i++) {
          const b = this.batches[i];
          if (b.sent) continue;
          b.sent = true;
          this.inFlight++;
          this.lastSent = b.lastLsn;
          if (b.lastLsn > this.maxSent) this.maxSent = b.lastLsn;
          if (this.clockUs !== undefined) b.sentAtUs = this.clockUs();
          this.sink(b);
          if (this.repump) break;
        }
      } while (this.repump);
    } finally {
      this.pumping = false;
    }
  }

  /** Drops acknowledged records: whole batches, and the acknowledged head of a partly acked one. */
  private trimAcked(): void {
    while (this.batches.length > 0 && this.batches[0].lastLsn <= this.acked) {
      const b = this.batches.shift() as Batch;
      if (b.sent) this.inFlight--;
      // Only a message acknowledged by the session it was sent on: one resent after a reconnect,
      // or acknowledged by a hello, would time the outage.
      if (b.sent && b.sentAtUs !== undefined && this.clockUs !== undefined) this.commitTimes.add(this.clockUs() - b.sentAtUs);
      this.unackedBytes -= b.byteLength;
    }
    const head = this.batches[0];
    if (head !== undefined && head.firstLsn <= this.acked) {
      let drop = 0;
      let bytes = 0;
      while (head.records[drop].lsn <= this.acked) bytes += head.records[drop++].byteLength;
      head.records.splice(0, drop);
      head.firstLsn = head.records[0].lsn;
      head.byteLength -= bytes;
      this.unackedBytes -= bytes;
    }
  }

  private release(): void {
    const ws = this.waiters;
    let n = 0;
    while (n < ws.length && ws[n].lsn <= this.acked) n++;
    if (n > 0) for (const w of ws.splice(0, n)) w.run(null);
    for (const l of this.advanceListeners) l(this.acked);
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * Applies one record on the backup; throwing marks the record as not applied. 'blocked': not yet
 * (an output digest waiting for the replica's bytes); the record is offered again later.
 */
export type RecordHandler = (record: LogRecord) => void | 'blocked';

export interface ReplicaLogOptions {
  apply: RecordHandler;
  /** Sends a cumulative acknowledgement to the primary. */
  sendAck: (lsn: Lsn) => void;
  /** Coalesces acks: one per scheduled run instead of one per received message. */
  scheduleAck?: Scheduler;
  /** Last LSN already applied (0 for a fresh replica). */
  lastApplied?: Lsn;
}

export type ReplicaResult =
  /** blocked: the record after the applied ones must be offered again later (see RecordHandler). */
  | { ok: true; applied: number; blocked?: boolean }
  | { ok: false; kind: 'gap' | 'duplicate' | 'handler'; error: string; applied: number };

export class ReplicaLog {
  private applied: Lsn;
  private ackedSent: Lsn;
  private ackScheduled = false;
  private readonly opts: ReplicaLogOptions;

  constructor(opts: ReplicaLogOptions) {
    this.opts = opts;
    this.applied = opts.lastApplied ?? LSN_NONE;
    this.ackedSent = this.applied;
  }

  /** Last LSN applied: what this backup's hello announces, where the primary resumes. */
  get lastApplied(): Lsn {
    return this.applied;
  }

  /**
   * Applies a message's records in order. On a gap, a duplicate or a failing handler it stops
   * there: the records before are applied (and acknowledged), and lastApplied stays exact, so the
   * caller drops the connection and the primary resumes from lastApplied on reconnect.
   */
  receive(records: readonly LogRecord[]): ReplicaResult {
    let n = 0;
    let result: ReplicaResult | null = null;
    for (const r of records) {
      const want = this.applied + 1;
      if (r.lsn !== want) {
        const kind = r.lsn < want ? 'duplicate' : 'gap';
        const error =
          kind === 'gap'
            ? `gap in the replication log: expected LSN ${want}, got ${r.lsn} (${r.lsn - want} records missing)`
            : `duplicate in the replication log: LSN ${r.lsn} arrived, ${this.applied} already applied`;
        result = { ok: false, kind, error, applied: n };
        break;
      }
      try {
        if (this.opts.apply(r) === 'blocked') {
          result = { ok: true, applied: n, blocked: true };
          break;
        }
      } catch (e) {
        result = { ok: false, kind: 'handler', error: `applying ${r.kind} record LSN ${r.lsn} failed: ${e instanceof Error ? e.message : String(e)}`, applied: n };
        break;
      }
      this.applied = r.lsn;
      n++;
    }
    if (n > 0) this.requestAck();
    return result ?? { ok: true, applied: n };
  }

  /** Sends the pending acknowledgement now, if any. */
  flushAck(): void {
    this.ackScheduled = false;
    if (this.applied === this.ackedSent) return;
    this.ackedSent = this.applied;
    this.opts.sendAck(this.applied);
  }

  /** After a reconnect the primary learns the position from the hello; no ack is owed. */
  resetAck(): void {
    this.ackedSent = this.applied;
  }

  private requestAck(): void {
    const schedule = this.opts.scheduleAck;
    if (schedule === undefined) {
      this.flushAck();
      return;
    }
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    schedule(() => this.flushAck());
  }
}
