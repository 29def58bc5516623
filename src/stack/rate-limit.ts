// A fixed-window rate limit on the caller's clock, for the budgets RFCs ask hosts to keep: RFC 5961
// challenge ACKs and the ICMP errors we originate (RFC 1812 4.3.2.8 asks routers to limit them;
// hosts have the same reason to).

import type { Micros } from './tcp/api.js';

const WINDOW_US = 1_000_000;

/** Allows at most `perSecond` calls in each one-second window; returns false beyond it. */
export function createRateLimiter(perSecond: number): (now: Micros) => boolean {
  let windowStart = -Infinity;
  let used = 0;
  return (now) => {
    if (now - windowStart >= WINDOW_US) {
      windowStart = now;
      used = 0;
    }
    if (used >= perSecond) return false;
    used++;
    return true;
  };
}
