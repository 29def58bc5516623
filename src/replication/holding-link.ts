// A Link wrapper that holds some of what is sent and lets it go later, in the order it came: the
// primary's output gate (packets wait for the backup's acknowledgement, output-gate.ts) and the
// hold link of a node taking over (packets wait until the VIP is taken, node/hold-link.ts). Each
// send()'s batch is kept whole with its send options, so TSO still applies when it leaves; the
// driver hands every batch over for good (a new array per pass, output slabs never reused), so
// keeping it is safe.

import type { Link, LinkOffload, LinkStats, ReceiveHandler, ReceiveOptions, SendOptions } from '../tun/link.js';

interface Held<Tag> {
  tag: Tag;
  packets: readonly Uint8Array[];
  opts: SendOptions | undefined;
}

export abstract class HoldingLink<Tag> implements Link {
  private queue: Held<Tag>[] = [];

  constructor(protected readonly inner: Link) {}

  abstract send(packets: readonly Uint8Array[], opts?: SendOptions): void;

  get mtu(): number {
    return this.inner.mtu;
  }

  get stats(): LinkStats {
    return this.inner.stats;
  }

  /** The wrapped link's offloads: held packets keep their send options. */
  get offload(): LinkOffload | undefined {
    return this.inner.offload;
  }

  /** Packets held now. */
  get heldPackets(): number {
    let n = 0;
    for (const h of this.queue) n += h.packets.length;
    return n;
  }

  onReceive(handler: ReceiveHandler, opts?: ReceiveOptions): void {
    this.inner.onReceive(handler, opts);
  }

  close(): void {
    this.queue = [];
    this.inner.close();
  }

  protected hasHeld(): boolean {
    return this.queue.length > 0;
  }

  protected holdBack(tag: Tag, packets: readonly Uint8Array[], opts: SendOptions | undefined): void {
    this.queue.push({ tag, packets, opts });
  }

  /**
   * Sends the held batches from the front while `ready` accepts their tag (all of them without
   * one), in order; returns how many packets left. Consecutive batches with the same send options
   * leave as one send: a TUN with TSO merges runs of segments only within one send, and one
   * acknowledgement often lets many batches go.
   */
  protected letGo(ready: (tag: Tag) => boolean = () => true): number {
    const q = this.queue;
    let n = 0;
    while (n < q.length && ready(q[n]!.tag)) n++;
    if (n === 0) return 0;
    const go = q.splice(0, n);
    let packets = 0;
    for (let i = 0; i < go.length; ) {
      const opts = go[i]!.opts;
      let j = i + 1;
      while (j < go.length && sameSendOptions(go[j]!.opts, opts)) j++;
      const run = j === i + 1 ? go[i]!.packets : go.slice(i, j).flatMap((h) => h.packets);
      packets += run.length;
      this.inner.send(run, opts);
      i = j;
    }
    return packets;
  }

  /** Forgets everything held; returns how many packets that was. */
  protected dropHeld(): number {
    const n = this.heldPackets;
    this.queue = [];
    return n;
  }
}

function sameSendOptions(a: SendOptions | undefined, b: SendOptions | undefined): boolean {
  return (a?.tcpChecksumPartial === true) === (b?.tcpChecksumPartial === true);
}
