// How long this process's event loop was blocked, sampled once a second and reported when it
// exceeds a threshold: a node whose loop stalls past the peer's dead-after is taken for dead by
// it (a rejoining backup replaying many snapshots, a primary snapshotting every connection at
// attach). The report is a debug line, so the measurement costs nothing unless asked for.

import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface LoopDelayReport {
  /** The longest delay in the last window, ms. */
  maxMs: number;
  p99Ms: number;
}

export class LoopDelayWatch {
  private readonly h: IntervalHistogram;
  private readonly timer: NodeJS.Timeout;

  constructor(thresholdMs: number, report: (r: LoopDelayReport) => void, windowMs = 1000) {
    this.h = monitorEventLoopDelay({ resolution: 10 });
    this.h.enable();
    this.timer = setInterval(() => {
      const maxMs = this.h.max / 1e6;
      if (maxMs >= thresholdMs) report({ maxMs: Math.round(maxMs), p99Ms: Math.round(this.h.percentile(99) / 1e6) });
      this.h.reset();
    }, windowMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.h.disable();
  }
}
