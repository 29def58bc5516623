// discard: reads and drops everything; closes its side once the client has finished sending.

import { ConnectionSet } from './connection-set.js';
import type { Service, ServiceSocket } from './service.js';

export function createDiscardService(): Service {
  const connections = new ConnectionSet();
  return {
    name: 'discard',
    deterministic: true,
    onConnection(socket: ServiceSocket): void {
      if (!connections.add(socket)) return;
      socket.on('end', () => socket.end());
      // Nothing is kept of a chunk once dropped: every point is a boundary (5.5).
      socket.on('data', () => socket.markBoundary?.());
    },
    close: () => connections.closeAll(),
  };
}
