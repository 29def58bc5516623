// The time a replication message takes from being handed to the channel to being acknowledged by
// the backup: the round trip every packet that waits for output commit pays (ARCHITECTURE.md 5.1),
// and the figure an operator needs to tell a slow backup from a slow network. The last SAMPLES
// messages are kept; percentiles are computed when asked (status), not per message.

const SAMPLES = 512;

/** Percentiles of the last messages' commit times, microseconds. */
export interface CommitLatency {
  p50Us: number;
  p99Us: number;
  maxUs: number;
  /** Messages the figures cover (at most the last 512). */
  samples: number;
}

export class CommitLatencySamples {
  private readonly ring = new Float64Array(SAMPLES);
  private count = 0;

  add(us: number): void {
    this.ring[this.count % SAMPLES] = us;
    this.count++;
  }

  /** Null before the first acknowledged message. */
  summary(): CommitLatency | null {
    const n = Math.min(this.count, SAMPLES);
    if (n === 0) return null;
    const sorted = this.ring.slice(0, n).sort();
    const at = (q: number): number => sorted[Math.min(n - 1, Math.floor(q * n))]!;
    return { p50Us: Math.round(at(0.5)), p99Us: Math.round(at(0.99)), maxUs: Math.round(sorted[n - 1]!), samples: n };
  }
}
