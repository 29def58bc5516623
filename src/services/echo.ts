// echo: every byte received is sent back; the reply ends when the client's stream ends.

import { ConnectionSet } from './connection-set.js';
import type { Service, ServiceSocket } from './service.js';

export function createEchoService(): Service {
  const connections = new ConnectionSet();
  return {
    name: 'echo',
    onConnection(socket: ServiceSocket): void {
      if (!connections.add(socket)) return;
      // pipe() pauses reading while the socket's send side is full, and ends our side on 'end'.
      socket.pipe(socket);
    },
    close: () => connections.closeAll(),
  };
}
