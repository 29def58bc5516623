// Two ends of an in-memory wire, for tests and simulations: what one end sends reaches the other
// as a batch on a later macrotask (memory-port.ts).

import type { Link } from './link.js';
import { MemoryPort } from './memory-port.js';

class MemoryLinkEnd extends MemoryPort {
  peer: MemoryLinkEnd | undefined;

  protected carry(p: Uint8Array): boolean {
    const peer = this.peer;
    if (peer === undefined || peer.closed) return false;
    peer.enqueue(p);
    return true;
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
