// A Link wrapper that can hold everything sent, and everything received, for a moment. The backup
// holds its output while it promotes shadows and takes the VIP (route, proxy ARP, gratuitous ARP),
// so that the retransmissions and window updates the promotion produces leave only once the
// client's replies can reach this node (ARCHITECTURE.md 5.4: "then immediately retransmit ...").
// Held packets keep their order and send options (holding-link.ts).
//
// It holds input while the promotion runs in slices alongside the VIP's steps: a client segment
// for a connection whose turn has not come would find no connection and be answered with a RST.
// Segments of connections already promoted go up between slices; the rest in arrival order once
// every connection is promoted. Beyond a bound input is dropped (counted), which costs its sender
// a retransmission, never a RST.

import type { Link, ReceiveHandler, ReceiveOptions, SendOptions } from '../../tun/link.js';
import { HoldingLink } from '../holding-link.js';

/** Received packets (and bytes) kept while input is held: a takeover's worth of client segments. */
const MAX_HELD_INPUT_PACKETS = 16384;
const MAX_HELD_INPUT_BYTES = 32 * 1024 * 1024;

interface HeldPacket {
  packet: Uint8Array;
  /** ReceiveInfo.checksumValid of the packet: 0 means verify it. */
  valid: number;
}

/** Which received packets may go up while input is held (those of connections already promoted). */
export type InputReady = (packet: Uint8Array) => boolean;

export class HoldLink extends HoldingLink<undefined> {
  private holdingNow = false;
  private receiver: ReceiveHandler | null = null;
  /** Non-null while input is held. */
  private heldInput: HeldPacket[] | null = null;
  private inputReady: InputReady = () => false;
  private heldInputBytes = 0;
  /** Since holdInput(): received packets that had to wait, and those dropped because the held input was full. */
  inputHeld = 0;
  inputDropped = 0;

  constructor(
    inner: Link,
    private readonly inputBound = { packets: MAX_HELD_INPUT_PACKETS, bytes: MAX_HELD_INPUT_BYTES },
  ) {
    super(inner);
  }

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

  /**
   * Keeps received packets from the stack until releaseInput(), except those `ready` lets through
   * (the link copies every packet it hands up, so keeping them is safe). A packet held once stays
   * behind the held ones before it: flushReadyInput() hands up those that became ready, and every
   * arrival does that first, so a connection's segments go up in the order they came.
   */
  holdInput(ready: InputReady = () => false): void {
    if (this.heldInput === null) {
      this.heldInput = [];
      this.inputHeld = 0;
      this.inputDropped = 0;
    }
    this.inputReady = ready;
  }

  /** Packets received and held now. */
  get heldInputPackets(): number {
    return this.heldInput?.length ?? 0;
  }

  /** Hands up the held packets that are ready now, in arrival order; returns how many. */
  flushReadyInput(): number {
    const held = this.heldInput;
    if (held === null || held.length === 0) return 0;
    const go: HeldPacket[] = [];
    const keep: HeldPacket[] = [];
    for (const h of held) (this.inputReady(h.packet) ? go : keep).push(h);
    if (go.length === 0) return 0;
    this.heldInput = keep;
    for (const h of go) this.heldInputBytes -= h.packet.length;
    this.handUp(go);
    return go.length;
  }

  /** Hands up everything held, in arrival order, and lets input through again; returns how many packets that was. */
  releaseInput(): number {
    const held = this.heldInput ?? [];
    this.heldInput = null;
    this.heldInputBytes = 0;
    this.handUp(held);
    return held.length;
  }

  override onReceive(handler: ReceiveHandler, opts?: ReceiveOptions): void {
    this.receiver = handler;
    this.inner.onReceive((packets, info) => {
      if (this.heldInput === null) {
        handler(packets, info);
        return;
      }
      this.flushReadyInput();
      const now: HeldPacket[] = [];
      for (let i = 0; i < packets.length; i++) {
        const h = { packet: packets[i]!, valid: info?.checksumValid[i] ?? 0 };
        if (this.inputReady(h.packet)) now.push(h);
        else this.keep(h);
      }
      this.handUp(now);
    }, opts);
  }

  private keep(h: HeldPacket): void {
    const held = this.heldInput as HeldPacket[];
    if (held.length + 1 > this.inputBound.packets || this.heldInputBytes + h.packet.length > this.inputBound.bytes) {
      this.inputDropped++;
      return;
    }
    held.push(h);
    this.inputHeld++;
    this.heldInputBytes += h.packet.length;
  }

  private handUp(batch: readonly HeldPacket[]): void {
    if (batch.length === 0 || this.receiver === null) return;
    const checksumValid = new Uint8Array(batch.length);
    for (let i = 0; i < batch.length; i++) checksumValid[i] = batch[i]!.valid;
    this.receiver(batch.map((h) => h.packet), { checksumValid });
  }

  override close(): void {
    this.holdingNow = false;
    this.heldInput = null;
    this.heldInputBytes = 0;
    super.close();
  }
}
