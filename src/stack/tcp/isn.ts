// RFC 6528 initial sequence numbers. Section 3: "ISN = M + F(localip, localport, remoteip,
// remoteport, secretkey) where M is the 4 microsecond timer, and F() is a pseudorandom function
// (PRF) of the connection-id. F() MUST NOT be computable from the outside". F here is HMAC-SHA-256
// keyed with the secret, truncated to 32 bits. Primary and backup share the key, so for the same
// tuple and the same clock value they produce the same ISN (replication still carries the ISS in
// its `open` record, so differing clocks between nodes do not matter for correctness).

import { createHmac } from 'node:crypto';
import type { Micros } from './api.js';
import type { SeqNum } from '../wire/seq.js';
import type { FourTuple } from '../wire/types.js';

const TWO_32 = 2 ** 32;

/** The connection-id as bytes: local address, local port, remote address, remote port. */
export function encodeTuple(tuple: FourTuple): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(tuple.localAddr >>> 0, 0);
  b.writeUInt16BE(tuple.localPort & 0xffff, 4);
  b.writeUInt32BE(tuple.remoteAddr >>> 0, 6);
  b.writeUInt16BE(tuple.remotePort & 0xffff, 10);
  return b;
}

/**
 * RFC 6528 section 3: "M is the 4 microsecond timer". Reduced modulo 2^32 before adding so that
 * large clock values (microseconds since the Unix epoch) keep full precision.
 */
export function isnClock(now: Micros): number {
  return Math.floor(now / 4) % TWO_32;
}

export function createIsnGenerator(key: Uint8Array): (tuple: FourTuple, now: Micros) => SeqNum {
  // Copied so that a caller reusing its buffer cannot change the secret under us.
  const secret = Buffer.from(key);
  return (tuple, now) => {
    const f = createHmac('sha256', secret).update(encodeTuple(tuple)).digest().readUInt32BE(0);
    return (isnClock(now) + f) >>> 0;
  };
}
