import { describe, expect, it } from 'vitest';
import { createStack } from '../../../src/stack/stack.js';
import { createMemoryLinkPair } from '../../../src/tun/memory-link.js';

describe('smoke', () => {
  it('echo', async () => {
    const [la, lb] = createMemoryLinkPair(1500);
    const server = createStack({ link: la, addresses: ['198.18.0.1'] });
    const client = createStack({ link: lb, addresses: ['198.18.0.2'] });
    server.createServer((s) => s.pipe(s)).listen(7);
    const sock = client.connect({ host: '198.18.0.1', port: 7 });
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('connect', () => sock.end('hello'));
    await new Promise((r) => sock.on('close', r));
    expect(Buffer.concat(chunks).toString()).toBe('hello');
    console.log(server.counters, client.counters);
    await server.close();
    await client.close();
  });
});
