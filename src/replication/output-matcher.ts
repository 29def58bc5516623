// Compares, by stream offset, what the backup's service replica writes with what the primary's
// service wrote (ARCHITECTURE.md 5.5, COLO-style output comparison). Where both exist the
// primary's bytes win and a difference is a divergence; what the replica writes beyond the end
// of the primary's log is kept, to be sent after takeover.

import type { StreamOffset } from './log-records.js';
import { digestsEqual, outputDigest } from './output-digest.js';
import { OutputStore } from './output-store.js';

/** Reads the primary's output bytes still held (the shadow keeps them until compared). */
export interface PrimaryOutput {
  /** The first byte still held. */
  readonly start: StreamOffset;
  readonly end: StreamOffset;
  slice(from: StreamOffset, to: StreamOffset): Uint8Array;
  /** The same bytes as views into what is held, without copying. */
  views(from: StreamOffset, to: StreamOffset): Uint8Array[];
}

export interface Divergence {
  /** Stream offset of the first differing byte (or of the mismatched end of stream). */
  offset: StreamOffset;
  what: string;
}

export class OutputMatcher {
  /** Everything before this offset has been compared (or lies beyond a divergence, or was skipped). */
  compared: StreamOffset;
  /** The replica's stream from `compared` on (offsets are stream offsets). */
  private readonly ahead: OutputStore;
  private replicaEnd: StreamOffset;
  /**
   * Replica bytes below this offset are dropped unseen: the client acknowledged the primary's
   * (a replica started from a snapshot regenerates them from its boundary).
   */
  private readonly skipBelow: StreamOffset;
  private replicaFinAt: StreamOffset | null = null;
  private primaryFinAt: StreamOffset | null = null;
  divergence: Divergence | null = null;
  /** Bytes compared unequal. */
  differingBytes = 0;

  /**
   * `replicaFrom`: the stream offset of the replica's first byte (a snapshot's boundary). Its
   * output below the primary's first held byte, already acknowledged by the client, is skipped;
   * primary output below `replicaFrom` is never compared (the replica does not write it again).
   */
  constructor(
    private readonly primary: PrimaryOutput,
    private readonly onDiverge: (d: Divergence) => void,
    replicaFrom: StreamOffset = 0,
  ) {
    this.skipBelow = Math.max(replicaFrom, primary.start);
    this.compared = this.skipBelow;
    this.replicaEnd = replicaFrom;
    this.ahead = new OutputStore(this.skipBelow);
  }

  /** Replica bytes still to be regenerated and dropped before comparison starts. */
  get skipping(): number {
    return Math.max(0, this.skipBelow - this.replicaEnd);
  }

  /** Replica bytes written beyond the primary's output; 0 while the replica is behind it. */
  get aheadBytes(): number {
    return Math.max(0, this.replicaEnd - Math.max(this.compared, this.primary.end));
  }

  /** Primary output bytes the replica has not written yet; 0 while the replica is level or ahead. */
  get behindBytes(): number {
    return Math.max(0, this.primary.end - this.replicaEnd);
  }

  /** The replica has written at least as far as the primary's log reaches. */
  get caughtUp(): boolean {
    return this.replicaEnd >= this.primary.end;
  }

  /** Where the replica's stream stands: bytes it has written. */
  get written(): StreamOffset {
    return this.replicaEnd;
  }

  get replicaEnded(): boolean {
    return this.replicaFinAt !== null;
  }

  /** The replica wrote `data` at the end of its stream. */
  replicaWrote(data: Uint8Array): void {
    if (data.length === 0) return;
    if (this.replicaFinAt !== null) return;
    const from = this.replicaEnd;
    this.replicaEnd += data.length;
    if (this.replicaEnd <= this.skipBelow) return;
    this.ahead.append(from >= this.skipBelow ? data : data.subarray(this.skipBelow - from));
    this.match();
    this.checkEnds();
  }

  replicaFinished(): void {
    if (this.replicaFinAt !== null) return;
    this.replicaFinAt = this.replicaEnd;
    this.checkEnds();
  }

  /** New primary output was logged (its bytes are readable through `primary`). */
  primaryWrote(fin: boolean): void {
    if (fin) this.primaryFinAt = this.primary.end;
    this.match();
    this.checkEnds();
  }

  /**
   * The primary logged a digest of its bytes [offset, offset + length) instead of the bytes
   * (docs/replication.md, "Output digests"): once the replica has written that far, its bytes are
   * checked against the digest (output-digest.ts) and handed back as the primary's (views, no
   * copy), and the range counts as compared. Null while the replica has not written them all. A
   * digest that differs is a divergence, and the replica's bytes stand in (the caller can no longer
   * vouch for the stream).
   */
  verifyDigest(offset: StreamOffset, length: number, digest: Uint8Array): { bytes: Uint8Array[]; equal: boolean } | null {
    if (offset !== this.primary.end) throw new Error(`output digest at offset ${offset}, the primary's output ends at ${this.primary.end}`);
    const to = offset + length;
    if (this.replicaEnd < to) return null;
    // The replica's bytes up to the primary's end were compared as they came (match), so the
    // unchecked part of `ahead` starts at `offset` unless the replica's own start lies beyond.
    const from = Math.max(offset, this.ahead.start);
    const bytes = this.ahead.views(from, to);
    // A replica that starts beyond `offset` cannot vouch for the range: no digest to compute.
    const equal = from === offset && digestsEqual(outputDigest(bytes), digest);
    if (!equal) {
      this.differingBytes += length;
      this.diverge({ offset, what: `replica wrote ${length} bytes at offset ${offset} whose digest differs from the primary's` });
    }
    this.compared = to;
    this.ahead.trimTo(to);
    if (from > offset) bytes.unshift(new Uint8Array(from - offset));
    return { bytes, equal };
  }

  /** Replica bytes beyond the primary's log: what the promoted connection sends after takeover. */
  takeAhead(): Uint8Array {
    const from = Math.max(this.compared, this.primary.end, this.ahead.start);
    if (from >= this.replicaEnd) return new Uint8Array(0);
    const out = this.ahead.slice(from, this.replicaEnd);
    this.ahead.trimTo(this.replicaEnd);
    this.compared = this.replicaEnd;
    return out;
  }

  /**
   * Gives up comparing what the replica has not yet written of the primary's output (it fell too
   * far behind to keep the primary's bytes for it). Counts as a divergence: the replica can no
   * longer be vouched for. Later replica bytes below the primary's end are dropped unseen.
   */
  abandon(why: string): void {
    if (this.compared >= this.primary.end) return;
    const at = this.compared;
    this.compared = this.primary.end;
    this.ahead.trimTo(Math.min(this.replicaEnd, this.compared));
    this.diverge({ offset: at, what: why });
  }

  private match(): void {
    const to = Math.min(this.replicaEnd, this.primary.end);
    if (to <= this.compared) {
      this.ahead.trimTo(Math.min(this.replicaEnd, this.compared));
      return;
    }
    const from = this.compared;
    // The common case, equal bytes, is checked chunk by chunk with memcmp on views (a download
    // runs every byte through here on the backup); only a difference pays for copies and a
    // byte loop, to find where it starts and how many bytes differ.
    if (this.divergence === null && !equalRanges(this.ahead.views(from, to), this.primary.views(from, to))) {
      const mine = this.ahead.slice(from, to);
      const theirs = this.primary.slice(from, to);
      for (let i = 0; i < mine.length; i++) {
        if (mine[i] !== theirs[i]) {
          let n = 0;
          for (let j = i; j < mine.length; j++) if (mine[j] !== theirs[j]) n++;
          this.differingBytes += n;
          this.diverge({ offset: from + i, what: `replica wrote different bytes from offset ${from + i}` });
          break;
        }
      }
    }
    this.compared = to;
    this.ahead.trimTo(to);
  }

  private checkEnds(): void {
    if (this.divergence !== null) return;
    const p = this.primaryFinAt;
    const r = this.replicaFinAt;
    if (p !== null && this.replicaEnd > p) this.diverge({ offset: p, what: `replica wrote past the primary's end of stream at ${p}` });
    else if (r !== null && this.primary.end > r) this.diverge({ offset: r, what: `replica ended its stream at ${r}, the primary wrote on` });
    else if (p !== null && r !== null && p !== r) this.diverge({ offset: Math.min(p, r), what: `streams end at ${p} (primary) and ${r} (replica)` });
  }

  private diverge(d: Divergence): void {
    if (this.divergence !== null) return;
    this.divergence = d;
    this.onDiverge(d);
  }
}

/** Whether two chunk lists holding the same number of bytes hold the same bytes. */
function equalRanges(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  let i = 0;
  let j = 0;
  let ai = 0;
  let bj = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    const n = Math.min(x.length - ai, y.length - bj);
    if (n > 0 && Buffer.compare(x.subarray(ai, ai + n), y.subarray(bj, bj + n)) !== 0) return false;
    ai += n;
    bj += n;
    if (ai >= x.length) {
      i++;
      ai = 0;
    }
    if (bj >= y.length) {
      j++;
      bj = 0;
    }
  }
  return true;
}
