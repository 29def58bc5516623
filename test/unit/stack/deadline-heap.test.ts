import { describe, expect, it } from 'vitest';
import { DeadlineHeap, type HeapSlot } from '../../../src/stack/deadline-heap.js';
import { seededRandom } from './helpers.js';

interface Item extends HeapSlot {
  id: number;
}

describe('deadline heap', () => {
  it('after random sets, updates and removals, popDue yields items in deadline order matching a brute-force model', () => {
    const rnd = seededRandom(42);
    const heap = new DeadlineHeap<Item>();
    const items: Item[] = Array.from({ length: 300 }, (_, id) => ({ id, heapIndex: -1, heapDeadline: 0 }));
    const model = new Map<number, number>();
    for (let step = 0; step < 5000; step++) {
      const it = items[rnd() % items.length]!;
      const op = rnd() % 4;
      if (op === 0) {
        heap.set(it, null);
        model.delete(it.id);
      } else {
        const d = rnd() % 100000;
        heap.set(it, d);
        model.set(it.id, d);
      }
      const min = model.size === 0 ? null : Math.min(...model.values());
      expect(heap.earliest()).toBe(min);
    }
    expect(heap.size).toBe(model.size);
    let last = -1;
    let popped = 0;
    for (let it = heap.popDue(Infinity); it !== undefined; it = heap.popDue(Infinity)) {
      expect(it.heapDeadline).toBe(model.get(it.id));
      expect(it.heapDeadline).toBeGreaterThanOrEqual(last);
      expect(it.heapIndex).toBe(-1);
      last = it.heapDeadline;
      popped++;
    }
    expect(popped).toBe(model.size);
  });

  it('popDue leaves items whose deadline is later than now', () => {
    const heap = new DeadlineHeap<Item>();
    const a: Item = { id: 1, heapIndex: -1, heapDeadline: 0 };
    const b: Item = { id: 2, heapIndex: -1, heapDeadline: 0 };
    heap.set(a, 10);
    heap.set(b, 20);
    expect(heap.popDue(15)).toBe(a);
    expect(heap.popDue(15)).toBeUndefined();
    expect(heap.earliest()).toBe(20);
  });
});
