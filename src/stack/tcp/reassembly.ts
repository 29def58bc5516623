// Out-of-order segments held until the hole before them is filled, and the SACK blocks that
// describe them (RFC 2018). Data views are kept as received; coverage is tracked separately as
// merged ranges so that finding a segment's block does not walk every segment in it.

import { type SeqNum, seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt, seqMax, seqMin } from '../wire/seq.js';
import type { SackBlock } from '../wire/types.js';

interface Piece {
  seq: SeqNum;
  data: Uint8Array;
}

/** Most SACK blocks remembered for reporting; the option itself fits 4 (3 with timestamps). */
const MAX_REPORTED = 4;

export class ReassemblyQueue {
  /** Non-overlapping pieces sorted by sequence number. */
  private pieces: Piece[] = [];
  /** Merged coverage of `pieces`, sorted. */
  private ranges: SackBlock[] = [];
  /** Blocks in the order RFC 2018 wants them reported: most recently changed first. */
  private recent: SackBlock[] = [];
  private bytes = 0;

  get size(): number {
    return this.bytes;
  }

  get isEmpty(): boolean {
    return this.pieces.length === 0;
  }

  /**
   * Queues data starting at seq (> RCV.NXT). Returns the first range of it that was already
   * queued (for a D-SACK block, RFC 2883), or null.
   */
  insert(seq: SeqNum, data: Uint8Array): SackBlock | null {
    if (data.length === 0) return null;
    const end = seqAdd(seq, data.length);
    let dup: SackBlock | null = null;
    let i = this.firstEndingAfter(seq);
    let cur = seq;
    const added: Piece[] = [];
    while (seqLt(cur, end)) {
      const p = this.pieces[i];
      if (!p || seqGe(p.seq, end)) {
        added.push({ seq: cur, data: data.subarray(seqDiff(cur, seq)) });
        cur = end;
        break;
      }
      if (seqLt(cur, p.seq)) {
        added.push({ seq: cur, data: data.subarray(seqDiff(cur, seq), seqDiff(p.seq, seq)) });
        cur = p.seq;
      }
      const pEnd = seqAdd(p.seq, p.data.length);
      const overlapEnd = seqMin(pEnd, end);
      if (dup === null && seqLt(cur, overlapEnd)) dup = { left: cur, right: overlapEnd };
      cur = seqMax(cur, overlapEnd);
      i++;
    }
    // The new pieces fill gaps between existing ones, so each goes in at its own place.
    for (const a of added) {
      this.pieces.splice(this.firstEndingAfter(a.seq), 0, a);
      this.bytes += a.data.length;
    }
    const block = this.addRange(seq, end);
    this.recent = [block, ...this.recent.filter((b) => seqLt(b.right, block.left) || seqGt(b.left, block.right))].slice(0, MAX_REPORTED);
    return dup;
  }

  /**
   * Removes and returns the data that became in order now that RCV.NXT is rcvNxt, trimmed so that
   * it starts exactly at rcvNxt. Pieces wholly below rcvNxt are dropped.
   */
  takeInOrder(rcvNxt: SeqNum): Uint8Array[] {
    const out: Uint8Array[] = [];
    let next = rcvNxt;
    let n = 0;
    while (n < this.pieces.length) {
      const p = this.pieces[n]!;
      if (seqGt(p.seq, next)) break;
      const pEnd = seqAdd(p.seq, p.data.length);
      this.bytes -= p.data.length;
      n++;
      if (seqGt(pEnd, next)) {
        out.push(p.data.subarray(seqDiff(next, p.seq)));
        next = pEnd;
      }
    }
    if (n > 0) this.pieces.splice(0, n);
    this.trimBelow(next);
    return out;
  }

  /** Forgets coverage below seq (RCV.NXT moved). */
  trimBelow(seq: SeqNum): void {
    while (this.ranges.length > 0 && seqLe(this.ranges[0]!.right, seq)) this.ranges.shift();
    if (this.ranges.length > 0 && seqLt(this.ranges[0]!.left, seq)) this.ranges[0] = { left: seq, right: this.ranges[0]!.right };
    this.recent = this.recent.filter((b) => seqGt(b.right, seq)).map((b) => (seqLt(b.left, seq) ? { left: seq, right: b.right } : b));
  }

  get sackBlockCount(): number {
    return this.recent.length;
  }

  /** The SACK blocks to report, most recent first, at most `max`. */
  sackBlocks(max: number): SackBlock[] {
    return this.recent.slice(0, max);
  }

  /** Bytes of [seq, seq + len) already queued (from the merged coverage): what inserting them would not add. */
  coveredBytes(seq: SeqNum, len: number): number {
    const r = this.ranges;
    const end = seqAdd(seq, len);
    let lo = 0;
    let hi = r.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqLe(r[mid]!.right, seq)) lo = mid + 1;
      else hi = mid;
    }
    let n = 0;
    for (let j = lo; j < r.length && seqLt(r[j]!.left, end); j++) n += seqDiff(seqMin(r[j]!.right, end), seqMax(r[j]!.left, seq));
    return n;
  }

  /** Queued pieces, for snapshots. */
  entries(): ReadonlyArray<{ seq: SeqNum; data: Uint8Array }> {
    return this.pieces;
  }

  clear(): void {
    this.pieces = [];
    this.ranges = [];
    this.recent = [];
    this.bytes = 0;
  }

  /** Index of the first piece whose end is after seq (binary search). */
  private firstEndingAfter(seq: SeqNum): number {
    let lo = 0;
    let hi = this.pieces.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const p = this.pieces[mid]!;
      if (seqLe(seqAdd(p.seq, p.data.length), seq)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Merges [left, right) into the coverage and returns the range that now contains it. */
  private addRange(left: SeqNum, right: SeqNum): SackBlock {
    const r = this.ranges;
    let lo = 0;
    let hi = r.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqLt(r[mid]!.right, left)) lo = mid + 1;
      else hi = mid;
    }
    let j = lo;
    let l = left;
    let rt = right;
    while (j < r.length && seqLe(r[j]!.left, rt)) {
      l = seqMin(l, r[j]!.left);
      rt = seqMax(rt, r[j]!.right);
      j++;
    }
    const merged = { left: l, right: rt };
    r.splice(lo, j - lo, merged);
    return merged;
  }
}
