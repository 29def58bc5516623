// The module suite again over our own stack: a client stack and a server stack joined by an
// in-memory link, so the Express-style app and the connection handler run on our sockets.

import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { createStack } from '../../../src/stack/stack.js';
import { createMemoryLinkPair } from '../../../src/tun/memory-link.js';
import { moduleSuite } from './module-suite.js';

const SERVER = '198.18.0.100';
const CLIENT = '198.18.0.1';

moduleSuite('module over our stack on a memory link', {
  async start(service) {
    const [a, b] = createMemoryLinkPair(1500);
    const serverStack = createStack({ link: a, addresses: [SERVER] });
    const clientStack = createStack({ link: b, addresses: [CLIENT] });
    const server = serverStack.createServer((s) => service.onConnection(s));
    server.listen(80, SERVER);
    await once(server, 'listening');
    return {
      async connect(): Promise<Duplex> {
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
