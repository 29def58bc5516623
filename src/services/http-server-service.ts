// A node:http Server run as a service: it has no listening socket of its own, so each connection
// is handed to it as a 'connection' event. Shared by http-static and modules that export an
// http.Server or a request listener.

import type { Server } from 'node:http';
import { ConnectionSet } from './connection-set.js';
import type { Service, ServiceSocket } from './service.js';

/**
 * `afterClose`: what else the service must wait for once its connections are gone (a module's
 * own close()). Malformed requests are answered 400 as a listening server would, unless the
 * server already says what to do with them.
 */
export function httpServerService(name: string, server: Server, afterClose?: () => Promise<void>): Service {
  const connections = new ConnectionSet();
  if (server.listenerCount('clientError') === 0) {
    server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
  }
  return {
    name,
    onConnection(socket: ServiceSocket): void {
      if (!connections.add(socket)) return;
      server.emit('connection', socket);
    },
    async close(): Promise<void> {
      server.closeIdleConnections();
      await connections.closeAll();
      await afterClose?.();
    },
  };
}
