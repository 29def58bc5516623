// A Link that wraps another and injects faults, separately for each direction: 'out' is what the
// user sends towards the wrapped link, 'in' is what the wrapped link delivers upwards. Settings can
// change at runtime (the CLI drives them). Every random choice comes from a seeded PRNG per
// direction, so the same seed and the same packet sequence give the same faults.
//
// Stages, in order: partition, loss, corruption, duplication, reordering, delay.
//
// Offloads pass through: the wrapper shows the wrapped link's `offload`, forwards the send option
// `tcpChecksumPartial` and the receive option `offload`, and hands ReceiveInfo's per-packet
// "checksum valid" flags up. While a direction has no faults set and nothing held back, batches
// and their options go straight through, at no cost per packet (the CLI node always runs behind
// this wrapper, so its TSO and checksum offloads depend on that). Once faults are on, each packet
// carries its flag (partial checksum out, checksum valid in) through the stages, so duplicates,
// reordered and delayed packets keep theirs, and a batch whose packets end up with different flags
// is handed on in runs of equal flags. Corruption is the exception, because a flag would hide it:
// - in: a corrupted packet loses "checksum valid", so the host verifies it and drops it (one whose
//   field held only a partial checksum fails that check too: it is dropped either way);
// - out: a packet whose TCP checksum is partial gets its full checksum first, then the flipped
//   byte, and is sent without `tcpChecksumPartial`; otherwise the kernel would checksum the
//   corrupted bytes (or the tun would merge the packet into a super-packet with a fresh checksum
//   field) and the client would accept them.
//
// Known coarseness: what the wrapped link hands up as one packet is one packet here, including the
// TCP super-segments (up to 64 KiB, dozens of MTU-sized segments) a tun with receive offload
// delivers. Loss or corruption of such a packet takes out the whole run of segments at once, a
// burst a real network dropping single frames would rarely produce; percentages are per packet
// handed up, not per wire segment. Outgoing packets are not affected: they reach this wrapper as
// single segments and are merged only by the tun below it.

import { copyPacket, emptyLinkStats, type Link, type LinkOffload, type LinkStats, type ReceiveHandler, type ReceiveInfo, type ReceiveOptions, type SendOptions } from './link.js';
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

/** Throws RangeError for a setting out of range (shared with the replication link's message faults). */
export function validateFaultSettings(s: FaultSettings): void {
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

/**
 * A packet in the pipeline with its link flag: for 'out', its TCP checksum is partial (it came
 * with `tcpChecksumPartial`); for 'in', the wrapped link vouched for its checksum.
 */
interface Flagged {
  packet: Uint8Array;
  flag: boolean;
}

interface Held extends Flagged {
  remaining: number;
}

interface Timed extends Flagged {
  at: number;
}

/** Whether settings leave every packet alone, so a pipe holding nothing may be bypassed. */
function leavesPacketsAlone(s: FaultSettings): boolean {
  return !s.partition && s.lossPct === 0 && s.corruptPct === 0 && s.duplicatePct === 0 && s.reorderPct === 0 && s.delayMs === 0 && s.jitterMs === 0;
}

/** One direction's fault pipeline; `emit` receives what survives, in batches. */
class FaultPipe {
  private current: FaultSettings = noFaults();
  private passive = true;
  readonly counters: FaultCounters = zeroCounters();
  private held: Held[] = [];
  private holdTimer: NodeJS.Timeout | undefined;
  private delayed: Timed[] = [];
  private delayTimer: NodeJS.Timeout | undefined;
  private delayTimerAt = Infinity;

  constructor(
    private readonly direction: FaultDirection,
    private readonly rng: Prng,
    private readonly emit: (batch: Flagged[]) => void,
  ) {}

  get settings(): FaultSettings {
    return this.current;
  }

  set settings(s: FaultSettings) {
    this.current = s;
    this.passive = leavesPacketsAlone(s);
  }

  /** No faults set and nothing held or delayed: a batch may bypass the stages unchanged. */
  get idle(): boolean {
    return this.passive && this.held.length === 0 && this.delayed.length === 0;
  }

  /**
   * Runs a batch through the stages; returns how many packets were dropped. `flags[i] !== 0` marks
   * packets[i] (see Flagged); `allFlagged` marks every packet (a send with tcpChecksumPartial).
   */
  push(batch: readonly Uint8Array[], flags: Uint8Array | undefined, allFlagged = false): number {
    const s = this.settings;
    const out: Flagged[] = [];
    let dropped = 0;
    for (let k = 0; k < batch.length; k++) {
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
      let p = batch[k]!;
      let flag = allFlagged || (flags !== undefined && flags[k] !== 0);
      if (p.length > 0 && this.rng.chance(s.corruptPct)) {
        p = copyPacket(p); // never scribble on the caller's buffer
        // A corrupted packet must never travel with a flag that vouches for its checksum, nor
        // leave its checksum to the kernel, which would compute it over the flipped byte.
        if (flag && this.direction === 'out') completeTcpChecksum(p);
        flag = false;
        p[this.rng.int(p.length)] ^= 1 + this.rng.int(255);
        this.counters.corrupted++;
      }
      const copies = this.rng.chance(s.duplicatePct) ? 2 : 1;
      if (copies === 2) this.counters.duplicated++;
      for (let i = 0; i < copies; i++) this.reorderStage({ packet: p, flag }, out);
    }
    if (out.length > 0) this.delayStage(out);
    return dropped;
  }

  private reorderStage(f: Flagged, out: Flagged[]): void {
    const s = this.settings;
    if (this.rng.chance(s.reorderPct)) {
      this.counters.reordered++;
      this.held.push({ packet: f.packet, flag: f.flag, remaining: s.reorderDistance });
      this.armHoldTimer();
      return;
    }
    out.push(f);
    if (this.held.length === 0) return;
    // Each packet that passes brings every held packet one step closer to release.
    const still: Held[] = [];
    for (const h of this.held) {
      if (--h.remaining <= 0) out.push(h);
      else still.push(h);
    }
    this.held = still;
    if (this.held.length === 0) this.clearHoldTimer();
  }

  private armHoldTimer(): void {
    if (this.holdTimer !== undefined) return;
    this.holdTimer = setTimeout(() => {
      this.holdTimer = undefined;
      const release: Flagged[] = this.held;
      this.held = [];
      if (release.length > 0) this.delayStage(release);
    }, this.settings.reorderMaxHoldMs);
  }

  private clearHoldTimer(): void {
    if (this.holdTimer !== undefined) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
  }

  private delayStage(batch: Flagged[]): void {
    const s = this.settings;
    if (s.delayMs <= 0 && s.jitterMs <= 0 && this.delayed.length === 0) {
      this.counters.passed += batch.length;
      this.emit(batch);
      return;
    }
    const now = performance.now();
    for (const f of batch) {
      const jitter = s.jitterMs > 0 ? (this.rng.float() * 2 - 1) * s.jitterMs : 0;
      const at = now + Math.max(0, s.delayMs + jitter);
      // Insert keeping the queue sorted by release time; equal times keep arrival order.
      let i = this.delayed.length;
      while (i > 0 && this.delayed[i - 1]!.at > at) i--;
      this.delayed.splice(i, 0, { at, packet: f.packet, flag: f.flag });
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
    const release: Flagged[] = this.delayed.splice(0, n);
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
    const release: Flagged[] = this.held;
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
  /** The receive options the wrapped link was subscribed with; undefined before the first. */
  private subscribedOffload: boolean | undefined;
  private readonly pipes: Record<FaultDirection, FaultPipe>;
  private closed = false;

  constructor(
    private readonly inner: Link,
    opts: FaultLinkOptions = {},
  ) {
    this.seed = (opts.seed ?? 1) >>> 0;
    this.pipes = {
      out: new FaultPipe('out', createPrng(this.seed), (batch) => this.deliverOutFlagged(batch)),
      in: new FaultPipe('in', createPrng(this.seed ^ 0x5bd1e995), (batch) => this.deliverInFlagged(batch)),
    };
    if (opts.in) this.setFaults('in', opts.in);
    if (opts.out) this.setFaults('out', opts.out);
  }

  get mtu(): number {
    return this.inner.mtu;
  }

  /** The wrapped link's transmit offloads: send options are passed on to it. */
  get offload(): LinkOffload | undefined {
    return this.inner.offload;
  }

  /** Replaces one direction's settings; fields left out take their no-fault values. */
  setFaults(direction: FaultDirection, settings: Partial<FaultSettings>): void {
    const next = { ...noFaults(), ...settings };
    validateFaultSettings(next);
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

  send(packets: readonly Uint8Array[], opts?: SendOptions): void {
    if (this.closed) {
      this.stats.txDropped += packets.length;
      return;
    }
    const pipe = this.pipes.out;
    if (pipe.idle) {
      pipe.counters.passed += packets.length;
      this.deliverOut(packets, opts);
      return;
    }
    this.stats.txDropped += pipe.push(packets, undefined, opts?.tcpChecksumPartial === true);
  }

  onReceive(handler: ReceiveHandler, opts?: ReceiveOptions): void {
    this.handler = handler;
    const offload = opts?.offload === true;
    // Subscribe only once someone listens, so the wrapped link keeps its own behaviour until then
    // (the memory link holds packets, the tun device leaves them in the kernel); again only when
    // the handler changes what it takes, since that switches the tun's receive offloads.
    if (this.closed || this.subscribedOffload === offload) return;
    this.subscribedOffload = offload;
    this.inner.onReceive((batch, info) => this.onInnerBatch(batch, info), offload ? { offload: true } : undefined);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stats.txDropped += this.pipes.out.reset();
    this.stats.rxDropped += this.pipes.in.reset();
    this.handler = undefined;
    this.inner.close();
  }

  private onInnerBatch(batch: Uint8Array[], info: ReceiveInfo | undefined): void {
    if (this.closed) return;
    const pipe = this.pipes.in;
    if (pipe.idle) {
      pipe.counters.passed += batch.length;
      this.deliverIn(batch, info);
      return;
    }
    this.stats.rxDropped += pipe.push(batch, info?.checksumValid);
  }

  private deliverOut(batch: readonly Uint8Array[], opts: SendOptions | undefined): void {
    if (this.closed) return;
    this.stats.txPackets += batch.length;
    for (const p of batch) this.stats.txBytes += p.length;
    this.inner.send(batch, opts);
  }

  /** Sends what left the pipeline, one send() per run of packets with the same checksum form. */
  private deliverOutFlagged(batch: Flagged[]): void {
    const partial: SendOptions = { tcpChecksumPartial: true };
    let start = 0;
    while (start < batch.length) {
      const flag = batch[start]!.flag;
      let end = start + 1;
      while (end < batch.length && batch[end]!.flag === flag) end++;
      this.deliverOut(
        batch.slice(start, end).map((f) => f.packet),
        flag ? partial : undefined,
      );
      start = end;
    }
  }

  private deliverInFlagged(batch: Flagged[]): void {
    const packets = batch.map((f) => f.packet);
    if (!batch.some((f) => f.flag)) {
      this.deliverIn(packets, undefined);
      return;
    }
    const checksumValid = new Uint8Array(batch.length);
    batch.forEach((f, i) => (checksumValid[i] = f.flag ? 1 : 0));
    this.deliverIn(packets, { checksumValid });
  }

  private deliverIn(batch: Uint8Array[], info: ReceiveInfo | undefined): void {
    const handler = this.handler;
    if (this.closed || handler === undefined) {
      this.stats.rxDropped += batch.length;
      return;
    }
    this.stats.rxBatches++;
    this.stats.rxPackets += batch.length;
    for (const p of batch) this.stats.rxBytes += p.length;
    if (info === undefined) handler(batch);
    else handler(batch, info);
  }
}

/**
 * Turns the partial TCP checksum of an unfragmented TCP/IPv4 packet (its field holding the folded
 * pseudo-header sum, SendOptions.tcpChecksumPartial) into the full one, as the kernel would
 * (skb_checksum_help: the sum from the TCP header to the end, field included, folded and
 * complemented). Other packets carry no partial checksum and are left alone.
 */
export function completeTcpChecksum(p: Uint8Array): void {
  const ihl = (p[0]! & 0x0f) * 4;
  if (p.length < 20 || p[0]! >> 4 !== 4 || ihl < 20 || p[9] !== 6) return;
  if ((p[6]! & 0x3f) !== 0 || p[7] !== 0 || p.length < ihl + 20) return;
  let sum = 0;
  const end = p.length - ((p.length - ihl) & 1);
  for (let i = ihl; i < end; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
  if (end < p.length) sum += p[end]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const ck = ~sum & 0xffff;
  p[ihl + 16] = ck >>> 8;
  p[ihl + 17] = ck & 0xff;
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
  validateFaultSettings({ ...noFaults(), ...out });
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
