// Failure detection on the backup (ARCHITECTURE.md 5.4): the primary process proves it is alive
// by heartbeats on more than one path (the replication link, and the client-facing network), and
// it is declared dead only when every path has been silent for `deadAfterMs`. A cut replication
// link alone therefore makes the primary "suspect", never dead: two primaries must not answer for
// the VIP together. Pure logic over an injected clock; the caller polls `check()` (or `start()`).

export type Liveness = 'alive' | 'suspect' | 'dead';

export interface FailureDetectorOptions {
  /** The paths heartbeats arrive on, e.g. ['replication', 'lan']. */
  paths: readonly string[];
  /** Silence on every path for this long declares the primary dead. Default 300 ms. */
  deadAfterMs?: number;
  /** Milliseconds on a monotonic clock. */
  now: () => number;
}

export interface PathSilence {
  path: string;
  /** Milliseconds since the last heartbeat on this path (since start when none came). */
  silentMs: number;
}

export class FailureDetector {
  private readonly deadAfter: number;
  private readonly last = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private declared = false;

  constructor(private readonly opts: FailureDetectorOptions) {
    if (opts.paths.length === 0) throw new Error('a failure detector needs at least one path');
    this.deadAfter = opts.deadAfterMs ?? 300;
    // Every path starts as just heard: a backup that has only begun gives the primary a full period.
    const t = opts.now();
    for (const p of opts.paths) this.last.set(p, t);
  }

  /** A heartbeat (or any authenticated message) from the primary arrived on `path`. */
  heard(path: string): void {
    if (!this.last.has(path)) throw new Error(`unknown heartbeat path ${path}`);
    this.last.set(path, this.opts.now());
  }

  silences(): PathSilence[] {
    const t = this.opts.now();
    return this.opts.paths.map((path) => ({ path, silentMs: t - (this.last.get(path) as number) }));
  }

  check(): Liveness {
    const s = this.silences();
    const silent = s.filter((x) => x.silentMs > this.deadAfter).length;
    if (silent === s.length) return 'dead';
    return silent > 0 ? 'suspect' : 'alive';
  }

  /**
   * Polls every `intervalMs`; calls onDead once when the primary is declared dead, and onSuspect
   * whenever some path (but not all) is silent.
   */
  start(intervalMs: number, onDead: (s: PathSilence[]) => void, onSuspect?: (s: PathSilence[]) => void): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => {
      const l = this.check();
      if (l === 'dead' && !this.declared) {
        this.declared = true;
        this.stop();
        onDead(this.silences());
      } else if (l === 'suspect') onSuspect?.(this.silences());
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
