// Pacing the switch's port towards the client, for tests whose premise is that a transfer is still
// on the wire when a node is killed (a download that must be reset, a backup copy that must be
// behind). curl --limit-rate paces only curl's reads: the server may fill the client's receive
// buffer (megabytes, with Linux's autotuning) ahead of them, and after a slow spell curl reads at
// full speed to catch up its average — in CI a "4 MiB/s" download once took 16 MiB in 1.6 s, and
// another was complete in the client's buffer before the kill. A token bucket on the port paces
// what the servers can deliver, so the bytes curl holds are the bytes that crossed the wire, give
// or take the bucket's queue.

import type { Lab } from '../../../scripts/lab.js';

/** Bytes the bucket may queue: about 60 ms at 4 MiB/s, enough that TCP rarely sees it overflow. */
const QUEUE_BYTES = 256 * 1024;

/** What the switch sends to the client, at most `bytesPerSec` until `undo()`. */
export interface PacedClientLink {
  undo(): Promise<void>;
}

export async function paceClientLink(l: Lab, bytesPerSec: number): Promise<PacedClientLink> {
  // The switch's end of the client's veth is named after the node (scripts/lab/lab.ts).
  const port = 'client';
  const burst = Math.max(32 * 1024, Math.ceil(bytesPerSec / 100));
  await l.exec('switch', 'tc', ['qdisc', 'replace', 'dev', port, 'root', 'tbf', 'rate', `${bytesPerSec * 8}bit`, 'burst', String(burst), 'limit', String(QUEUE_BYTES)]);
  let undone = false;
  return {
    async undo() {
      if (undone) return;
      undone = true;
      await l.exec('switch', 'tc', ['qdisc', 'del', 'dev', port, 'root'], { allowFailure: true });
    },
  };
}
