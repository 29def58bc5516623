// Two connections over a simulated link with virtual time: delay, seeded loss and reordering.
// Used to check byte-exact delivery and recovery across the whole core.

import type { TcpConfig, TcpEnv } from '../../../src/stack/tcp/api.js';
import { Connection, createActiveConnection, createPassiveConnection } from '../../../src/stack/tcp/connection.js';
import type { FourTuple, TcpSegment } from '../../../src/stack/wire/types.js';
import { TCP_ACK, TCP_SYN } from '../../../src/stack/wire/types.js';

export interface LinkModel {
  delayUs: number;
  /** Returns true to drop the n-th segment sent in this direction. */
  drop?: (n: number, seg: TcpSegment) => boolean;
  /** Extra delay for the n-th segment (reordering). */
  jitter?: (n: number) => number;
  /** Returns true to deliver the n-th segment twice. */
  duplicate?: (n: number) => boolean;
}

interface InFlight {
  at: number;
  order: number;
  to: 'a' | 'b';
  seg: TcpSegment;
}

export function mulberry32(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

export function pairEnv(iss: number): TcpEnv {
  return { random: () => 1, isn: () => iss >>> 0, tsClock: (now) => Math.floor(now / 1000), allowChallengeAck: () => true };
}

export class Pair {
  a: Connection;
  b: Connection | null = null;
  now = 0;
  private q: InFlight[] = [];
  private order = 0;
  private sent = { a: 0, b: 0 };
  /** Bytes each side has read, in order. */
  readA: Uint8Array[] = [];
  readB: Uint8Array[] = [];
  segmentsSent = { a: 0, b: 0 };

  constructor(
    readonly cfgA: TcpConfig,
    readonly cfgB: TcpConfig,
    readonly ab: LinkModel,
    readonly ba: LinkModel,
    issA = 1000,
    readonly issB = 2000,
  ) {
    const tupleA: FourTuple = { localAddr: 1, localPort: 40000, remoteAddr: 2, remotePort: 80 };
    this.a = createActiveConnection(0, tupleA, cfgA, pairEnv(issA));
    this.collect();
  }

  private collect(): void {
    for (const s of this.a.takeOutput()) this.send('b', s);
    if (this.b) for (const s of this.b.takeOutput()) this.send('a', s);
  }

  private send(to: 'a' | 'b', seg: TcpSegment): void {
    const from = to === 'b' ? 'a' : 'b';
    const model = to === 'b' ? this.ab : this.ba;
    const n = this.sent[from]++;
    this.segmentsSent[from]++;
    if (model.drop?.(n, seg)) return;
    const at = this.now + model.delayUs + (model.jitter?.(n) ?? 0);
    this.q.push({ at, order: this.order++, to, seg });
    if (model.duplicate?.(n)) this.q.push({ at: at + (model.jitter?.(n) ?? 0) + 1, order: this.order++, to, seg });
  }

  private deliver(f: InFlight): void {
    if (f.to === 'b') {
      if (!this.b) {
        if ((f.seg.flags & (TCP_SYN | TCP_ACK)) !== TCP_SYN) return;
        const tupleB: FourTuple = { localAddr: 2, localPort: 80, remoteAddr: 1, remotePort: 40000 };
        this.b = createPassiveConnection(this.now, tupleB, f.seg, this.cfgB, pairEnv(this.issB), this.issB);
      } else this.b.onSegment(this.now, f.seg);
    } else this.a.onSegment(this.now, f.seg);
  }

  /** Runs until `until` (virtual µs) or until nothing is pending; `step` runs after every event. */
  run(until: number, step?: () => void): void {
    for (let guard = 0; guard < 5_000_000; guard++) {
      this.collect();
      step?.();
      this.collect();
      let next = Infinity;
      let idx = -1;
      for (let i = 0; i < this.q.length; i++) {
        const f = this.q[i]!;
        if (f.at < next || (f.at === next && f.order < this.q[idx]!.order)) {
          next = f.at;
          idx = i;
        }
      }
      const da = this.a.nextDeadline();
      const db = this.b?.nextDeadline() ?? null;
      const t = Math.min(next, da ?? Infinity, db ?? Infinity);
      if (t === Infinity || t > until) {
        this.now = Math.max(this.now, Math.min(until, t === Infinity ? this.now : until));
        return;
      }
      this.now = Math.max(this.now, t);
      if (next === t) {
        const f = this.q[idx]!;
        this.q.splice(idx, 1);
        this.deliver(f);
      } else if (da !== null && da <= this.now) this.a.onTimer(this.now);
      else if (db !== null && db <= this.now) this.b!.onTimer(this.now);
    }
    throw new Error('simulation did not settle');
  }

  /** Drains both read buffers into readA/readB. */
  drain(): void {
    for (;;) {
      const x = this.a.read(this.now);
      if (!x) break;
      this.readA.push(x.slice());
    }
    if (!this.b) return;
    for (;;) {
      const x = this.b.read(this.now);
      if (!x) break;
      this.readB.push(x.slice());
    }
  }
}

export function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function pattern(n: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (r() * 256) | 0;
  return b;
}

/** Writes `data` from `from` as space allows, draining the receiver each step. */
export function streamer(p: Pair, from: 'a' | 'b', data: Uint8Array, closeAfter = true): () => void {
  let off = 0;
  let closed = false;
  return () => {
    const c = from === 'a' ? p.a : p.b;
    if (!c) return;
    if (off < data.length && (c.state === 'ESTABLISHED' || c.state === 'CLOSE-WAIT')) {
      const n = c.write(p.now, data.subarray(off, Math.min(data.length, off + 65536)));
      off += n;
    }
    if (off >= data.length && closeAfter && !closed && (c.state === 'ESTABLISHED' || c.state === 'CLOSE-WAIT')) {
      closed = true;
      c.shutdown(p.now);
    }
    p.drain();
  };
}

/** Compact comparison: "equal" or where the first difference is (vitest's diff of MBs is useless). */
export function sameBytes(got: Uint8Array, want: Uint8Array): string {
  if (got.length !== want.length) return `length ${got.length} != ${want.length}`;
  for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) return `differs at ${i}`;
  return 'equal';
}
