// The http-static behaviour, written once against any transport that can carry a connection to a
// service: kernel loopback (http-static.test.ts) and our own stack (http-static-stack.test.ts).

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHttpStaticService } from '../../../src/services/http-static.js';
import type { Service } from '../../../src/services/service.js';
import { RawHttpClient } from './helpers.js';

export interface Transport {
  /** Serves the service; connect() opens a client connection to it. */
  start(service: Service): Promise<{ connect(): Promise<Duplex>; close(): Promise<void> }>;
}

export function httpStaticSuite(title: string, transport: Transport, bigFileBytes = 1024 * 1024): void {
  describe(title, () => {
    const base = mkdtempSync(join(tmpdir(), 'understudy-http-'));
    const root = join(base, 'www');
    const big = randomBytes(bigFileBytes);
    const hello = 'hello, understudy\n';
    let service: Service;
    let server: { connect(): Promise<Duplex>; close(): Promise<void> };

    beforeAll(async () => {
      mkdirSync(root);
      writeFileSync(join(root, 'hello.txt'), hello);
      writeFileSync(join(root, 'big.bin'), big);
      writeFileSync(join(root, 'empty.json'), '');
      mkdirSync(join(root, 'site'));
      writeFileSync(join(root, 'site', 'index.html'), '<h1>index</h1>');
      mkdirSync(join(root, 'bare'));
      writeFileSync(join(base, 'secret.txt'), 'TOP SECRET');
      symlinkSync(join(base, 'secret.txt'), join(root, 'escape.txt'));
      symlinkSync(base, join(root, 'escape-dir'));
      symlinkSync(join(root, 'hello.txt'), join(root, 'alias.txt'));
      service = createHttpStaticService(root);
      server = await transport.start(service);
    });
    afterAll(async () => {
      await server?.close();
      rmSync(base, { recursive: true, force: true });
    });

    const open: Duplex[] = [];
    afterEach(() => {
      for (const s of open.splice(0)) s.destroy();
    });
    async function client(): Promise<RawHttpClient> {
      const s = await server.connect();
      open.push(s);
      return new RawHttpClient(s);
    }

    it('GET serves a file with length, type and Last-Modified', async () => {
      const c = await client();
      const r = await c.request('GET', '/hello.txt');
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe(hello);
      expect(r.headers['content-length']).toBe(String(Buffer.byteLength(hello)));
      expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(r.headers['accept-ranges']).toBe('bytes');
      const mtime = statSync(join(root, 'hello.txt')).mtime;
      expect(Date.parse(r.headers['last-modified'] ?? '')).toBe(Math.floor(mtime.getTime() / 1000) * 1000);
    });

    it('GET of a large file is byte-exact', async () => {
      const c = await client();
      const r = await c.request('GET', '/big.bin');
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('application/octet-stream');
      expect(r.body.length).toBe(big.length);
      expect(createHash('sha256').update(r.body).digest('hex')).toBe(createHash('sha256').update(big).digest('hex'));
    });

    it('HEAD sends the headers of GET and no body, and the connection stays usable', async () => {
      const c = await client();
      const h = await c.request('HEAD', '/big.bin');
      expect(h.status).toBe(200);
      expect(h.headers['content-length']).toBe(String(big.length));
      // If HEAD had leaked a body, this response would be parsed out of file bytes.
      const g = await c.request('GET', '/hello.txt');
      expect(g.status).toBe(200);
      expect(g.body.toString()).toBe(hello);
    });

    it('two requests share one keep-alive connection', async () => {
      const c = await client();
      const a = await c.request('GET', '/hello.txt');
      const b = await c.request('GET', '/big.bin', { Range: 'bytes=0-9' });
      expect(a.status).toBe(200);
      expect(a.headers['connection']).toBe('keep-alive');
      expect(b.status).toBe(206);
      expect(b.body.equals(big.subarray(0, 10))).toBe(true);
      expect(c.ended).toBe(false);
    });

    it.each([
      ['bytes=10-19', 10, 19],
      ['bytes=1000-', 1000, bigFileBytes - 1],
      ['bytes=-100', bigFileBytes - 100, bigFileBytes - 1],
      [`bytes=5-${bigFileBytes * 2}`, 5, bigFileBytes - 1],
    ])('Range %s gives 206 with Content-Range', async (range, start, end) => {
      const c = await client();
      const r = await c.request('GET', '/big.bin', { Range: range });
      expect(r.status).toBe(206);
      expect(r.headers['content-range']).toBe(`bytes ${start}-${end}/${bigFileBytes}`);
      expect(r.headers['content-length']).toBe(String(end - start + 1));
      expect(r.body.equals(big.subarray(start, end + 1))).toBe(true);
    });

    it('an unsatisfiable Range gives 416 with the size', async () => {
      const c = await client();
      const r = await c.request('GET', '/big.bin', { Range: `bytes=${bigFileBytes}-` });
      expect(r.status).toBe(416);
      expect(r.headers['content-range']).toBe(`bytes */${bigFileBytes}`);
    });

    it('several ranges give the whole file with 200', async () => {
      const c = await client();
      const r = await c.request('GET', '/big.bin', { Range: 'bytes=0-1,10-11' });
      expect(r.status).toBe(200);
      expect(r.body.equals(big)).toBe(true);
    });

    it('If-Range with a stale validator ignores Range', async () => {
      const c = await client();
      const r = await c.request('GET', '/hello.txt', { Range: 'bytes=0-0', 'If-Range': '"stale"' });
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe(hello);
    });

    it('If-None-Match with the current ETag gives 304', async () => {
      const c = await client();
      const first = await c.request('GET', '/hello.txt');
      const r = await c.request('GET', '/hello.txt', { 'If-None-Match': first.headers['etag'] ?? '' });
      expect(r.status).toBe(304);
      expect(r.body.length).toBe(0);
    });

    it('an empty file is 200 with Content-Length 0', async () => {
      const c = await client();
      const r = await c.request('GET', '/empty.json');
      expect(r.status).toBe(200);
      expect(r.headers['content-length']).toBe('0');
      expect(r.headers['content-type']).toBe('application/json');
    });

    it('missing files give 404', async () => {
      const c = await client();
      expect((await c.request('GET', '/nope.txt')).status).toBe(404);
      expect((await c.request('GET', '/hello.txt/x')).status).toBe(404);
    });

    it('other methods give 405 with Allow', async () => {
      const c = await client();
      const r = await c.request('DELETE', '/hello.txt');
      expect(r.status).toBe(405);
      expect(r.headers['allow']).toBe('GET, HEAD');
    });

    it('a directory serves its index.html, or 404 without one', async () => {
      const c = await client();
      const r = await c.request('GET', '/site/');
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('<h1>index</h1>');
      expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
      expect((await c.request('GET', '/bare/')).status).toBe(404);
    });

    it.each(['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/site/..%2f..%2fsecret.txt', '/escape.txt', '/escape-dir/secret.txt'])(
      'refuses %s outside the root',
      async (path) => {
        const c = await client();
        const r = await c.request('GET', path);
        expect([403, 404]).toContain(r.status);
        expect(r.body.toString()).not.toContain('TOP SECRET');
      },
    );

    it('answers pipelined requests in order', async () => {
      const s = await server.connect();
      open.push(s);
      const c = new RawHttpClient(s);
      // Both requests in one write: the server must parse the second only after answering the first.
      s.write('GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-3\r\n\r\n');
      const a = await c.readResponse(false);
      const b = await c.readResponse(false);
      expect(a.body.toString()).toBe(hello);
      expect(b.status).toBe(206);
      expect(b.body.equals(big.subarray(0, 4))).toBe(true);
    });

    it('answers a malformed request with 400 and closes', async () => {
      const s = await server.connect();
      open.push(s);
      const c = new RawHttpClient(s);
      s.write('NOT HTTP AT ALL\r\n\r\n');
      const r = await c.readResponse(false);
      expect(r.status).toBe(400);
      await c.waitEnded();
    });

    it('closes an idle keep-alive connection after the keep-alive timeout', async () => {
      const svc = createHttpStaticService(root, { keepAliveTimeoutMs: 200 });
      const other = await transport.start(svc);
      try {
        const s = await other.connect();
        open.push(s);
        const c = new RawHttpClient(s);
        expect((await c.request('GET', '/hello.txt')).status).toBe(200);
        const t0 = Date.now();
        await c.waitEnded();
        expect(Date.now() - t0).toBeLessThan(3000);
      } finally {
        await other.close();
      }
    });

    it('follows symlinks that stay inside the root', async () => {
      const c = await client();
      const r = await c.request('GET', '/alias.txt');
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe(hello);
    });
  });
}
