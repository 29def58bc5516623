// Service boundaries (ARCHITECTURE.md 5.5) as the built-in services declare them, observed on our
// own stack's sockets: the offsets each markBoundary() records in both streams.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createDiscardService } from '../../../src/services/discard.js';
import { createEchoService } from '../../../src/services/echo.js';
import { createHttpStaticService } from '../../../src/services/http-static.js';
import type { Service } from '../../../src/services/service.js';
import type { Socket } from '../../../src/stack/socket.js';
import { createStack, type Stack } from '../../../src/stack/stack.js';
import { createMemoryLinkPair } from '../../../src/tun/memory-link.js';

const VIP = '198.18.0.100';
const stacks: Stack[] = [];
afterEach(async () => {
  await Promise.all(stacks.splice(0).map((s) => s.close()));
});

/** Serves `service` on a memory link; every boundary its server socket declares is recorded. */
async function serve(service: Service): Promise<{ client: Stack; boundaries: { input: number; output: number }[] }> {
  const [a, b] = createMemoryLinkPair(1500);
  const server = createStack({ link: a, addresses: [VIP] });
  const client = createStack({ link: b, addresses: ['198.18.0.1'] });
  stacks.push(server, client);
  const boundaries: { input: number; output: number }[] = [];
  const srv = server.createServer((s: Socket) => {
    const mark = s.markBoundary.bind(s);
    s.markBoundary = () => {
      boundaries.push(s.serviceOffsets);
      mark();
    };
    service.onConnection(s);
  });
  srv.listen(80, VIP);
  await once(srv, 'listening');
  return { client, boundaries };
}

const until = async (ok: () => boolean): Promise<void> => {
  for (let i = 0; i < 400 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(ok()).toBe(true);
};

describe('service boundaries', () => {
  it('echo: a boundary after each chunk is written back, at equal offsets in both streams', async () => {
    const { client, boundaries } = await serve(createEchoService());
    const c = client.connect({ host: VIP, port: 80 });
    await once(c, 'connect');
    let got = 0;
    c.on('data', (d: Buffer) => (got += d.length));
    let sent = 0;
    for (const n of [100, 2000, 30_000]) {
      c.write(Buffer.alloc(n, 7));
      sent += n;
      await until(() => got === sent);
    }
    expect(boundaries.length).toBeGreaterThan(0);
    for (const b of boundaries) expect(b.output).toBe(b.input);
    expect(boundaries.at(-1)).toEqual({ input: 32_100, output: 32_100 });
  });

  it('discard: a boundary after every chunk, nothing written', async () => {
    const { client, boundaries } = await serve(createDiscardService());
    const c = client.connect({ host: VIP, port: 80 });
    await once(c, 'connect');
    c.write(Buffer.alloc(5000, 1));
    await until(() => boundaries.at(-1)?.input === 5000);
    for (const b of boundaries) expect(b.output).toBe(0);
  });

  it('http-static: a boundary after each keep-alive response, at the end of its request and response', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'understudy-boundary-'));
    try {
      writeFileSync(join(dir, 'a.txt'), 'x'.repeat(3000));
      const { client, boundaries } = await serve(createHttpStaticService(dir));
      const c = client.connect({ host: VIP, port: 80 });
      await once(c, 'connect');
      let reply = '';
      c.on('data', (d: Buffer) => (reply += d.toString('latin1')));
      const req = 'GET /a.txt HTTP/1.1\r\nHost: vip\r\n\r\n';
      c.write(req);
      await until(() => boundaries.length === 1);
      // The whole response had been written when the boundary was declared.
      await until(() => reply.length === boundaries[0]!.output);
      expect(boundaries[0]!.input).toBe(req.length);
      expect(reply.endsWith('x'.repeat(3000))).toBe(true);
      const first = reply.length;
      c.write(req);
      await until(() => boundaries.length === 2);
      await until(() => reply.length === 2 * first);
      expect(boundaries[1]).toEqual({ input: 2 * req.length, output: 2 * first });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
