// Two ends of an in-memory wire, for tests and simulations. Packets sent on one end during a turn
// are delivered to the other end as one batch on a later macrotask (setImmediate), which mimics a
// real device: a send never re-enters the peer's handler synchronously, and two stacks ping-ponging
// cannot starve timers the way a microtask loop would.

import { copyPacket, emptyLinkStats, type Link, type LinkStats, type ReceiveHandler } from './link.js';

/** Packets queued for a handler that is not attached yet; beyond this the wire drops. */
const MAX_PENDING = 65536;

class MemoryLinkEnd implements Link {
  readonly stats: LinkStats = emptyLinkStats();
  peer: MemoryLinkEnd | undefined;
  private handler: ReceiveHandler | undefined;
  private inbox: Uint8Array[] = [];
  private scheduled = false;
  private closed = false;

  constructor(readonly mtu: number) {}

  send(packets: readonly Uint8Array[]): void {
    const peer = this.peer;
    for (const p of packets) {
      if (this.closed || peer === undefined || peer.closed || p.length > this.mtu || p.length === 0) {
        this.stats.txDropped++;
        continue;
      }
      this.stats.txPackets++;
      this.stats.txBytes += p.length;
      // Copy: the caller may reuse its buffer, and the receiver may keep ours.
      peer.enqueue(copyPacket(p));
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

  private enqueue(p: Uint8Array): void {
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
    setImmediate(() => this.deliver());
  }

  private deliver(): void {
    this.scheduled = false;
    const handler = this.handler;
    if (this.closed || handler === undefined || this.inbox.length === 0) return;
    const batch = this.inbox;
    this.inbox = [];
    this.stats.rxBatches++;
    this.stats.rxPackets += batch.length;
    for (const p of batch) this.stats.rxBytes += p.length;
    handler(batch);
  }
}

/** Two connected links: what one end sends, the other receives. */
export function createMemoryLinkPair(mtu: number): [Link, Link] {
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new RangeError(`bad MTU ${mtu}`);
  const a = new MemoryLinkEnd(mtu);
  const b = new MemoryLinkEnd(mtu);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
