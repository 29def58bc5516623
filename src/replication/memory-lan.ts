// One in-memory L2 segment for simulations: a client and several server nodes. Whatever a node
// sends reaches the client; what the client sends reaches the node that currently owns the VIP,
// which a takeover moves (the gratuitous ARP of the simulation). A node's link can be cut, which
// drops everything it sends or would receive, as a dead host does. Delivery is batched per
// macrotask, like the memory link, so that a send never re-enters the receiver synchronously.

import type { Link } from '../tun/link.js';
import { MemoryPort } from '../tun/memory-port.js';

export type LanWatcher = (from: string, packet: Uint8Array) => void;

class LanPort extends MemoryPort {
  cut = false;

  constructor(
    readonly name: string,
    mtu: number,
    private readonly lan: MemoryLan,
  ) {
    super(mtu);
  }

  protected carry(p: Uint8Array): boolean {
    return !this.cut && this.lan.carry(this, p);
  }

  /** A packet from the wire; a port that is cut or closed loses it. */
  deliver(p: Uint8Array): void {
    if (this.cut || this.closed) {
      this.stats.rxDropped++;
      return;
    }
    this.enqueue(p);
  }

  protected override receiving(): boolean {
    return !this.cut && super.receiving();
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

  /** @internal False when nobody owns the VIP: the client's packet goes nowhere. */
  carry(from: LanPort, p: Uint8Array): boolean {
    for (const w of this.watchers) w(from.name, p);
    if (from === this.clientPort) {
      const to = this.owner === null ? undefined : this.nodes.get(this.owner);
      if (to === undefined) return false;
      to.deliver(p);
      return true;
    }
    this.clientPort.deliver(p);
    return true;
  }
}
