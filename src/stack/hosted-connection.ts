// The host's wrapper around one core connection. Everyone outside the host (sockets, the
// conformance runner, replication) holds this wrapper, never the core object, so that any call
// that can produce output or move a timer marks the connection dirty: `takePackets()` then visits
// only the connections touched since its last call instead of scanning them all.

import type { HeapSlot } from './deadline-heap.js';
import type { Listener } from './listener.js';
import type {
  IcmpErrorKind,
  Micros,
  TcpConnection,
  TcpEvent,
  TcpState,
} from './tcp/api.js';
import type { SeqNum } from './wire/seq.js';
import type { FourTuple, Ipv4Header, TcpSegment } from './wire/types.js';
import { IPPROTO_TCP } from './wire/types.js';

/** What a hosted connection needs from its host. */
export interface ConnectionOwner {
  markDirty(c: HostedConnection): void;
}

/** The listener-side bookkeeping of a passive connection. */
export interface PassiveOrigin {
  readonly listener: Listener;
  /** Counts toward the listener's half-open queue until it is established or gone. */
  halfOpen: boolean;
  /** Put in the accept queue (once established). */
  queued: boolean;
  /** Handed to the application by accept(). */
  accepted: boolean;
}

const DEFAULT_TTL = 64;

export class HostedConnection implements TcpConnection, HeapSlot {
  heapIndex = -1;
  heapDeadline = 0;
  /** Queued in the owner's dirty list. */
  dirty = false;
  /** Gone from the host's tables (CLOSED was reported). */
  removed = false;
  /** Set for connections created by a listener. */
  passive: PassiveOrigin | undefined;
  /**
   * Events of a passive connection not yet accepted: nobody holds it, so they wait and are
   * replayed once accept() hands it out.
   */
  heldEvents: TcpEvent[] | undefined;
  /** Reused for every packet: only the IP ID changes. */
  readonly ipHeader: Ipv4Header;

  constructor(
    readonly inner: TcpConnection,
    readonly demuxKey: string,
    readonly publicKey: string,
    private readonly owner: ConnectionOwner,
  ) {
    // A send limit raised by replication (setSendLimit) produces output outside these calls.
    inner.setWakeHandler?.(() => owner.markDirty(this));
    const t = inner.tuple;
    this.ipHeader = {
      src: t.localAddr,
      dst: t.remoteAddr,
      protocol: IPPROTO_TCP,
      ttl: DEFAULT_TTL,
      tos: 0,
      id: 0,
      // RFC 1191 path MTU discovery: every TCP segment goes out with DF set.
      df: true,
    };
  }

  get tuple(): FourTuple {
    return this.inner.tuple;
  }
  get state(): TcpState {
    return this.inner.state;
  }
  get readableLength(): number {
    return this.inner.readableLength;
  }
  get writableSpace(): number {
    return this.inner.writableSpace;
  }
  get sendBufferSize(): number {
    return this.inner.sendBufferSize;
  }
  get readEnded(): boolean {
    return this.inner.readEnded;
  }

  onSegment(now: Micros, seg: TcpSegment): void {
    this.inner.onSegment(now, seg);
    this.owner.markDirty(this);
  }
  onTimer(now: Micros): void {
    this.inner.onTimer(now);
    this.owner.markDirty(this);
  }
  onIcmpError(now: Micros, err: IcmpErrorKind, quotedSeq?: SeqNum): void {
    this.inner.onIcmpError(now, err, quotedSeq);
    this.owner.markDirty(this);
  }
  write(now: Micros, data: Uint8Array): number {
    const n = this.inner.write(now, data);
    this.owner.markDirty(this);
    return n;
  }
  read(now: Micros, max?: number): Uint8Array | null {
    const chunk = this.inner.read(now, max);
    // Reading opens the window: the core may owe the peer a window update.
    if (chunk !== null) this.owner.markDirty(this);
    return chunk;
  }
  shutdown(now: Micros): void {
    this.inner.shutdown(now);
    this.owner.markDirty(this);
  }
  close(now: Micros): void {
    this.inner.close(now);
    this.owner.markDirty(this);
  }
  abort(now: Micros): void {
    this.inner.abort(now);
    this.owner.markDirty(this);
  }
  markBoundary(inputOffset: number, outputOffset: number): void {
    this.inner.markBoundary?.(inputOffset, outputOffset);
  }
  setNoDelay(noDelay: boolean): void {
    this.inner.setNoDelay(noDelay);
    this.owner.markDirty(this);
  }
  setKeepAlive(enable: boolean, idleUs?: Micros): void {
    this.inner.setKeepAlive(enable, idleUs);
    this.owner.markDirty(this);
  }
  /** The host gathers output itself; calling this takes what it has not gathered yet. */
  takeOutput(): TcpSegment[] {
    return this.inner.takeOutput();
  }
  /** The host gathers events itself (as HostEvents); this takes what it has not gathered yet. */
  takeEvents(): TcpEvent[] {
    return this.inner.takeEvents();
  }
  nextDeadline(): Micros | null {
    return this.inner.nextDeadline();
  }
}
