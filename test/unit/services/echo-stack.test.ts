// echo over our own stack on a memory link: byte-exact, and the reply ends when the client ends.

import { once } from 'node:events';
import { afterEach, describe, it } from 'vitest';
import { createEchoService } from '../../../src/services/echo.js';
import { createStack, type Stack } from '../../../src/stack/stack.js';
import { createMemoryLinkPair } from '../../../src/tun/memory-link.js';
import { expectEchoedExactly } from './helpers.js';

describe('echo over our stack on a memory link', () => {
  const stacks: Stack[] = [];
  afterEach(async () => {
    await Promise.all(stacks.splice(0).map((s) => s.close()));
  });

  it('returns 8 MiB byte-exact', async () => {
    const [a, b] = createMemoryLinkPair(1500);
    const serverStack = createStack({ link: a, addresses: ['198.18.0.100'] });
    const clientStack = createStack({ link: b, addresses: ['198.18.0.1'] });
    stacks.push(serverStack, clientStack);
    const service = createEchoService();
    const server = serverStack.createServer((s) => service.onConnection(s));
    server.listen(7, '198.18.0.100');
    await once(server, 'listening');

    const c = clientStack.connect({ host: '198.18.0.100', port: 7 });
    await once(c, 'connect');
    await expectEchoedExactly(c, 8 * 1024 * 1024);
    await service.close();
  });
});
