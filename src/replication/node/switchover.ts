// Planned switchover (ARCHITECTURE.md 5.4: "the primary drains its replication window, hands
// over, and becomes the backup; this is how an operator upgrades without dropping connections"):
// what a switchover reports, and the two waits of the primary's half, each bounded by a deadline.
// The sequence itself is ReplicatedNode.switchover(); the backup's half is its takeover.

import type { HandoverDoneMessage } from '../framing.js';
import type { ReplicationChannel } from '../channel.js';
import type { ReplicationLog } from '../replication-log.js';

export type SwitchoverResult =
  | {
      ok: true;
      /**
       * From the moment this node held its output to the moment the handover reply arrived, which
       * the new primary sends right after releasing its retransmissions: the client-facing pause,
       * plus one replication one-way delay.
       */
      stallMs: number;
      /** Holding to the backup's acknowledgement of the log's tail. */
      drainMs: number;
      /** The new primary's takeover, from the handover's arrival to its retransmissions (null: its reply was lost). */
      takeoverMs: number | null;
      epoch: number;
      newPrimary: { nodeId: string; address: string };
    }
  | {
      ok: false;
      /** refused: nothing was touched. aborted: output was held, then released; this node serves on. */
      outcome: 'refused' | 'aborted';
      reason: string;
    };

/** The last switchover as status shows it, on either node. */
export interface SwitchoverInfo {
  at: string;
  /** handed-over: this node was the primary. took-over: it was the backup. */
  outcome: 'handed-over' | 'took-over' | 'refused' | 'aborted';
  stallMs: number | null;
  takeoverMs: number | null;
  epoch: number;
  /** The other node (the new primary after handed-over, the old one after took-over). */
  peer: string | null;
  reason: string | null;
}

export const DEFAULT_SWITCHOVER_TIMEOUT_MS = 3000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the backup acknowledged the log's tail and the tail stays put: a service may still
 * write after the input stopped (until its send buffers fill), so the tail is read again after
 * each acknowledgement. Resolves null once drained, or why not.
 */
export async function drainLog(log: () => ReplicationLog, deadline: number, peerUp: () => boolean): Promise<string | null> {
  for (;;) {
    const l = log();
    const target = l.lastLsn;
    l.flush();
    const left = deadline - performance.now();
    if (left <= 0) return `the backup did not acknowledge LSN ${target} in time (acknowledged ${l.ackedLsn})`;
    if (!peerUp()) return 'the backup went away while the log drained';
    let timer: NodeJS.Timeout | undefined;
    // Re-checked every few milliseconds as well: a backup that disconnects never acknowledges.
    const acked = await Promise.race([
      l.waitFor(target).then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), Math.min(left, 50)))),
    ]);
    clearTimeout(timer);
    if (!acked) continue;
    // One more turn: writes the acknowledgement unblocked (the service's next chunk) append here.
    await new Promise((r) => setImmediate(r));
    if (log().lastLsn === target) return null;
  }
}

export type HandoverReply = { done: HandoverDoneMessage; nodeId: string; address: string } | { refused: string } | { superseded: true } | { timeout: true };

/**
 * The backup's reply to a handover. The new primary's epoch usually shows on the channel's
 * heartbeats before the reply itself; it ends the wait only when the reply can no longer come
 * (the session is gone) or time is up: the backup took over, and only its reply was lost.
 */
export async function awaitHandoverReply(ch: ReplicationChannel, timeoutMs: number, higherEpoch: () => boolean): Promise<HandoverReply> {
  let settle!: (r: HandoverReply) => void;
  const reply = new Promise<HandoverReply>((r) => (settle = r));
  const onDone = (m: HandoverDoneMessage, peer: { nodeId: string; address: string }): void => settle({ done: m, nodeId: peer.nodeId, address: peer.address });
  const onRefused = (reason: string): void => settle({ refused: reason });
  ch.on('handover-done', onDone);
  ch.on('handover-refused', onRefused);
  const deadline = performance.now() + timeoutMs;
  let waiting = true;
  void (async () => {
    while (waiting && performance.now() < deadline) {
      await sleep(10);
      if (waiting && ch.peer === null && higherEpoch()) settle({ superseded: true });
    }
    settle(higherEpoch() ? { superseded: true } : { timeout: true });
  })();
  try {
    return await reply;
  } finally {
    waiting = false;
    ch.off('handover-done', onDone);
    ch.off('handover-refused', onRefused);
  }
}

/**
 * Whether a backup that has applied the log up to `appliedLsn` may take over on a handover naming
 * `handoverLsn` (the primary's log end once drained). The backup must hold everything the client can
 * have seen, which is at most the drained log: records up to handoverLsn. It may hold more — the
 * primary goes on logging while it withdraws the VIP (a heartbeat record, output its service wrote
 * behind the held packets), and those records were sent ahead of the handover on the same ordered
 * channel — and that is state the primary had, none of it seen by the client. Refusing then would
 * abort a sound switchover (seen under load: applied 271, handover 270). Returns the refusal, or null.
 */
export function handoverLsnRefusal(appliedLsn: number, handoverLsn: number): string | null {
  if (appliedLsn >= handoverLsn) return null;
  return `this backup applied up to LSN ${appliedLsn}, the handover names ${handoverLsn}`;
}
