// CPU time of a process from /proc, to show beside each figure how busy the server was (a server
// pinned at 100% of one core is CPU-bound; one well below is waiting on something).

import { readFileSync } from 'node:fs';

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
