// Faults on the replication link (`understudy fault <kind> --link replication`), injected at the
// message layer of the channel in the node's own process. The link is a kernel TCP connection, so a
// faulty network does not hand the application lost, doubled or swapped packets: TCP retransmits
// and delivers in order, and what the nodes see is stalls and latency. The faults model that:
//
// - partition: nothing passes; frames queue in order and the peer hears silence (its heartbeat
//   timeout then drops the session, as it would on a real partition); cleared, all flows again.
// - loss <pct>: a lost segment stalls the stream for a retransmission timeout. Each frame is lost
//   with probability pct as it is sent, and so is each retransmission: it arrives LOSS_STALL_MS
//   later per loss, and everything behind it waits for it (in order). 100% lets nothing through.
// - delay <ms> [jitter]: in-order latency; jitter spreads frames out but never reorders them.
// - duplicate, reorder, corrupt: what TCP would never hand up but a broken or hostile path in front
//   of the socket could: a frame twice, a frame held behind the next, a flipped byte. The channel's
//   authentication (per-direction frame counter, MAC) must refuse each, count it and drop the
//   session; the backup redials and the log resumes from its last applied LSN.
//
// 'out' acts on frames this node sends, 'in' on frames it receives, before they are verified (the
// FrameCutter finds their boundaries). Settings, counters and the seeded random streams belong to
// the node (MessageFaults) and outlive sessions; each connection gets its own pipe per direction.

import { noFaults, validateFaultSettings, type FaultCounters, type FaultDirection, type FaultSettings } from '../tun/fault-link.js';
import { createPrng, type Prng } from '../tun/prng.js';
import { FRAME_HEADER_BYTES } from './framing.js';

/** How long a lost frame stalls the stream: about a TCP retransmission timeout on a LAN (RFC 6298's 1 s minimum is what Linux shortens to 200 ms). */
export const LOSS_STALL_MS = 200;

/** The faults of one node's replication link, both directions. */
export class MessageFaults {
  private readonly settings: Record<FaultDirection, FaultSettings> = { in: noFaults(), out: noFaults() };
  private readonly count: Record<FaultDirection, FaultCounters> = { in: zeroCounters(), out: zeroCounters() };
  private readonly rngs: Record<FaultDirection, Prng>;
  private readonly pipes = new Set<MessagePipe>();

  constructor(seed = 1) {
    this.rngs = { out: createPrng(seed >>> 0), in: createPrng((seed ^ 0x2545f491) >>> 0) };
  }

  /** Replaces one direction's settings; fields left out take their no-fault values. */
  setFaults(direction: FaultDirection, settings: Partial<FaultSettings>): void {
    const next = { ...noFaults(), ...settings };
    validateFaultSettings(next);
    this.settings[direction] = next;
    for (const p of this.pipes) if (p.direction === direction) p.settingsChanged();
  }

  clearFaults(): void {
    this.setFaults('in', {});
    this.setFaults('out', {});
  }

  faults(): Record<FaultDirection, FaultSettings> {
    return { in: { ...this.settings.in }, out: { ...this.settings.out } };
  }

  counters(): Record<FaultDirection, FaultCounters> {
    return { in: { ...this.count.in }, out: { ...this.count.out } };
  }

  /** Frames held back right now (partition, loss stall, delay, reorder), per direction. */
  queued(): Record<FaultDirection, number> {
    const q = { in: 0, out: 0 };
    for (const p of this.pipes) q[p.direction] += p.queued;
    return q;
  }

  /** A pipe for one connection and direction; `deliver` gets the frames that pass, in order. */
  pipe(direction: FaultDirection, deliver: (chunks: Uint8Array[]) => void): MessagePipe {
    const p = new MessagePipe(direction, this.settings, this.count[direction], this.rngs[direction], deliver, (x) => this.pipes.delete(x));
    this.pipes.add(p);
    return p;
  }
}

function zeroCounters(): FaultCounters {
  return { passed: 0, lost: 0, partitioned: 0, corrupted: 0, duplicated: 0, reordered: 0, delayed: 0 };
}

function leavesFramesAlone(s: FaultSettings): boolean {
  return !s.partition && s.lossPct === 0 && s.corruptPct === 0 && s.duplicatePct === 0 && s.reorderPct === 0 && s.delayMs === 0 && s.jitterMs === 0;
}

interface Queued {
  chunks: Uint8Array[];
  /** performance.now() before which it may not leave (delay, or the stall after a loss). */
  at: number;
}

interface Held {
  chunks: Uint8Array[];
  /** Frames still to pass before it. */
  remaining: number;
}

export class MessagePipe {
  private queue: Queued[] = [];
  private held: Held[] = [];
  /** Release time of the frame queued last: delay keeps the stream in order. */
  private lastAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private holdTimer: NodeJS.Timeout | undefined;
  /** Pieces of a received frame being gathered while faults are on. */
  private assembling: Uint8Array[] | null = null;
  /** A frame that began while nothing was set goes on whole, unfaulted. */
  private passingThrough = false;
  private closed = false;

  constructor(
    readonly direction: FaultDirection,
    private readonly allSettings: Record<FaultDirection, FaultSettings>,
    private readonly counters: FaultCounters,
    private readonly rng: Prng,
    private readonly deliver: (chunks: Uint8Array[]) => void,
    private readonly onClose: (p: MessagePipe) => void,
  ) {}

  private get settings(): FaultSettings {
    return this.allSettings[this.direction];
  }

  get queued(): number {
    return this.queue.length + this.held.length;
  }

  /** A whole frame (`end` true), or a piece of one from the FrameCutter. */
  push(chunks: Uint8Array[], end: boolean): void {
    if (this.closed) return;
    if (this.passingThrough || (this.assembling === null && this.queued === 0 && leavesFramesAlone(this.settings))) {
      this.passingThrough = !end;
      if (end) this.counters.passed++;
      this.deliver(chunks);
      return;
    }
    if (this.assembling === null) this.assembling = [];
    for (const c of chunks) this.assembling.push(c);
    if (!end) return;
    const frame = this.assembling;
    this.assembling = null;
    this.admit(frame);
  }

  /** Settings changed: a partition lifted or everything cleared lets the queue go now. */
  settingsChanged(): void {
    if (this.closed) return;
    if (leavesFramesAlone(this.settings)) {
      this.releaseHeld();
      for (const q of this.queue) q.at = 0;
      this.lastAt = 0;
    } else {
      if (this.settings.reorderPct === 0) this.releaseHeld();
      // Frames lost for good under loss 100 get their retransmissions under the new setting.
      const now = performance.now();
      let floor = 0;
      for (const q of this.queue) {
        if (q.at === Infinity) q.at = this.retransmitted(now);
        q.at = Math.max(q.at, floor);
        floor = q.at;
      }
      this.lastAt = floor;
    }
    this.pump();
  }

  /** The connection is gone: what was held is lost with it (the log resends from the backup's position). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimers();
    this.queue = [];
    this.held = [];
    this.assembling = null;
    this.onClose(this);
  }

  private admit(frame: Uint8Array[]): void {
    const s = this.settings;
    if (s.partition) this.counters.partitioned++;
    let f = frame;
    if (this.rng.chance(s.corruptPct)) {
      f = [this.corrupt(f)];
      this.counters.corrupted++;
    }
    const copies = this.rng.chance(s.duplicatePct) ? 2 : 1;
    if (copies === 2) this.counters.duplicated++;
    for (let i = 0; i < copies; i++) this.reorderStage(f);
    this.pump();
  }

  /**
   * A copy with one byte flipped after the header: in the body or the MAC, so the MAC check is
   * what catches it. (A flipped length field would make the receiver wait for bytes that the
   * following frames then fill, which is caught too, but only a frame or more later.)
   */
  private corrupt(frame: Uint8Array[]): Uint8Array {
    const flat = Buffer.concat(frame);
    const from = flat.length > FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES : 0;
    const i = from + this.rng.int(flat.length - from);
    flat[i] = (flat[i] ?? 0) ^ (1 + this.rng.int(255));
    return flat;
  }

  private reorderStage(f: Uint8Array[]): void {
    const s = this.settings;
    // The frame that overtakes a held one is never held itself: 100% swaps every pair.
    if (this.held.length === 0 && this.rng.chance(s.reorderPct)) {
      this.counters.reordered++;
      this.held.push({ chunks: f, remaining: s.reorderDistance });
      this.holdTimer ??= setTimeout(() => {
        this.holdTimer = undefined;
        this.releaseHeld();
        this.pump();
      }, s.reorderMaxHoldMs);
      return;
    }
    this.enqueue(f);
    if (this.held.length === 0) return;
    // Each frame that goes ahead brings the held ones a step closer to their turn.
    const still: Held[] = [];
    for (const h of this.held) {
      if (--h.remaining <= 0) this.enqueue(h.chunks);
      else still.push(h);
    }
    this.held = still;
  }

  private releaseHeld(): void {
    if (this.holdTimer !== undefined) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    const held = this.held;
    this.held = [];
    for (const h of held) this.enqueue(h.chunks);
  }

  private enqueue(chunks: Uint8Array[]): void {
    const s = this.settings;
    const now = performance.now();
    let at = 0;
    if (s.delayMs > 0 || s.jitterMs > 0) {
      const jitter = s.jitterMs > 0 ? (this.rng.float() * 2 - 1) * s.jitterMs : 0;
      at = now + Math.max(0, s.delayMs + jitter);
      this.counters.delayed++;
    }
    if (s.lossPct > 0) at = Math.max(at, this.retransmitted(now));
    // A stream: no frame overtakes the one before it.
    at = Math.max(at, this.lastAt);
    this.lastAt = at;
    this.queue.push({ chunks, at });
  }

  /** When a frame sent now gets through: one stall per loss of it or of its retransmissions; never under 100%. */
  private retransmitted(now: number): number {
    const pct = this.settings.lossPct;
    if (pct >= 100) {
      this.counters.lost++;
      return Infinity;
    }
    let at = 0;
    while (this.rng.chance(pct)) {
      this.counters.lost++;
      at = (at === 0 ? now : at) + LOSS_STALL_MS;
    }
    return at;
  }

  private pump(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    while (!this.closed && this.queue.length > 0) {
      const s = this.settings;
      if (s.partition) return; // settingsChanged() pumps again
      const head = this.queue[0] as Queued;
      const now = performance.now();
      if (head.at === Infinity) return; // lost until the setting changes
      if (head.at > now) {
        this.arm(head.at - now);
        return;
      }
      this.queue.shift();
      this.counters.passed++;
      this.deliver(head.chunks);
    }
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, Math.max(1, ms));
  }

  private clearTimers(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.holdTimer !== undefined) clearTimeout(this.holdTimer);
    this.timer = undefined;
    this.holdTimer = undefined;
  }
}
