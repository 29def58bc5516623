// A passive-open endpoint: the half-open queue (connections in SYN-RECEIVED) bounded by the host's
// synBacklog, and the accept queue (established, not yet accepted) bounded by the listen backlog,
// as in Linux's split between the SYN queue and the accept queue.

import type { HostedConnection } from './hosted-connection.js';
import type { TcpListener } from './host-api.js';
import type { Micros, TcpConnection } from './tcp/api.js';
import type { Ipv4Addr } from './wire/types.js';

export interface ListenerOwner {
  /** accept() handed `c` out: release the events held while nobody owned it. */
  onAccepted(c: HostedConnection): void;
  /** The application closed the listener. */
  onListenerClosed(l: Listener, now: Micros): void;
}

/** Key of a listener in the host's table: wildcard listeners use address 0. */
export function listenerKey(addr: Ipv4Addr, port: number): number {
  return addr * 65536 + port;
}

export class Listener implements TcpListener {
  /** Connections in SYN-RECEIVED created by this listener. */
  halfOpen = 0;
  /** When a SYN last overflowed the half-open queue; cookies are only honoured after that. */
  lastCookieAt = -Infinity;
  closed = false;
  private readonly queue: HostedConnection[] = [];
  private head = 0;

  constructor(
    readonly addr: Ipv4Addr,
    readonly port: number,
    readonly backlog: number,
    private readonly owner: ListenerOwner,
  ) {}

  get key(): number {
    return listenerKey(this.addr, this.port);
  }

  get pendingCount(): number {
    return this.queue.length - this.head;
  }

  get acceptQueueFull(): boolean {
    return this.pendingCount >= this.backlog;
  }

  enqueue(c: HostedConnection): void {
    this.queue.push(c);
  }

  /** Drops a queued connection that closed before anyone accepted it. */
  unqueue(c: HostedConnection): void {
    const i = this.queue.indexOf(c, this.head);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /** Queued connections, oldest first (for closing the listener). */
  drain(): HostedConnection[] {
    const rest = this.queue.slice(this.head);
    this.queue.length = 0;
    this.head = 0;
    return rest;
  }

  accept(): TcpConnection | undefined {
    if (this.head >= this.queue.length) return undefined;
    const c = this.queue[this.head]!;
    this.head++;
    // Compact now and then so a long-lived listener's array does not grow without bound.
    if (this.head > 64 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.owner.onAccepted(c);
    return c;
  }

  close(now: Micros): void {
    if (this.closed) return;
    this.closed = true;
    this.owner.onListenerClosed(this, now);
  }
}
