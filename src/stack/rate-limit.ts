// A fixed-window rate limit on the caller's clock, for the budgets RFCs ask hosts to keep: RFC 5961
// challenge ACKs and the ICMP errors we originate (RFC 1812 4.3.2.8 asks routers to limit them;
// hosts have the same reason to).

import type { Micros } from './tcp/api.js';

const WINDOW_US = 1_000_000;

/**
 * Allows at most `perSecond` calls in each one-second window; returns false beyond it.
 *
 * With `random`, each window's budget is drawn from [perSecond/2, perSecond*1.5), as Linux does
 * for challenge ACKs since CVE-2016-5696: an exact, host-wide budget lets an off-path attacker
 * count the challenge ACKs another connection provoked, and so learn its sequence numbers.
 */
export function createRateLimiter(perSecond: number, random?: () => number): (now: Micros) => boolean {
  let windowStart = -Infinity;
  let budget = 0;
  const half = Math.ceil(perSecond / 2);
  return (now) => {
    if (now - windowStart >= WINDOW_US) {
      windowStart = now;
      budget = random && perSecond > 0 ? half + (random() % perSecond) : perSecond;
    }
    if (budget <= 0) return false;
    budget--;
    return true;
  };
}
