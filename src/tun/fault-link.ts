// A Link that wraps another and injects faults, separately for each direction: 'out' is what the
// user sends towards the wrapped link, 'in' is what the wrapped link delivers upwards. Settings can
// change at runtime (the CLI drives them). Every random choice comes from a seeded PRNG per
// direction, so the same seed and the same packet sequence give the same faults.
//
// Stages, in order: partition, loss, corruption, duplication, reordering, delay.

import { copyPacket, emptyLinkStats, type Link, type LinkStats, type ReceiveHandler } from './link.js';
import { createPrng, type Prng } from './prng.js';

export type FaultDirection = 'in' | 'out';

export interface FaultSettings {
  /** Percentage of packets dropped. */
  lossPct: number;
  /** Added one-way delay. */
  delayMs: number;
  /** Each delayed packet gets delayMs plus a uniform value in [-jitterMs, +jitterMs] (never < 0). */
  jitterMs: number;
  /** Percentage of packets sent twice. */
  duplicatePct: number;
  /** Percentage of packets held back behind the next `reorderDistance` packets. */
  reorderPct: number;
  reorderDistance: number;
  /** A held packet goes out after this long even if fewer packets followed it. */
  reorderMaxHoldMs: number;
  /** Percentage of packets with one random byte flipped. */
  corruptPct: number;
  /** Drop everything. */
  partition: boolean;
}

export interface FaultCounters {
  /** Packets that went through (duplicates included). */
  passed: number;
  lost: number;
  partitioned: number;
  corrupted: number;
  duplicated: number;
  reordered: number;
  delayed: number;
}

export function noFaults(): FaultSettings {
  return {
    lossPct: 0,
    delayMs: 0,
    jitterMs: 0,
    duplicatePct: 0,
    reorderPct: 0,
    reorderDistance: 1,
    reorderMaxHoldMs: 50,
    corruptPct: 0,
    partition: false,
  };
}

function zeroCounters(): FaultCounters {
  return { passed: 0, lost: 0, partitioned: 0, corrupted: 0, duplicated: 0, reordered: 0, delayed: 0 };
}

function validate(s: FaultSettings): void {
  for (const k of ['lossPct', 'duplicatePct', 'reorderPct', 'corruptPct'] as const) {
    const v = s[k];
    if (!(v >= 0 && v <= 100)) throw new RangeError(`${k} must be within 0..100, got ${v}`);
  }
  for (const k of ['delayMs', 'jitterMs', 'reorderMaxHoldMs'] as const) {
    const v = s[k];
    if (!(v >= 0 && Number.isFinite(v))) throw new RangeError(`${k} must be a finite number >= 0, got ${v}`);
  }
  if (!(Number.isInteger(s.reorderDistance) && s.reorderDistance >= 1)) {
    throw new RangeError(`reorderDistance must be an integer >= 1, got ${s.reorderDistance}`);
  }
}

interface Held {
  packet: Uint8Array;
  remaining: number;
}

interface Timed {
  at: number;
  packet: Uint8Array;
}

/** One direction's fault pipeline; `emit` receives what survives, in batches. */
class FaultPipe {
  settings: FaultSettings = noFaults();
  readonly counters: FaultCounters = zeroCounters();
  private held: Held[] = [];
  private holdTimer: NodeJS.Timeout | undefined;
  private delayed: Timed[] = [];
  private delayTimer: NodeJS.Timeout | undefined;
  private delayTimerAt = Infinity;

  constructor(
    private readonly rng: Prng,
    private readonly emit: (batch: Uint8Array[]) => void,
  ) {}

  /** Runs a batch through the stages; returns how many packets were dropped. */
  push(batch: readonly Uint8Array[]): number {
    const s = this.settings;
    const out: Uint8Array[] = [];
    let dropped = 0;
    for (const original of batch) {
      if (s.partition) {
        this.counters.partitioned++;
        dropped++;
        continue;
      }
      if (this.rng.chance(s.lossPct)) {
        this.counters.lost++;
        dropped++;
        continue;
      }
      let p = original;
      if (p.length > 0 && this.rng.chance(s.corruptPct)) {
        p = copyPacket(p); // never scribble on the caller's buffer
        p[this.rng.int(p.length)] ^= 1 + this.rng.int(255);
        this.counters.corrupted++;
      }
      const copies = this.rng.chance(s.duplicatePct) ? 2 : 1;
      if (copies === 2) this.counters.duplicated++;
      for (let i = 0; i < copies; i++) this.reorderStage(p, out);
    }
    if (out.length > 0) this.delayStage(out);
    return dropped;
  }

  private reorderStage(p: Uint8Array, out: Uint8Array[]): void {
    const s = this.settings;
    if (this.rng.chance(s.reorderPct)) {
      this.counters.reordered++;
      this.held.push({ packet: p, remaining: s.reorderDistance });
      this.armHoldTimer();
      return;
    }
    out.push(p);
    if (this.held.length === 0) return;
    // Each packet that passes brings every held packet one step closer to release.
    const still: Held[] = [];
    for (const h of this.held) {
      if (--h.remaining <= 0) out.push(h.packet);
      else still.push(h);
    }
    this.held = still;
    if (this.held.length === 0) this.clearHoldTimer();
  }

  private armHoldTimer(): void {
    if (this.holdTimer !== undefined) return;
    this.holdTimer = setTimeout(() => {
      this.holdTimer = undefined;
      const release = this.held.map((h) => h.packet);
      this.held = [];
      if (release.length > 0) this.delayStage(release);
    }, this.settings.reorderMaxHoldMs);
  }

  private clearHoldTimer(): void {
    if (this.holdTimer !== undefined) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
  }

  private delayStage(batch: Uint8Array[]): void {
    const s = this.settings;
    if (s.delayMs <= 0 && s.jitterMs <= 0 && this.delayed.length === 0) {
      this.counters.passed += batch.length;
      this.emit(batch);
      return;
    }
    const now = performance.now();
    for (const p of batch) {
      const jitter = s.jitterMs > 0 ? (this.rng.float() * 2 - 1) * s.jitterMs : 0;
      const at = now + Math.max(0, s.delayMs + jitter);
      // Insert keeping the queue sorted by release time; equal times keep arrival order.
      let i = this.delayed.length;
      while (i > 0 && this.delayed[i - 1]!.at > at) i--;
      this.delayed.splice(i, 0, { at, packet: p });
      this.counters.delayed++;
    }
    this.armDelayTimer();
  }

  private armDelayTimer(): void {
    const first = this.delayed[0];
    if (first === undefined) return;
    if (this.delayTimer !== undefined && this.delayTimerAt <= first.at) return;
    if (this.delayTimer !== undefined) clearTimeout(this.delayTimer);
    this.delayTimerAt = first.at;
    this.delayTimer = setTimeout(() => this.releaseDelayed(), Math.max(0, first.at - performance.now()));
  }

  private releaseDelayed(): void {
    this.delayTimer = undefined;
    this.delayTimerAt = Infinity;
    // A timer may fire a little early by performance.now()'s measure; a 1 ms slack avoids re-arming
    // a zero-length timer over and over.
    const now = performance.now() + 1;
    let n = 0;
    while (n < this.delayed.length && this.delayed[n]!.at <= now) n++;
    const release = this.delayed.splice(0, n).map((t) => t.packet);
    this.armDelayTimer();
    if (release.length > 0) {
      this.counters.passed += release.length;
      this.emit(release);
    }
  }

  /** Forgets held and delayed packets; returns how many were thrown away. */
  reset(): number {
    this.clearHoldTimer();
    if (this.delayTimer !== undefined) clearTimeout(this.delayTimer);
    this.delayTimer = undefined;
    this.delayTimerAt = Infinity;
    const n = this.held.length + this.delayed.length;
    this.held = [];
    this.delayed = [];
    return n;
  }

  /** Sends held-back packets now (used when reordering is switched off). */
  flushHeld(): void {
    this.clearHoldTimer();
    const release = this.held.map((h) => h.packet);
    this.held = [];
    if (release.length > 0) this.delayStage(release);
  }
}

export interface FaultLinkOptions {
  /** PRNG seed; the two directions use independent streams derived from it. Default 1. */
  seed?: number;
  in?: Partial<FaultSettings>;
  out?: Partial<FaultSettings>;
}

export class FaultLink implements Link {
  readonly stats: LinkStats = emptyLinkStats();
  readonly seed: number;
  private handler: ReceiveHandler | undefined;
  private readonly pipes: Record<FaultDirection, FaultPipe>;
  private closed = false;

  constructor(
    private readonly inner: Link,
    opts: FaultLinkOptions = {},
  ) {
    this.seed = (opts.seed ?? 1) >>> 0;
    this.pipes = {
      out: new FaultPipe(createPrng(this.seed), (batch) => this.deliverOut(batch)),
      in: new FaultPipe(createPrng(this.seed ^ 0x5bd1e995), (batch) => this.deliverIn(batch)),
    };
    if (opts.in) this.setFaults('in', opts.in);
    if (opts.out) this.setFaults('out', opts.out);
  }

  get mtu(): number {
    return this.inner.mtu;
  }

  /** Replaces one direction's settings; fields left out take their no-fault values. */
  setFaults(direction: FaultDirection, settings: Partial<FaultSettings>): void {
    const next = { ...noFaults(), ...settings };
    validate(next);
    const pipe = this.pipes[direction];
    pipe.settings = next;
    if (next.reorderPct === 0) pipe.flushHeld();
  }

  clearFaults(): void {
    this.setFaults('in', {});
    this.setFaults('out', {});
  }

  faults(): Record<FaultDirection, FaultSettings> {
    return { in: { ...this.pipes.in.settings }, out: { ...this.pipes.out.settings } };
  }

  counters(): Record<FaultDirection, FaultCounters> {
    return { in: { ...this.pipes.in.counters }, out: { ...this.pipes.out.counters } };
  }

  send(packets: readonly Uint8Array[]): void {
    if (this.closed) {
      this.stats.txDropped += packets.length;
      return;
    }
    this.stats.txDropped += this.pipes.out.push(packets);
  }

  onReceive(handler: ReceiveHandler): void {
    const first = this.handler === undefined;
    this.handler = handler;
    // Subscribe only now, so the wrapped link keeps its own behaviour before anyone listens (the
    // memory link holds packets, the tun device leaves them in the kernel).
    if (first && !this.closed) {
      this.inner.onReceive((batch) => {
        if (this.closed) return;
        this.stats.rxDropped += this.pipes.in.push(batch);
      });
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stats.txDropped += this.pipes.out.reset();
    this.stats.rxDropped += this.pipes.in.reset();
    this.handler = undefined;
    this.inner.close();
  }

  private deliverOut(batch: Uint8Array[]): void {
    if (this.closed) return;
    this.stats.txPackets += batch.length;
    for (const p of batch) this.stats.txBytes += p.length;
    this.inner.send(batch);
  }

  private deliverIn(batch: Uint8Array[]): void {
    const handler = this.handler;
    if (this.closed || handler === undefined) {
      this.stats.rxDropped += batch.length;
      return;
    }
    this.stats.rxBatches++;
    this.stats.rxPackets += batch.length;
    for (const p of batch) this.stats.rxBytes += p.length;
    handler(batch);
  }
}

const SPEC_KEYS: Record<string, keyof FaultSettings> = {
  loss: 'lossPct',
  delay: 'delayMs',
  jitter: 'jitterMs',
  dup: 'duplicatePct',
  duplicate: 'duplicatePct',
  reorder: 'reorderPct',
  'reorder-distance': 'reorderDistance',
  'reorder-hold': 'reorderMaxHoldMs',
  corrupt: 'corruptPct',
  partition: 'partition',
};

/**
 * Parses the command-line form `loss=5,delay=20,jitter=5,dup=1,reorder=2,reorder-distance=3,
 * corrupt=0.1,partition` (percentages and milliseconds; `partition` alone means on). The empty
 * string means no faults. Throws RangeError naming the bad part.
 */
export function parseFaultSpec(spec: string): Partial<FaultSettings> {
  const out: Partial<FaultSettings> = {};
  for (const part of spec.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const [rawKey, rawValue] = part.split('=', 2) as [string, string | undefined];
    const key = SPEC_KEYS[rawKey.trim()];
    if (key === undefined) throw new RangeError(`unknown fault "${rawKey}" (known: ${Object.keys(SPEC_KEYS).join(', ')})`);
    if (key === 'partition') {
      const v = rawValue?.trim();
      if (v !== undefined && !['on', 'off', 'true', 'false', '1', '0'].includes(v)) throw new RangeError(`partition takes on/off, got "${v}"`);
      out.partition = v === undefined || v === 'on' || v === 'true' || v === '1';
      continue;
    }
    const n = Number(rawValue);
    if (rawValue === undefined || rawValue.trim() === '' || !Number.isFinite(n)) throw new RangeError(`fault "${rawKey}" needs a number, got "${rawValue ?? ''}"`);
    out[key] = n;
  }
  validate({ ...noFaults(), ...out });
  return out;
}

/** The inverse of parseFaultSpec for display: only settings that differ from no faults. */
export function formatFaultSpec(s: FaultSettings): string {
  const base = noFaults();
  const parts: string[] = [];
  for (const [name, key] of Object.entries(SPEC_KEYS)) {
    if (name === 'duplicate') continue; // alias of dup
    if (s[key] === base[key]) continue;
    parts.push(key === 'partition' ? 'partition' : `${name}=${s[key]}`);
  }
  return parts.join(',');
}
