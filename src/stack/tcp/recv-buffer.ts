// In-order received bytes waiting for read(), kept as the payload views of the segments that
// carried them (no copy on arrival; one copy at most when read() spans several segments).

export class RecvBuffer {
  private chunks: Uint8Array[] = [];
  private head = 0;
  private total = 0;

  get length(): number {
    return this.total;
  }

  /**
   * Segments dropped because they would have taken this connection's receive memory (unread bytes
   * plus the reassembly queue) beyond its cap (receiver.ts, rcvMemoryCap); see rcvbufDropsOf.
   */
  drops = 0;

  /** Told of every non-empty push (replication's capture of accepted bytes, Connection.setObserver). */
  onPush: ((data: Uint8Array) => void) | null = null;

  push(data: Uint8Array): void {
    if (data.length === 0) return;
    if (this.onPush !== null) this.onPush(data);
    this.chunks.push(data);
    this.total += data.length;
  }

  /**
   * Takes up to max bytes from the front; null when empty. Without max, the next received chunk
   * as it arrived (no copy); with max, as much as fits, copied together when it spans chunks.
   */
  take(max?: number): Uint8Array | null {
    if (this.total === 0) return null;
    const first = this.chunks[this.head]!;
    if (max === undefined) {
      this.drop(first.length);
      return first;
    }
    if (max <= 0) return null;
    if (first.length >= max || this.head === this.chunks.length - 1) {
      const n = Math.min(max, first.length);
      const out = first.subarray(0, n);
      this.drop(n);
      return out;
    }
    const n = Math.min(max, this.total);
    const out = new Uint8Array(n);
    let copied = 0;
    while (copied < n) {
      const c = this.chunks[this.head]!;
      const take = Math.min(c.length, n - copied);
      out.set(take === c.length ? c : c.subarray(0, take), copied);
      copied += take;
      this.drop(take);
    }
    return out;
  }

  /** Copies of the buffered bytes (for snapshots). */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.total);
    let at = 0;
    for (let i = this.head; i < this.chunks.length; i++) {
      out.set(this.chunks[i]!, at);
      at += this.chunks[i]!.length;
    }
    return out;
  }

  private drop(n: number): void {
    this.total -= n;
    while (n > 0) {
      const c = this.chunks[this.head]!;
      if (n < c.length) {
        this.chunks[this.head] = c.subarray(n);
        return;
      }
      n -= c.length;
      this.head++;
    }
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}
