// The bytes of one stream direction kept by stream offset: appended at the end, read by range,
// trimmed from the front. Chunks are kept as they arrived (no copy on append).

import type { StreamOffset } from './log-records.js';

export class OutputStore {
  private chunks: Uint8Array[] = [];
  private head = 0;
  /** Offset of the first byte still held. */
  private startOffset: StreamOffset;
  private endOffset: StreamOffset;

  /** `from`: the offset of the first byte appended (a stream joined mid-way). */
  constructor(from: StreamOffset = 0) {
    this.startOffset = from;
    this.endOffset = from;
  }

  get start(): StreamOffset {
    return this.startOffset;
  }

  get end(): StreamOffset {
    return this.endOffset;
  }

  append(data: Uint8Array): void {
    if (data.length === 0) return;
    this.chunks.push(data);
    this.endOffset += data.length;
  }

  /** Bytes [from, to) as one array; both must lie within [start, end]. */
  slice(from: StreamOffset, to: StreamOffset): Uint8Array {
    // views() checks the bounds first, so a bad range throws before the allocation.
    const parts = this.views(from, to);
    const out = new Uint8Array(to - from);
    let filled = 0;
    for (const v of parts) {
      out.set(v, filled);
      filled += v.length;
    }
    return out;
  }

  /**
   * Bytes [from, to) as views into the held chunks, in order (no copy): valid until the next
   * trimTo. Both bounds must lie within [start, end].
   */
  views(from: StreamOffset, to: StreamOffset): Uint8Array[] {
    if (from < this.startOffset || to > this.endOffset || from > to) {
      throw new RangeError(`output range [${from}, ${to}) outside the held [${this.startOffset}, ${this.endOffset})`);
    }
    const out: Uint8Array[] = [];
    let at = this.startOffset;
    for (let i = this.head; i < this.chunks.length && at < to; i++) {
      const c = this.chunks[i]!;
      const cEnd = at + c.length;
      if (cEnd > from) {
        const a = Math.max(from, at) - at;
        const b = Math.min(to, cEnd) - at;
        out.push(a === 0 && b === c.length ? c : c.subarray(a, b));
      }
      at = cEnd;
    }
    return out;
  }

  /** Forgets everything before `offset` (clamped to what is held). */
  trimTo(offset: StreamOffset): void {
    let n = Math.min(offset, this.endOffset) - this.startOffset;
    while (n > 0 && this.head < this.chunks.length) {
      const c = this.chunks[this.head]!;
      if (c.length <= n) {
        n -= c.length;
        this.startOffset += c.length;
        this.head++;
      } else {
        this.chunks[this.head] = c.subarray(n);
        this.startOffset += n;
        n = 0;
      }
    }
    if (this.head > 32 && this.head * 2 > this.chunks.length) {
      this.chunks.splice(0, this.head);
      this.head = 0;
    }
  }
}
