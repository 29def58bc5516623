// echo: every byte received is sent back; the reply ends when the client's stream ends.

import { ConnectionSet } from './connection-set.js';
import type { Service, ServiceSocket } from './service.js';

export function createEchoService(): Service {
  const connections = new ConnectionSet();
  return {
    name: 'echo',
    deterministic: true,
    onConnection(socket: ServiceSocket): void {
      if (!connections.add(socket)) return;
      // Like pipe(): reading pauses while the send side is full, our side ends on 'end'. Done by
      // hand because after each write every byte consumed has been written back, which is a
      // service boundary (5.5): a replica fed from here on echoes from here on.
      socket.on('data', (d: Buffer) => {
        if (!socket.write(d)) socket.pause();
        socket.markBoundary?.();
      });
      socket.on('drain', () => socket.resume());
      socket.on('end', () => socket.end());
    },
    close: () => connections.closeAll(),
  };
}
