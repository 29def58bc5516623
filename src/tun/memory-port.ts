// One end of an in-memory wire, for tests and simulations: what is sent is counted and copied to
// wherever the wire carries it (a peer, a simulated LAN), and what arrives reaches the handler as
// one batch on a later macrotask (setImmediate), which mimics a real device: a send never re-enters
// the receiver synchronously, and two stacks ping-ponging cannot starve timers the way a microtask
// loop would.

import { copyPacket, emptyLinkStats, type Link, type LinkStats, type ReceiveHandler } from './link.js';

/** Packets queued for a handler that is not attached yet; beyond this the wire drops. */
const MAX_PENDING = 65536;

export abstract class MemoryPort implements Link {
  readonly stats: LinkStats = emptyLinkStats();
  protected closed = false;
  private handler: ReceiveHandler | undefined;
  private inbox: Uint8Array[] = [];
  private scheduled = false;

  constructor(readonly mtu: number) {}

  /** Takes a copy of one packet this end sent; false when the wire cannot carry it (counted as a drop). */
  protected abstract carry(p: Uint8Array): boolean;

  /** Whether a batch due is handed over now; a port that is cut keeps it for later. */
  protected receiving(): boolean {
    return !this.closed;
  }

  send(packets: readonly Uint8Array[]): void {
    for (const p of packets) {
      // Copy: the caller may reuse its buffer, and the receiver may keep ours.
      if (this.closed || p.length > this.mtu || p.length === 0 || !this.carry(copyPacket(p))) {
        this.stats.txDropped++;
        continue;
      }
      this.stats.txPackets++;
      this.stats.txBytes += p.length;
    }
  }

  onReceive(handler: ReceiveHandler): void {
    this.handler = handler;
    if (this.inbox.length > 0) this.schedule();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stats.rxDropped += this.inbox.length;
    this.inbox = [];
    this.handler = undefined;
  }

  /** A packet for this end, from the wire. */
  protected enqueue(p: Uint8Array): void {
    if (this.inbox.length >= MAX_PENDING) {
      this.stats.rxDropped++;
      return;
    }
    this.inbox.push(p);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.handler === undefined) return;
    this.scheduled = true;
    setImmediate(() => this.handOver());
  }

  private handOver(): void {
    this.scheduled = false;
    const handler = this.handler;
    if (handler === undefined || !this.receiving() || this.inbox.length === 0) return;
    const batch = this.inbox;
    this.inbox = [];
    this.stats.rxBatches++;
    this.stats.rxPackets += batch.length;
    for (const p of batch) this.stats.rxBytes += p.length;
    handler(batch);
  }
}
