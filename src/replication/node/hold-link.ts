// A Link wrapper that can hold everything sent for a moment. The backup holds its output while it
// promotes shadows and takes the VIP (route, proxy ARP, gratuitous ARP), so that the retransmissions
// and window updates the promotion produces leave only once the client's replies can reach this
// node (ARCHITECTURE.md 5.4: "then immediately retransmit ..."). Held packets keep their order and
// send options (holding-link.ts).

import type { SendOptions } from '../../tun/link.js';
import { HoldingLink } from '../holding-link.js';

export class HoldLink extends HoldingLink<undefined> {
  private holdingNow = false;

  get holding(): boolean {
    return this.holdingNow;
  }

  hold(): void {
    this.holdingNow = true;
  }

  /** Sends what was held, in order; returns how many packets that was. */
  release(): number {
    this.holdingNow = false;
    return this.letGo();
  }

  /** Forgets what was held (a switched-over primary: the new one retransmits it); returns the count. */
  discard(): number {
    this.holdingNow = false;
    return this.dropHeld();
  }

  send(packets: readonly Uint8Array[], opts?: SendOptions): void {
    if (this.holdingNow) {
      this.holdBack(undefined, packets, opts);
      return;
    }
    this.inner.send(packets, opts);
  }

  override close(): void {
    this.holdingNow = false;
    super.close();
  }
}
