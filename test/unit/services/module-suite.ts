// The module service with the two fixture modules (an Express-style app and a connection
// handler), written once against any transport: kernel loopback (module.test.ts) and our own stack
// on a memory link (module-stack.test.ts).

import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createService, readServiceSpec } from '../../../src/services/spec.js';
import type { Service } from '../../../src/services/service.js';
import { collect, RawHttpClient, type HttpResponse } from './helpers.js';

export interface ModuleTransport {
  start(service: Service): Promise<{ connect(): Promise<Duplex>; close(): Promise<void> }>;
}

export const FIXTURES = resolve(import.meta.dirname, '../../fixtures');
declare global {
  var expressStyleAppClosed: number | undefined;
  var upperHandlerClosed: number | undefined;
}

/** A request with a body, which RawHttpClient.request() does not send. */
async function post(c: RawHttpClient, path: string, body: string, type = 'application/json'): Promise<HttpResponse> {
  c.socket.write(`POST ${path} HTTP/1.1\r\nHost: test\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  return c.readResponse(false);
}

export function moduleSuite(title: string, transport: ModuleTransport): void {
  describe(`${title}: an Express-style app (kind 'http')`, () => {
    let service: Service;
    let server: { connect(): Promise<Duplex>; close(): Promise<void> };
    const open: Duplex[] = [];
    beforeAll(async () => {
      // Relative to the working directory, as on the command line.
      service = createService(readServiceSpec('module:test/fixtures/express-style-app.mjs'));
      server = await transport.start(service);
    });
    afterAll(async () => {
      for (const s of open) s.destroy();
      await server?.close();
    });
    async function client(): Promise<RawHttpClient> {
      const s = await server.connect();
      open.push(s);
      return new RawHttpClient(s);
    }

    it('names itself by the absolute path of the module', () => {
      expect(service.name).toBe(`module:${FIXTURES}/express-style-app.mjs`);
    });

    it('answers its routes, with path parameters, several requests on one connection', async () => {
      const c = await client();
      const root = await c.request('GET', '/');
      expect(root.status).toBe(200);
      expect(root.body.toString()).toBe('understudy module app\n');
      const hello = await c.request('GET', '/hello/stage%20left');
      expect(hello.status).toBe(200);
      expect(hello.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(JSON.parse(hello.body.toString())).toEqual({ hello: 'stage left' });
    });

    it('parses a JSON body and answers with JSON', async () => {
      const c = await client();
      const r = await post(c, '/sum', JSON.stringify({ numbers: [1, 2, 3.5] }));
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body.toString())).toEqual({ sum: 6.5, count: 3 });
      const bad = await post(c, '/sum', JSON.stringify({ numbers: 'no' }));
      expect(bad.status).toBe(422);
      const malformed = await post(c, '/sum', '{"numbers": [1,');
      expect(malformed.status).toBe(400);
      expect(JSON.parse(malformed.body.toString())).toEqual({ error: 'malformed JSON body' });
    });

    it('answers 404 for an unknown route', async () => {
      const c = await client();
      const r = await c.request('GET', '/nowhere');
      expect(r.status).toBe(404);
      expect(JSON.parse(r.body.toString())).toEqual({ error: 'not found', path: '/nowhere' });
    });

    it("answers 500 for a route that throws (the app's own error handling) and keeps serving", async () => {
      const c = await client();
      expect((await c.request('GET', '/boom')).status).toBe(500);
      expect((await c.request('GET', '/hello/again')).status).toBe(200);
    });

    it('answers a malformed request with 400 and closes the connection', async () => {
      const s = await server.connect();
      open.push(s);
      const reply = collect(s);
      s.write('THIS IS NOT HTTP\r\n\r\n');
      expect((await reply).toString()).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    });
  });

  describe(`${title}: a connection handler (export function onConnection)`, () => {
    let service: Service;
    let server: { connect(): Promise<Duplex>; close(): Promise<void> };
    beforeAll(async () => {
      service = createService(readServiceSpec(`module:${FIXTURES}/upper-connection-handler.mjs`));
      server = await transport.start(service);
    });
    afterAll(async () => {
      await server?.close();
    });

    it('gets the socket itself: 1 MiB comes back upper-cased, ended after the client ends', async () => {
      const s = await server.connect();
      const text = randomBytes(512 * 1024).toString('hex');
      const back = collect(s);
      s.end(text);
      expect((await back).toString()).toBe(text.toUpperCase());
    });
  });
}
