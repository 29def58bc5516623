// A deterministic TcpEnv for scripted runs: the same script gives the same ISNs, timestamps and
// random draws on every run, so a failure can be replayed exactly.

import type { Micros, TcpEnv } from '../stack/tcp/api.js';
import type { FourTuple } from '../stack/wire/types.js';

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

export function createVirtualEnv(seed = 0x5eed, challengeAckPerSecond = 1000): TcpEnv {
  let state = mix32(seed) || 1;
  let windowStart = -Infinity;
  let used = 0;
  return {
    random: () => {
      // xorshift32: cheap, seedable, good enough for jitter and port choice in a test.
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return state >>> 0;
    },
    // RFC 6528 shape: a per-tuple offset plus a clock ticking every 4 microseconds, so that a new
    // incarnation of a 4-tuple (e.g. a SYN in TIME-WAIT) gets a higher ISN than the old one.
    isn: (t: FourTuple, now: Micros) =>
      (mix32(seed ^ mix32(t.localAddr ^ mix32(t.remoteAddr ^ mix32((t.localPort << 16) | t.remotePort)))) +
        Math.floor(now / 4)) >>>
      0,
    tsClock: (now: Micros) => (Math.floor(now / 1000) + 1000) >>> 0,
    allowChallengeAck: (now: Micros) => {
      if (now - windowStart >= 1_000_000) {
        windowStart = now;
        used = 0;
      }
      if (used >= challengeAckPerSecond) return false;
      used++;
      return true;
    },
  };
}
