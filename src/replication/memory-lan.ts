// One in-memory L2 segment for simulations: a client and several server nodes. Whatever a node
// sends reaches the client; what the client sends reaches the node that currently owns the VIP,
// which a takeover moves (the gratuitous ARP of the simulation). A node's link can be cut, which
// drops everything it sends or would receive, as a dead host does. Delivery is batched per
// macrotask, like the memory link, so that a send never re-enters the receiver synchronously.

import { copyPacket, emptyLinkStats, type Link, type LinkStats, type ReceiveHandler } from '../tun/link.js';

export type LanWatcher = (from: string, packet: Uint8Array) => void;

class LanPort implements Link {
  readonly stats: LinkStats = emptyLinkStats();
  private handler: ReceiveHandler | undefined;
  private inbox: Uint8Array[] = [];
  private scheduled = false;
  cut = false;
  closed = false;

  constructor(
    readonly name: string,
    readonly mtu: number,
    private readonly lan: MemoryLan,
  ) {}

  send(packets: readonly Uint8Array[]): void {
    for (const p of packets) {
      if (this.cut || this.closed || p.length > this.mtu || p.length === 0) {
        this.stats.txDropped++;
        continue;
      }
      this.stats.txPackets++;
      this.stats.txBytes += p.length;
      this.lan.carry(this, copyPacket(p));
    }
  }

  onReceive(handler: ReceiveHandler): void {
    this.handler = handler;
    if (this.inbox.length > 0) this.schedule();
  }

  close(): void {
    this.closed = true;
    this.inbox = [];
    this.handler = undefined;
  }

  deliver(p: Uint8Array): void {
    if (this.cut || this.closed) {
      this.stats.rxDropped++;
      return;
    }
    this.inbox.push(p);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.handler === undefined) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const h = this.handler;
      if (h === undefined || this.cut || this.closed || this.inbox.length === 0) return;
      const batch = this.inbox;
      this.inbox = [];
      this.stats.rxBatches++;
      this.stats.rxPackets += batch.length;
      h(batch);
    });
  }
}

export class MemoryLan {
  private readonly clientPort: LanPort;
  private readonly nodes = new Map<string, LanPort>();
  private owner: string | null = null;
  private readonly watchers: LanWatcher[] = [];

  constructor(readonly mtu = 1500) {
    this.clientPort = new LanPort('client', mtu, this);
  }

  /** The client's link. */
  get client(): Link {
    return this.clientPort;
  }

  /** A server node's link (created on first use). */
  node(name: string): Link {
    let p = this.nodes.get(name);
    if (p === undefined) {
      p = new LanPort(name, this.mtu, this);
      this.nodes.set(name, p);
    }
    return p;
  }

  /** The node that receives the client's packets from now on. */
  setOwner(name: string): void {
    this.node(name);
    this.owner = name;
  }

  get vipOwner(): string | null {
    return this.owner;
  }

  /** The node's cable is pulled: nothing in or out, including what it had not yet received. */
  cut(name: string): void {
    const p = this.nodes.get(name);
    if (p !== undefined) p.cut = true;
  }

  /** The cable is back (a hung node resumes, or a partition heals). */
  reconnect(name: string): void {
    const p = this.nodes.get(name);
    if (p !== undefined) p.cut = false;
  }

  /** Sees every packet put on the wire, with the name of its sender. */
  watch(w: LanWatcher): void {
    this.watchers.push(w);
  }

  /** @internal */
  carry(from: LanPort, p: Uint8Array): void {
    for (const w of this.watchers) w(from.name, p);
    if (from === this.clientPort) {
      const to = this.owner === null ? undefined : this.nodes.get(this.owner);
      if (to === undefined) from.stats.txDropped++;
      else to.deliver(p);
      return;
    }
    this.clientPort.deliver(p);
  }
}
