// An indexed binary min-heap of deadlines, one entry per item. The host keeps every connection's
// next timer here so that `nextDeadline()` is a peek and a changed deadline costs O(log n), instead
// of a scan over thousands of connections per driver turn.

import type { Micros } from './tcp/api.js';

/** What the heap stores: the item carries its own slot so that updates need no lookup. */
export interface HeapSlot {
  /** Position in the heap array, -1 when not in the heap. Owned by the heap. */
  heapIndex: number;
  /** The deadline the item is filed under. Owned by the heap. */
  heapDeadline: Micros;
}

export class DeadlineHeap<T extends HeapSlot> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  /** The item with the earliest deadline, or undefined. */
  peek(): T | undefined {
    return this.items[0];
  }

  /** The earliest deadline, or null when empty. */
  earliest(): Micros | null {
    const top = this.items[0];
    return top === undefined ? null : top.heapDeadline;
  }

  /** Files `item` under `deadline`, or removes it when deadline is null. */
  set(item: T, deadline: Micros | null): void {
    if (deadline === null) {
      this.remove(item);
      return;
    }
    if (item.heapIndex < 0) {
      item.heapDeadline = deadline;
      item.heapIndex = this.items.length;
      this.items.push(item);
      this.up(item.heapIndex);
      return;
    }
    const old = item.heapDeadline;
    if (old === deadline) return;
    item.heapDeadline = deadline;
    if (deadline < old) this.up(item.heapIndex);
    else this.down(item.heapIndex);
  }

  remove(item: T): void {
    const i = item.heapIndex;
    if (i < 0) return;
    const last = this.items.pop()!;
    item.heapIndex = -1;
    if (last === item) return;
    this.items[i] = last;
    last.heapIndex = i;
    this.up(i);
    this.down(last.heapIndex);
  }

  /** Removes and returns the earliest item if its deadline is at or before `now`. */
  popDue(now: Micros): T | undefined {
    const top = this.items[0];
    if (top === undefined || top.heapDeadline > now) return undefined;
    this.remove(top);
    return top;
  }

  private up(i: number): void {
    const items = this.items;
    const item = items[i]!;
    while (i > 0) {
      const parentIndex = (i - 1) >> 1;
      const parent = items[parentIndex]!;
      if (parent.heapDeadline <= item.heapDeadline) break;
      items[i] = parent;
      parent.heapIndex = i;
      i = parentIndex;
    }
    items[i] = item;
    item.heapIndex = i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const item = items[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let child = l;
      if (r < n && items[r]!.heapDeadline < items[l]!.heapDeadline) child = r;
      const c = items[child]!;
      if (c.heapDeadline >= item.heapDeadline) break;
      items[i] = c;
      c.heapIndex = i;
      i = child;
    }
    items[i] = item;
    item.heapIndex = i;
  }
}
