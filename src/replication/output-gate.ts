// Output commit on the primary (ARCHITECTURE.md 5.1 rule 1, docs/replication.md): a Link wrapper
// that holds every packet the host sends until the backup has acknowledged the records it depends
// on. Records are appended synchronously while the host produces the packets that depend on them,
// so they are all in the log when the packets are handed over. Which records a packet depends on
// is the tap's answer (segment-deps.ts: its connection's output up to its last byte or FIN, the
// input up to its ACK number); without one, the log's tail LSN at send time, which covers them all
// (conservative: a pure ACK then waits for other connections' records too). Held packets leave in
// the order they came, so a later packet never overtakes an earlier held one (holding-link.ts).

import type { Link, ReceiveHandler, ReceiveOptions, SendOptions } from '../tun/link.js';
import { HoldingLink } from './holding-link.js';
import type { Lsn } from './log-records.js';
import type { ReplicationLog } from './replication-log.js';

/**
 * The LSN that must be acknowledged before `packet` may leave: 0 for none. `tail` is the log's last
 * LSN, the answer for a packet that cannot be placed.
 */
export type PacketDependency = (packet: Uint8Array, acked: Lsn, tail: Lsn) => Lsn;

export interface OutputGateStats {
  /** Packets that had to wait for an acknowledgement. */
  held: number;
  /** Packets that went at once (their LSN was already acknowledged, or no backup). */
  passed: number;
  /** Packets released without an acknowledgement because protection was dropped. */
  releasedUnprotected: number;
  /** Packets dropped because a higher epoch fenced this node. */
  fenced: number;
}

/** Held batches are tagged with the LSN they wait for. */
export class OutputGate extends HoldingLink<Lsn> {
  readonly gateStats: OutputGateStats = { held: 0, passed: 0, releasedUnprotected: 0, fenced: 0 };
  private gating = false;
  private inputMuted = false;
  private fenced = false;
  /** Everything waits, acknowledged or not (holdAll). */
  private holdingAll = false;
  private stopListening: () => void;

  constructor(
    inner: Link,
    private log: ReplicationLog,
    private readonly dependsOn: PacketDependency = (_p, _acked, tail) => tail,
  ) {
    super(inner);
    this.stopListening = log.onAdvance((acked) => this.release(acked));
  }

  /**
   * Follows another log from now on (a fresh log for a backup that joins an unprotected primary).
   * Only while not gating: nothing waits on the old log then.
   */
  setLog(log: ReplicationLog): void {
    if (this.gating) throw new Error('the gate cannot change logs while it holds packets for one');
    this.stopListening();
    this.log = log;
    this.stopListening = log.onAdvance((acked) => this.release(acked));
  }

  /** On: packets wait for their LSN. Off (no backup): they pass, and whatever waits goes now. */
  setGating(on: boolean): void {
    this.gating = on;
    if (on || this.fenced) return;
    this.holdingAll = false;
    this.gateStats.releasedUnprotected += this.letGo();
  }

  get isGating(): boolean {
    return this.gating;
  }

  send(packets: readonly Uint8Array[], opts?: SendOptions): void {
    if (packets.length === 0) return;
    if (this.fenced) {
      this.gateStats.fenced += packets.length;
      return;
    }
    if (!this.gating) {
      this.gateStats.passed += packets.length;
      this.inner.send(packets, opts);
      return;
    }
    const acked = this.log.ackedLsn;
    const tail = this.log.lastLsn;
    let lsn = 0;
    for (const p of packets) {
      const d = this.dependsOn(p, acked, tail);
      if (d > lsn) lsn = d;
    }
    if (!this.hasHeld() && lsn <= acked && !this.holdingAll) {
      this.gateStats.passed += packets.length;
      this.inner.send(packets, opts);
      return;
    }
    this.gateStats.held += packets.length;
    this.holdBack(lsn, packets, opts);
  }

  /**
   * On: every packet waits, even one whose records the backup acknowledged (a retransmission, a
   * pure ACK). For a primary that lost its backup and has not yet decided whether it may go on
   * alone: the backup may have taken over meanwhile, and then nothing more from this node may
   * reach the client (fencing, ARCHITECTURE.md 5.4). Off: what was acknowledged goes;
   * setGating(false) (on alone) and fence() (dropped) end it too.
   */
  holdAll(on: boolean): void {
    this.holdingAll = on;
    if (!on) this.release(this.log.ackedLsn);
  }

  override onReceive(handler: ReceiveHandler, opts?: ReceiveOptions): void {
    this.inner.onReceive((packets, info) => {
      if (!this.inputMuted) handler(packets, info);
    }, opts);
  }

  /**
   * Fencing (ARCHITECTURE.md 5.4): a node that learns of a higher epoch stops speaking for the
   * VIP at once. Everything held or sent from now on is dropped, and nothing received goes up.
   */
  fence(): void {
    this.fenced = true;
    this.inputMuted = true;
    this.dropHeld();
  }

  get isFenced(): boolean {
    return this.fenced;
  }

  /**
   * Stops handing received packets to the stack (a planned handover: the connections must stop
   * moving so that the log can drain). The senders retransmit what is dropped here.
   */
  muteInput(): void {
    this.inputMuted = true;
  }

  /** Hands received packets to the stack again (an aborted handover: this node carries on). */
  unmuteInput(): void {
    if (!this.fenced) this.inputMuted = false;
  }

  /**
   * The step-down after a planned switchover: this node spoke for the VIP under an epoch that the
   * new primary now continues, so unlike a fenced node it may serve again later (as a backup that
   * takes over). Everything the fence dropped stays dropped; from now on packets pass and input
   * goes up, ungated until a backup attaches.
   */
  rearm(): void {
    if (this.gating) throw new Error('the gate steps down only once gating is off');
    this.dropHeld();
    this.fenced = false;
    this.inputMuted = false;
  }

  override close(): void {
    this.stopListening();
    super.close();
  }

  private release(acked: Lsn): void {
    if (!this.fenced && !this.holdingAll) this.letGo((lsn) => lsn <= acked);
  }
}
