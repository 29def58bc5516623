// Per-item work over a list too long for one event-loop turn, in slices of bounded time. A node
// taking over promotes thousands of connections and then writes a debug line for each: done in
// one turn, that held the loop for 260-815 ms at 4000 connections (docs/replication.md "Takeover
// of many connections"), and with it the LAN beacon's epoch announcement and the route command's
// completion. Between two slices the loop runs timers and I/O.

export interface TimeSlicing {
  /** Time one slice may take before the rest waits for the next turn, ms. */
  sliceMs: number;
  /** Resolves on a later turn (setImmediate in the node). */
  nextTurn: () => Promise<void>;
  now?: () => number;
  /** Called before each slice's first item (e.g. to read the clock the items share). */
  onSlice?: () => void;
}

/** Items run between two looks at the clock: each costs tens of microseconds. */
const ITEMS_PER_CLOCK_CHECK = 16;

/** Runs `each` on every item in order, yielding the loop after each `sliceMs`; resolves with the number of slices. */
export async function forEachInSlices<T>(items: readonly T[], each: (item: T) => void, opts: TimeSlicing): Promise<number> {
  const now = opts.now ?? (() => performance.now());
  let slices = 0;
  let i = 0;
  while (i < items.length) {
    if (slices > 0) await opts.nextTurn();
    slices++;
    opts.onSlice?.();
    const until = now() + opts.sliceMs;
    do {
      const end = Math.min(items.length, i + ITEMS_PER_CLOCK_CHECK);
      for (; i < end; i++) each(items[i] as T);
    } while (i < items.length && now() < until);
  }
  return slices;
}
