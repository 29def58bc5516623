// CPU time of a process from /proc, to show beside each figure how busy the server was (a server
// pinned at 100% of one core is CPU-bound; one well below is waiting on something).

import { readdirSync, readFileSync } from 'node:fs';

const CLK_TCK = 100;

/** User plus system CPU seconds consumed so far by pid, or undefined once it is gone. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces; fields are counted after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** User and system CPU seconds so far of a process's main thread and of all its other threads together. */
export interface ThreadSplit {
  main: { user: number; sys: number };
  others: { user: number; sys: number };
}

/**
 * CPU time of pid split into its main thread (JavaScript, and the system calls it makes) and the
 * rest (V8's compiler and GC workers, libuv's thread pool): undefined once it is gone.
 */
export function threadCpuSeconds(pid: number | undefined): ThreadSplit | undefined {
  if (pid === undefined) return undefined;
  const split: ThreadSplit = { main: { user: 0, sys: 0 }, others: { user: 0, sys: 0 } };
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  for (const t of tasks) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const into = Number(t) === pid ? split.main : split.others;
      into.user += Number(fields[11]) / CLK_TCK;
      into.sys += Number(fields[12]) / CLK_TCK;
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return split;
}
