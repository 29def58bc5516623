// V8's old-generation growth for a node process (bench/RESULTS.md, 2026-11-28 "session 4").
//
// A node's live heap is small (~15 MB: the modules) while its young generation grows to its
// maximum under a download, and V8 starts an incremental mark-compact whenever the room left
// below the old generation's limit is smaller than the young generation (a scavenge could
// promote all of it). After each mark-compact the limit is set again at a small multiple of the
// small live heap, so a busy node ran a full collection every 20-50 ms: 20-40 per 384 MiB
// downloaded, about 1 ms of CPU per MiB on a replicating primary and 0.5 on its backup (perf),
// where an unreplicated node, whose buffers die young, ran 3-9. A fixed growth factor of 4
// (V8's own upper bound for its dynamic factor) leaves room for the young generation at this
// heap size; a large heap (thousands of connections) grows by at most the same factor V8 would
// allow it anyway.

import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 300;

/**
 * Sets V8's heap growing factor unless the process was started with one of its own (node
 * --heap-growing-percent=N, also through NODE_OPTIONS): the flag is read at every limit
 * computation, so setting it after start-up takes effect from the next collection.
 * Returns whether it set it.
 */
export function tuneHeapGrowth(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string | undefined = process.env.NODE_OPTIONS,
  setFlags: (flags: string) => void = setFlagsFromString,
): boolean {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a));
  if (given) return false;
  setFlags(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
