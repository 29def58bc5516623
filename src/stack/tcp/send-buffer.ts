// The send buffer: bytes the application wrote that the peer has not yet acknowledged, kept as a
// list of chunks so that write() and segmentation avoid copying. Offset 0 is the oldest unacked
// byte (SND.UNA once the SYN is acknowledged).

/** Writes smaller than this are copied into a shared tail chunk so that a stream of tiny writes does
 * not turn into a long chunk list. */
const COALESCE_BELOW = 2048;
const TAIL_CAPACITY = 16 * 1024;

export class SendBuffer {
  private chunks: Uint8Array[] = [];
  /** Index of the first live chunk and the number of bytes already dropped from it. */
  private head = 0;
  private headOffset = 0;
  private total = 0;
  /** The tail chunk being filled by small writes: its backing store and used length. */
  private tailStore: Uint8Array | null = null;
  private tailUsed = 0;
  /** Lookup cache: chunk index and the buffer offset of its first live byte. */
  private cacheIndex = 0;
  private cacheStart = 0;

  get length(): number {
    return this.total;
  }

  /** Keeps a reference to `data` (no copy) unless it is small; the caller must not mutate it. */
  append(data: Uint8Array): void {
    if (data.length === 0) return;
    this.total += data.length;
    if (data.length < COALESCE_BELOW) {
      const store = this.tailStore;
      const last = this.chunks.length - 1;
      if (store && last >= this.head && this.tailUsed + data.length <= store.length && this.chunks[last]!.buffer === store.buffer && this.chunks[last]!.byteOffset === store.byteOffset) {
        store.set(data, this.tailUsed);
        this.tailUsed += data.length;
        this.chunks[last] = store.subarray(0, this.tailUsed);
        return;
      }
      const fresh = new Uint8Array(Math.max(TAIL_CAPACITY, data.length));
      fresh.set(data, 0);
      this.tailStore = fresh;
      this.tailUsed = data.length;
      this.chunks.push(fresh.subarray(0, data.length));
      return;
    }
    this.tailStore = null;
    this.chunks.push(data);
  }

  /** Drops n bytes from the front (they were acknowledged). */
  consume(n: number): void {
    if (n <= 0) return;
    if (n > this.total) n = this.total;
    this.total -= n;
    while (n > 0) {
      const c = this.chunks[this.head]!;
      const avail = c.length - this.headOffset;
      if (n < avail) {
        this.headOffset += n;
        n = 0;
      } else {
        n -= avail;
        this.chunks[this.head] = EMPTY;
        this.head++;
        this.headOffset = 0;
      }
    }
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
      this.tailStore = null;
    } else if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    this.cacheIndex = this.head;
    this.cacheStart = 0;
  }

  /**
   * `len` bytes starting at `offset`: a view into one chunk when the range lies inside it, else a
   * copy. Callers ask for ranges inside [0, length).
   */
  slice(offset: number, len: number): Uint8Array {
    if (len <= 0) return EMPTY;
    let i: number;
    let start: number;
    if (offset >= this.cacheStart && this.cacheIndex >= this.head && this.cacheIndex < this.chunks.length) {
      i = this.cacheIndex;
      start = this.cacheStart;
    } else {
      i = this.head;
      start = 0;
    }
    for (;;) {
      const live = this.liveLength(i);
      if (offset < start + live) break;
      start += live;
      i++;
    }
    this.cacheIndex = i;
    this.cacheStart = start;
    const first = this.live(i);
    const within = offset - start;
    if (within + len <= first.length) return first.subarray(within, within + len);
    const out = new Uint8Array(len);
    let copied = 0;
    let src = first.subarray(within);
    for (;;) {
      const take = Math.min(src.length, len - copied);
      out.set(src.subarray(0, take), copied);
      copied += take;
      if (copied === len) break;
      i++;
      src = this.live(i);
    }
    return out;
  }

  /** Every buffered byte, copied (for snapshots). */
  toBytes(): Uint8Array {
    return this.total === 0 ? new Uint8Array(0) : this.slice(0, this.total).slice();
  }

  private live(i: number): Uint8Array {
    const c = this.chunks[i]!;
    return i === this.head && this.headOffset > 0 ? c.subarray(this.headOffset) : c;
  }

  private liveLength(i: number): number {
    const c = this.chunks[i]!;
    return i === this.head ? c.length - this.headOffset : c.length;
  }
}

const EMPTY = new Uint8Array(0);
