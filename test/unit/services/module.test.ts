// module: over kernel loopback with the fixture modules, and the rules for reading a module's
// exports (which shape is a connection handler, which a request listener, what is refused and
// with which message), including modules that can only be loaded asynchronously.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createModuleService, ModuleLoadError } from '../../../src/services/module-service.js';
import { createService, describeServiceSpec, readServiceSpec, ServiceSpecError } from '../../../src/services/spec.js';
import type { Service } from '../../../src/services/service.js';
import { collect, RawHttpClient, serveOnLoopback, type LoopbackService } from './helpers.js';
import { FIXTURES, moduleSuite } from './module-suite.js';

moduleSuite('module over loopback', {
  async start(service) {
    const lo = await serveOnLoopback(service);
    return { connect: () => lo.connect(), close: () => lo.close() };
  },
});

const dir = mkdtempSync(join(tmpdir(), 'understudy-module-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
/** Writes a module into a fresh file (fresh name: require() and import() cache by path). */
function moduleFile(source: string, ext = '.mjs'): string {
  const file = join(dir, `m${n++}${ext}`);
  writeFileSync(file, source);
  return file;
}

describe('module specs', () => {
  it('resolves a relative path against the working directory', () => {
    expect(readServiceSpec('module:test/fixtures/express-style-app.mjs')).toEqual({ kind: 'module', path: join(FIXTURES, 'express-style-app.mjs') });
    expect(describeServiceSpec(readServiceSpec('module:./test/fixtures/tiny-express.mjs'))).toBe(`module:${resolve('test/fixtures/tiny-express.mjs')}`);
  });

  it.each([
    ['module', /needs a file: module:<path>/],
    ['module:', /needs a file/],
    ['module:./no/such/app.mjs', /module: file "\.\/no\/such\/app\.mjs" does not exist/],
    ['module:test/fixtures', /module: "test\/fixtures" is not a file/],
  ])('rejects %j', (spec, message) => {
    expect(() => readServiceSpec(spec)).toThrow(ServiceSpecError);
    expect(() => readServiceSpec(spec)).toThrow(message);
  });
});

describe('reading what a module exports', () => {
  const services: Service[] = [];
  let lo: LoopbackService | undefined;
  afterEach(async () => {
    await lo?.close();
    lo = undefined;
    await Promise.all(services.splice(0).map((s) => s.close()));
  });

  async function serve(path: string): Promise<LoopbackService> {
    const service = createService({ kind: 'module', path });
    lo = await serveOnLoopback(service);
    return lo;
  }
  async function get(service: LoopbackService, path: string) {
    return new RawHttpClient(await service.connect()).request('GET', path);
  }
  async function roundTrip(service: LoopbackService, text: string): Promise<string> {
    const c = await service.connect();
    const back = collect(c);
    c.end(text);
    return (await back).toString();
  }

  it("a default function with kind 'http' is a request listener", async () => {
    const s = await serve(moduleFile(`export const kind = 'http'; export default (req, res) => res.end('hi ' + req.url);`));
    const r = await get(s, '/x');
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('hi /x');
  });

  it("a default function with kind 'connection' is a connection handler", async () => {
    const s = await serve(moduleFile(`export const kind = 'connection'; export default (socket) => socket.end('banner\\n');`));
    expect(await roundTrip(s, '')).toBe('banner\n');
  });

  it('export function requestListener, and a default object carrying one, are request listeners', async () => {
    const named = await serve(moduleFile(`export function requestListener(req, res) { res.end('named'); }`));
    expect((await get(named, '/')).body.toString()).toBe('named');
    await lo?.close();
    const obj = await serve(moduleFile(`export default { requestListener(req, res) { res.end('object'); } };`));
    expect((await get(obj, '/')).body.toString()).toBe('object');
  });

  it('a default export that is an http.Server (not listening) is fed the connections', async () => {
    const s = await serve(moduleFile(`import { createServer } from 'node:http'; export default createServer((req, res) => res.end('server'));`));
    expect((await get(s, '/')).body.toString()).toBe('server');
  });

  it('a CommonJS module reads the same way (module.exports is the default export)', async () => {
    const s = await serve(moduleFile(`module.exports = (socket) => socket.end('cjs'); module.exports.kind = 'connection';`, '.cjs'));
    expect(await roundTrip(s, '')).toBe('cjs');
  });

  it("kind picks one of two exported handlers", async () => {
    const s = await serve(moduleFile(`export const kind = 'connection'; export function onConnection(s) { s.end('conn'); } export function requestListener(q, r) { r.end('http'); }`));
    expect(await roundTrip(s, '')).toBe('conn');
  });

  it('calls the exported close() once on shutdown, after the connections are closed', async () => {
    globalThis.expressStyleAppClosed = 0;
    const service = createService(readServiceSpec('module:test/fixtures/express-style-app.mjs'));
    expect(globalThis.expressStyleAppClosed).toBe(0);
    await service.close();
    expect(globalThis.expressStyleAppClosed).toBe(1);
  });

  it('resets the connection when a connection handler throws, and goes on serving', async () => {
    const s2 = await serve(moduleFile(`let n = 0; export function onConnection(socket) { if (n++ === 0) throw new Error('first one fails'); socket.end('second ok'); }`));
    // Connected by hand: the reset may come before the helper's connect() would have resolved.
    const first = connect(s2.port, '127.0.0.1');
    const err = await new Promise<NodeJS.ErrnoException>((r) => first.once('error', r));
    expect(err.code).toBe('ECONNRESET');
    expect(await roundTrip(s2, '')).toBe('second ok');
  });

  it('answers 500 when a request listener throws, and keeps the connection usable', async () => {
    const s = await serve(moduleFile(`export const kind = 'http'; export default (req, res) => { if (req.url === '/bad') throw new Error('x'); res.end('fine'); };`));
    const c = new RawHttpClient(await s.connect());
    expect((await c.request('GET', '/bad')).status).toBe(500);
    expect((await c.request('GET', '/good')).body.toString()).toBe('fine');
  });

  it.each([
    ['a default function without kind', `export default function (x) {}`, /the default export is a function, but the module does not say what it is: add export const kind = 'http'/],
    ['no handler at all', `export const answer = 42;`, /exports no handler: expected export function onConnection\(socket\)/],
    ['an unknown kind', `export const kind = 'udp'; export default () => {};`, /"kind" must be 'http' or 'connection' \(got "udp"\)/],
    ['both handlers without kind', `export function onConnection() {} export function requestListener() {}`, /exports both a connection handler and a request listener; add export const kind/],
    ['a kind that matches no export', `export const kind = 'http'; export function onConnection() {}`, /kind is 'http' but the module exports a connection handler/],
    ['onConnection that is not a function', `export const onConnection = 'nope';`, /"onConnection" must be a function/],
    ['close that is not a function', `export function onConnection() {} export const close = 1;`, /"close" must be a function/],
    ['a syntax error', `export default function ( {`, /cannot load it: syntax error: /],
    ['an import that does not exist', `import x from 'no-such-package-understudy'; export default x;`, /cannot load it: .*no-such-package-understudy/],
    ['a throw at top level', `throw new Error('config missing');`, /cannot load it: config missing$/],
  ])('refuses %s at creation, with one line naming the file', (_what, source, message) => {
    const file = moduleFile(source);
    let err: unknown;
    try {
      createService({ kind: 'module', path: file });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ModuleLoadError);
    const text = (err as Error).message;
    expect(text.startsWith(`module:${file}: `)).toBe(true);
    expect(text).toMatch(message);
    expect(text).not.toContain('\n');
  });
});

describe('modules that load asynchronously (top-level await)', () => {
  it('holds connections that arrive before the module is loaded, then serves them in order', async () => {
    const file = moduleFile(`await new Promise((r) => setTimeout(r, 200)); export function onConnection(s) { s.pipe(s); }`);
    const service = createModuleService(file);
    const lo = await serveOnLoopback(service);
    try {
      const c = await lo.connect();
      const back = collect(c);
      c.end('early bird');
      expect(await back.then((b) => b.toString())).toBe('early bird');
      await service.ready;
    } finally {
      await lo.close();
    }
  });

  it('reports a failed asynchronous load to onLoadError and through ready, and resets held connections', async () => {
    const file = moduleFile(`await null; export const nothing = 1;`);
    const reported: ModuleLoadError[] = [];
    const service = createModuleService(file, { onLoadError: (e) => reported.push(e) });
    const lo = await serveOnLoopback(service);
    try {
      const c = await lo.connect();
      const err = new Promise<NodeJS.ErrnoException>((r) => c.once('error', r));
      await expect(service.ready).rejects.toThrow(/exports no handler/);
      expect((await err).code).toBe('ECONNRESET');
      expect(reported.map((e) => e.message)).toEqual([expect.stringMatching(new RegExp(`^module:${file}: exports no handler`))]);
    } finally {
      await lo.close();
    }
  });

  it('by default makes a failed asynchronous load an uncaught error, which the node treats as fatal', () => {
    const file = moduleFile(`await null; export default 1;`);
    const script = `import { createModuleService } from './src/services/module-service.ts'; createModuleService(${JSON.stringify(file)}); setTimeout(() => {}, 5000);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`ModuleLoadError: module:${file}: exports no handler`);
  });
});
