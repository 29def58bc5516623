// The injected sources every connection of one host shares: randomness, RFC 6528 ISNs, the RFC 7323
// timestamp clock and the host-wide RFC 5961 challenge-ACK budget. The core reads none of these
// itself, so a test (or the backup, which must reproduce the primary's ISNs) can supply its own.

import { randomBytes, randomInt, webcrypto } from 'node:crypto';
import { createIsnGenerator } from './tcp/isn.js';
import type { Micros, TcpEnv } from './tcp/api.js';
import type { FourTuple } from './wire/types.js';
import { createRateLimiter } from './rate-limit.js';

export interface TcpEnvOptions {
  /** RFC 6528 secret; primary and backup must share it. Random (16 bytes) when omitted. */
  isnKey?: Uint8Array;
  /** A uniformly random unsigned 32-bit integer; crypto-random when omitted. */
  random?: () => number;
  /** RFC 5961 section 7 budget, across every connection of the host. Default 1000. */
  challengeAckPerSecond?: number;
  /** Added to the millisecond clock for TSval; random when omitted so it reveals no uptime. */
  tsOffset?: number;
}

const US_PER_MS = 1000;

/** Crypto-random 32-bit values, drawn from a pool so each call is not a syscall. */
function cryptoRandom32(): () => number {
  const POOL = 1024;
  let pool = new Uint32Array(0);
  let next = 0;
  return () => {
    if (next >= pool.length) {
      pool = webcrypto.getRandomValues(new Uint32Array(POOL));
      next = 0;
    }
    return pool[next++]!;
  };
}

export function createTcpEnv(opts: TcpEnvOptions = {}): TcpEnv {
  const random = opts.random ?? cryptoRandom32();
  const key = opts.isnKey ?? new Uint8Array(randomBytes(16));
  const isn = createIsnGenerator(key);
  const tsOffset = (opts.tsOffset ?? randomInt(0, 2 ** 31)) >>> 0;
  // RFC 5961 section 7: "An implementation SHOULD include an ACK throttling mechanism to be
  // conservative." -- one budget shared by every connection, like Linux's
  // net.ipv4.tcp_challenge_ack_limit.
  const allowChallengeAck = createRateLimiter(opts.challengeAckPerSecond ?? 1000, random);
  return {
    random,
    isn: (tuple: FourTuple, now: Micros) => isn(tuple, now),
    // RFC 7323 section 5.4: the timestamp clock "must be at least approximately proportional to
    // real time", ticking between 1 ms and 1 s; milliseconds, as Linux uses.
    tsClock: (now: Micros) => (Math.floor(now / US_PER_MS) + tsOffset) >>> 0,
    allowChallengeAck,
  };
}
