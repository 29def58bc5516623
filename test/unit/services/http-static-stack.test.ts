// The http-static suite again, this time over our own stack: a server stack and a client stack
// joined by an in-memory link, so every byte crosses our TCP implementation both ways.

import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { createStack } from '../../../src/stack/stack.js';
import { createMemoryLinkPair } from '../../../src/tun/memory-link.js';
import { httpStaticSuite } from './http-static-suite.js';

const SERVER = '198.18.0.100';
const CLIENT = '198.18.0.1';

httpStaticSuite('http-static over our stack on a memory link', {
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
