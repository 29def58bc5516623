// Serves a service on our own stack for the service suites: a server stack and a client stack
// joined by an in-memory link, so every byte, half-close and reset crosses our TCP both ways.

import { once } from 'node:events';
import type { Service, ServiceSocket } from '../../../src/services/service.js';
import type { Socket } from '../../../src/stack/socket.js';
import { createStack } from '../../../src/stack/stack.js';
import { createMemoryLinkPair } from '../../../src/tun/memory-link.js';

const SERVER = '198.18.0.100';
const CLIENT = '198.18.0.1';

export interface OurStackServer {
  connect(): Promise<Socket>;
  close(): Promise<void>;
}

export async function serveOnOurStack(service: Service): Promise<OurStackServer> {
  const [a, b] = createMemoryLinkPair(1500);
  const serverStack = createStack({ link: a, addresses: [SERVER] });
  const clientStack = createStack({ link: b, addresses: [CLIENT] });
  const server = serverStack.createServer((s) => service.onConnection(s as ServiceSocket));
  server.listen(80, SERVER);
  await once(server, 'listening');
  return {
    async connect() {
      const s = clientStack.connect({ host: SERVER, port: 80 });
      await once(s, 'connect');
      return s;
    },
    async close() {
      await service.close();
      await Promise.all([clientStack.close(), serverStack.close()]);
    },
  };
}
