// What the simulations over in-memory links share: TCP timers scaled to the simulated wire, and
// reading a socket to its end.

import type { Socket } from '../../src/stack/socket.js';
import type { TcpConfig } from '../../src/stack/tcp/api.js';

/** Short timers: the wire's round trip is a macrotask, so Linux's 200 ms RTO floor would only add idle time. */
export const FAST_TCP: Partial<TcpConfig> = {
  initialRtoUs: 50_000,
  minRtoUs: 10_000,
  maxRtoUs: 500_000,
  delayedAckUs: 5_000,
  timeWaitUs: 50_000,
  synRetries: 20,
  maxRetransmits: 40,
};

/** Reads everything until the peer's FIN. */
export function readAll(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  return new Promise((resolve, reject) => {
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
  });
}
