// The proxy suite again with the client side on our own stack: a client stack and a server stack
// joined by an in-memory link, the proxy on the server stack, and a Linux TCP backend on loopback.
// Half-close and resets cross our TCP implementation here, not the kernel's.

import { once } from 'node:events';
import type { ServiceSocket } from '../../../src/services/service.js';
import { createStack } from '../../../src/stack/stack.js';
import { createMemoryLinkPair } from '../../../src/tun/memory-link.js';
import { proxySuite } from './proxy-suite.js';

const SERVER = '198.18.0.100';
const CLIENT = '198.18.0.1';

proxySuite('proxy over our stack on a memory link', {
  async start(service) {
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
  },
});
