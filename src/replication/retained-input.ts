// Client bytes kept since a connection's last service boundary (ARCHITECTURE.md 5.5): what a
// joining backup's service replica must be fed to catch up. Kept on the primary for every
// connection, protected or not, and on the backup by each replica socket (so that a node that
// took over can bring its own new backup up to date).
//
// Bounded twice: per connection (a service that never declares a boundary, like proxy, would
// otherwise keep its whole upload) and per node. Past either bound the oldest bytes go, and the
// connection cannot be caught up until its next boundary.

import type { StreamBoundary, StreamOffset } from './log-records.js';
import { OutputStore } from './output-store.js';

export interface RetentionBudget {
  /** Bytes one connection keeps at most. */
  readonly perConnection: number;
  /** Bytes all connections of the node keep at most. */
  readonly total: number;
  /** Bytes kept now, over all connections. */
  used: number;
}

/** 1 MiB per connection: a request line and headers, or a few echo chunks, fit many times over. */
export const DEFAULT_RETAIN_PER_CONNECTION = 1024 * 1024;
/** 64 MiB per node: at the per-connection bound, 64 connections with no boundary in sight. */
export const DEFAULT_RETAIN_TOTAL = 64 * 1024 * 1024;

export function retentionBudget(perConnection = DEFAULT_RETAIN_PER_CONNECTION, total = DEFAULT_RETAIN_TOTAL): RetentionBudget {
  return { perConnection, total, used: 0 };
}

export class RetainedInput {
  private readonly store: OutputStore;
  private mark: StreamBoundary;

  /**
   * `from`: input offset of the next byte appended. `boundary`: the latest boundary, or null when
   * none is known at or after `from` (the connection then waits for one).
   */
  constructor(
    private readonly budget: RetentionBudget,
    from: StreamOffset = 0,
    boundary: StreamBoundary | null = { input: 0, output: 0 },
  ) {
    this.store = new OutputStore(from);
    this.mark = boundary ?? { input: -1, output: -1 };
  }

  get boundary(): StreamBoundary {
    return this.mark;
  }

  /** The input offset after the last byte appended. */
  get end(): StreamOffset {
    return this.store.end;
  }

  get heldBytes(): number {
    return this.store.end - this.store.start;
  }

  /** Every byte from the latest boundary on is still here: a replica can be caught up now. */
  get complete(): boolean {
    return this.mark.input >= this.store.start && this.mark.input <= this.store.end;
  }

  append(data: Uint8Array): void {
    if (data.length === 0) return;
    this.store.append(data);
    this.budget.used += data.length;
    const over = Math.max(this.heldBytes - this.budget.perConnection, this.budget.used - this.budget.total);
    // Past the node's bound this connection gives up all it holds, not just the excess: it is the
    // one growing, and a partial history is worth nothing until its next boundary anyway.
    if (over > 0) this.dropTo(this.budget.used > this.budget.total ? this.store.end : this.store.start + over);
  }

  /** The service declared a boundary: bytes before it are no longer needed. */
  boundaryAt(b: StreamBoundary): void {
    if (b.input < this.mark.input) return;
    this.mark = { input: b.input, output: b.output };
    this.dropTo(Math.min(b.input, this.store.end));
  }

  /** The bytes from the boundary to the end (views, valid until the next append or boundary). */
  sinceBoundary(): Uint8Array {
    if (!this.complete) throw new Error('retained input does not reach back to the boundary');
    return this.store.slice(this.mark.input, this.store.end);
  }

  /** The connection is gone: give its bytes back to the node's budget. */
  release(): void {
    this.dropTo(this.store.end);
  }

  private dropTo(offset: StreamOffset): void {
    const before = this.heldBytes;
    this.store.trimTo(offset);
    this.budget.used -= before - this.heldBytes;
  }
}
