// A Link wrapper that can hold everything sent for a moment. The backup holds its output while it
// promotes shadows and takes the VIP (route, proxy ARP, gratuitous ARP), so that the retransmissions
// and window updates the promotion produces leave only once the client's replies can reach this
// node (ARCHITECTURE.md 5.4: "then immediately retransmit ..."). Held packets keep their order and
// send options; the stack's output slabs are never reused, so keeping them is safe.

import type { Link, LinkOffload, LinkStats, ReceiveHandler, ReceiveOptions, SendOptions } from '../../tun/link.js';

export class HoldLink implements Link {
  private held: { packets: readonly Uint8Array[]; opts: SendOptions | undefined }[] | null = null;

  constructor(private readonly inner: Link) {}

  get mtu(): number {
    return this.inner.mtu;
  }

  get stats(): LinkStats {
    return this.inner.stats;
  }

  get offload(): LinkOffload | undefined {
    return this.inner.offload;
  }

  get holding(): boolean {
    return this.held !== null;
  }

  hold(): void {
    this.held ??= [];
  }

  /** Sends what was held, in order; returns how many packets that was. */
  release(): number {
    const q = this.held;
    this.held = null;
    if (q === null) return 0;
    let n = 0;
    for (const h of q) {
      n += h.packets.length;
      this.inner.send(h.packets, h.opts);
    }
    return n;
  }

  /** Forgets what was held (a switched-over primary: the new one retransmits it); returns the count. */
  discard(): number {
    const q = this.held;
    this.held = null;
    let n = 0;
    for (const h of q ?? []) n += h.packets.length;
    return n;
  }

  send(packets: readonly Uint8Array[], opts?: SendOptions): void {
    if (this.held !== null) {
      this.held.push({ packets, opts });
      return;
    }
    this.inner.send(packets, opts);
  }

  onReceive(handler: ReceiveHandler, opts?: ReceiveOptions): void {
    this.inner.onReceive(handler, opts);
  }

  close(): void {
    this.held = null;
    this.inner.close();
  }
}
