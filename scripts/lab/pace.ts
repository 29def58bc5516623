// Pacing what the switch sends to one node, for tests and benches whose premise is that a transfer
// is still on the wire when a node is killed (a download that must be reset, a backup copy that
// must be behind, a stall to measure). curl --limit-rate paces only curl's reads: the server may
// fill the client's receive buffer ahead of them, and after a slow spell curl reads at full speed
// to catch up its average — in CI a "4 MiB/s" download once took 16 MiB in 1.6 s, and others were
// complete in the client's buffer before a kill at 89%. A token bucket on the switch's port paces
// what the servers can deliver, so the bytes curl holds are the bytes that crossed the wire, give
// or take the bucket's queue.

import type { Lab, LabNode } from './lab.js';

/** Pacing in force on a port until `undo()`. */
export interface PacedPort {
  undo(): Promise<void>;
}

/** Everything the switch sends to `node`, at most `bytesPerSec` (tbf on the switch's port). */
export async function paceToNode(l: Lab, node: Exclude<LabNode, 'switch'>, bytesPerSec: number): Promise<PacedPort> {
  // The switch's end of a node's veth is named after the node (lab.ts). The bucket holds 10 ms of
  // the rate (at least 32 KiB, or a kernel tick's worth would not fit) and queues 20 ms more (at
  // least 64 KiB): enough that TCP seldom overflows it, little enough that the server cannot run
  // far ahead of what crossed the wire.
  const burst = Math.max(32 * 1024, Math.ceil(bytesPerSec / 100));
  const limit = Math.max(64 * 1024, Math.ceil(bytesPerSec / 50));
  await l.exec('switch', 'tc', ['qdisc', 'replace', 'dev', node, 'root', 'tbf', 'rate', `${bytesPerSec * 8}bit`, 'burst', String(burst), 'limit', String(limit)]);
  let undone = false;
  return {
    async undo() {
      if (undone) return;
      undone = true;
      await l.exec('switch', 'tc', ['qdisc', 'del', 'dev', node, 'root'], { allowFailure: true });
    },
  };
}
