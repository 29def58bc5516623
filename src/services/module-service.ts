// module: the user's own Node.js code as the service. The module is an ES module (or CommonJS)
// that exports either a connection handler, which gets each accepted socket as it is, or an HTTP
// request listener, which runs on Node's own http.Server fed with our sockets (as http-static
// does), so an existing Express-style app (`app(req, res)`) runs unchanged.
//
// What the module exports, and how it is read (docs/services.md repeats this for users):
//   export function onConnection(socket)           a connection handler
//   export function requestListener(req, res)      an HTTP request listener
//   export default { onConnection } / { requestListener }   the same, as an object
//   export default <http.Server>                   an HTTP server (not listening) to feed
//   export default <function>                      needs `export const kind = 'connection' | 'http'`
//   export async function close()                  optional, awaited on shutdown
// A bare default function is not classified by its arity: an Express app is declared as
// (req, res, next), a handler may take (socket, ...rest) or use `arguments`, and a wrapper may
// report length 0. Guessing wrong would fail only at the first connection, so the module has to
// say which it is, and a module that does not say is refused at start-up.
//
// Loading is synchronous where Node can do it (require() of an ES module: Node >= 20.19 / 22.12),
// so every loading error — a missing import, a syntax error, an export of the wrong shape — stops
// the node at start-up with one line, before it touches the network. A module graph with top-level
// await (or an older Node, or a file Node's require() cannot read) is loaded with import()
// instead; the service then holds connections until it is loaded, and a failure is fatal to the
// node (see ModuleServiceOptions.onLoadError).

import { createServer, Server, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConnectionSet } from './connection-set.js';
import { httpServerService } from './http-server-service.js';
import type { Service, ServiceSocket } from './service.js';

export type ConnectionHandler = (socket: ServiceSocket) => unknown;

/** What a loaded module turned out to be. */
export type ModuleHandler =
  | { kind: 'connection'; onConnection: ConnectionHandler; close?: () => unknown }
  | { kind: 'http'; requestListener: RequestListener; close?: () => unknown }
  | { kind: 'http'; server: Server; close?: () => unknown };

/** A module that cannot serve: the message is one line naming the file and what is wrong. */
export class ModuleLoadError extends Error {
  override readonly name = 'ModuleLoadError';
}

export interface ModuleServiceOptions {
  /**
   * Called when a module that had to be loaded asynchronously fails to load. The default throws
   * the error outside any promise, so the node's fatal-error handler stops the node (exit 1) and
   * logs why, rather than keep a VIP that resets every connection.
   */
  onLoadError?: (err: ModuleLoadError) => void;
}

/** A module service, with the promise of its loading (already settled for a synchronous load). */
export interface ModuleService extends Service {
  /** Resolves once the module is loaded and classified; rejects with a ModuleLoadError. */
  readonly ready: Promise<void>;
}

const SYNC_EXTENSIONS = new Set(['.mjs', '.js', '.cjs']);

/**
 * Loads `path` (absolute) and returns the service. Throws ModuleLoadError when the module is
 * loaded synchronously and is unusable.
 */
export function createModuleService(path: string, options: ModuleServiceOptions = {}): ModuleService {
  const sync = SYNC_EXTENSIONS.has(extname(path)) ? loadSync(path) : ({ kind: 'async' } as const);
  if (sync.kind === 'loaded') return serveModule(path, classify(path, sync.exports));

  // Connections that arrive before import() settles wait here, unread, in order.
  let handler: Service | undefined;
  const waiting: ServiceSocket[] = [];
  const held = new ConnectionSet();
  let closing = false;
  const ready = import(pathToFileURL(path).href).then(
    (exports: unknown) => {
      const h = serveModule(path, classify(path, exports));
      handler = h;
      for (const s of waiting.splice(0)) if (!s.destroyed) h.onConnection(s);
      // A close() that raced with the import still owes the module its close().
      if (closing) void h.close();
    },
    (err: unknown) => {
      throw loadError(path, err);
    },
  );
  ready.catch((err: ModuleLoadError) => {
    void held.closeAll();
    if (options.onLoadError) options.onLoadError(err);
    else
      setImmediate(() => {
        throw err;
      });
  });
  return {
    name: `module:${path}`,
    // The promise itself, which already has a handler (above): awaiting it is optional.
    ready,
    onConnection(socket: ServiceSocket): void {
      if (handler !== undefined) return handler.onConnection(socket);
      if (!held.add(socket)) return;
      waiting.push(socket);
    },
    async close(): Promise<void> {
      closing = true;
      await held.closeAll();
      await handler?.close();
    },
  };
}

type SyncLoad = { kind: 'loaded'; exports: unknown } | { kind: 'async' };

function loadSync(path: string): SyncLoad {
  const req = createRequire(import.meta.url);
  try {
    const exports: unknown = req(path);
    // require() of an ES module returns its namespace; of CommonJS, module.exports. import()
    // presents CommonJS as { default: module.exports, ...named }: do the same, so that a module
    // means the same thing whichever way it was loaded.
    if (Object.prototype.toString.call(exports) === '[object Module]') return { kind: 'loaded', exports };
    // (A function's own properties count too: `module.exports = fn; module.exports.kind = 'http'`.)
    const named = (typeof exports === 'object' && exports !== null) || typeof exports === 'function' ? { ...(exports as Record<string, unknown>) } : {};
    return { kind: 'loaded', exports: { ...named, default: exports } };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Not errors of the module, only of loading it synchronously: import() can.
    if (code === 'ERR_REQUIRE_ASYNC_MODULE' || code === 'ERR_REQUIRE_ESM' || code === 'ERR_REQUIRE_CYCLE_MODULE') return { kind: 'async' };
    throw loadError(path, err);
  }
}

function loadError(path: string, err: unknown): ModuleLoadError {
  if (err instanceof ModuleLoadError) return err;
  const e = err as NodeJS.ErrnoException;
  // One line: the first line of the message, which for a syntax error names the problem; the
  // stack is of no use to someone reading a start-up error.
  const first = (e instanceof Error ? e.message : String(err)).split('\n')[0] ?? '';
  const what = e instanceof SyntaxError ? `syntax error: ${first}` : first;
  return new ModuleLoadError(`module:${path}: cannot load it: ${what}`);
}

/** Reads the exports by the rule at the top of this file. */
export function classify(path: string, exports: unknown): ModuleHandler {
  const where = `module:${path}`;
  const ns = (typeof exports === 'object' && exports !== null ? exports : {}) as Record<string, unknown>;
  const kind = ns.kind;
  if (kind !== undefined && kind !== 'http' && kind !== 'connection') {
    throw new ModuleLoadError(`${where}: "kind" must be 'http' or 'connection' (got ${JSON.stringify(kind)})`);
  }
  const def = ns.default;
  const defObj = typeof def === 'object' && def !== null && !(def instanceof Server) ? (def as Record<string, unknown>) : undefined;
  const pick = (name: string): unknown => (ns[name] !== undefined ? ns[name] : defObj?.[name]);
  const close = pick('close');
  if (close !== undefined && typeof close !== 'function') throw new ModuleLoadError(`${where}: "close" must be a function`);
  const withClose = close === undefined ? {} : { close: close as () => unknown };

  const onConnection = pick('onConnection');
  const requestListener = pick('requestListener');
  const candidates: ModuleHandler[] = [];
  if (onConnection !== undefined) {
    if (typeof onConnection !== 'function') throw new ModuleLoadError(`${where}: "onConnection" must be a function (socket) => ...`);
    candidates.push({ kind: 'connection', onConnection: onConnection as ConnectionHandler, ...withClose });
  }
  if (requestListener !== undefined) {
    if (typeof requestListener !== 'function') throw new ModuleLoadError(`${where}: "requestListener" must be a function (req, res) => ...`);
    candidates.push({ kind: 'http', requestListener: requestListener as RequestListener, ...withClose });
  }
  if (def instanceof Server) candidates.push({ kind: 'http', server: def, ...withClose });
  if (typeof def === 'function' && onConnection === undefined && requestListener === undefined) {
    if (kind === undefined) {
      throw new ModuleLoadError(
        `${where}: the default export is a function, but the module does not say what it is: add ` +
          `export const kind = 'http' for a request listener (req, res), or export const kind = 'connection' for a connection handler (socket)`,
      );
    }
    candidates.push(
      kind === 'http'
        ? { kind: 'http', requestListener: def as RequestListener, ...withClose }
        : { kind: 'connection', onConnection: def as ConnectionHandler, ...withClose },
    );
  }

  const matching = kind === undefined ? candidates : candidates.filter((c) => c.kind === kind);
  if (matching.length === 1) return matching[0]!;
  if (matching.length === 0) {
    if (candidates.length > 0) {
      throw new ModuleLoadError(`${where}: kind is '${String(kind)}' but the module exports a ${candidates.map((c) => describe(c)).join(' and a ')}`);
    }
    throw new ModuleLoadError(
      `${where}: exports no handler: expected export function onConnection(socket), export function requestListener(req, res), ` +
        `or a default export with export const kind = 'http' | 'connection'`,
    );
  }
  throw new ModuleLoadError(`${where}: exports both a ${matching.map((c) => describe(c)).join(' and a ')}; add export const kind = 'http' | 'connection' to choose`);
}

function describe(h: ModuleHandler): string {
  if (h.kind === 'connection') return 'connection handler';
  return 'server' in h ? 'http.Server' : 'request listener';
}

/** The service around a classified module. */
function serveModule(path: string, h: ModuleHandler): ModuleService {
  const connections = new ConnectionSet();
  const name = `module:${path}`;
  const userClose = async (): Promise<void> => {
    await h.close?.();
  };

  if (h.kind === 'connection') {
    const handler = h.onConnection;
    return {
      name,
      ready: Promise.resolve(),
      onConnection(socket: ServiceSocket): void {
        if (!connections.add(socket)) return;
        // A handler that throws, or whose promise rejects, has left this connection in an unknown
        // state: reset it rather than let the error take the node down with every other client.
        try {
          const r = handler(socket);
          if (isPromise(r)) r.then(undefined, (err: unknown) => handlerFailed(socket, err));
        } catch (err) {
          handlerFailed(socket, err);
        }
      },
      async close(): Promise<void> {
        await connections.closeAll();
        await userClose();
      },
    };
  }

  let server: Server;
  if ('server' in h) {
    server = h.server;
  } else {
    const listener = h.requestListener;
    // Same guard for request listeners: Node's http.Server lets a synchronous throw from the
    // listener escape as an uncaught exception, which would stop the whole node.
    server = createServer((req, res) => {
      try {
        const r = listener(req, res);
        if (isPromise(r)) r.then(undefined, (err: unknown) => listenerFailed(req, res, err));
      } catch (err) {
        listenerFailed(req, res, err);
      }
    });
  }
  return { ...httpServerService(name, server, userClose), ready: Promise.resolve() };
}

function isPromise(v: unknown): v is Promise<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

function handlerFailed(socket: ServiceSocket, err: unknown): void {
  const e = Object.assign(new Error(`module handler failed: ${err instanceof Error ? err.message : String(err)}`), { code: 'EHANDLER' });
  // Reported on the socket, where the node's connection log hears it, then the client is reset.
  if (!socket.destroyed) socket.emit('error', e);
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

function listenerFailed(req: IncomingMessage, res: ServerResponse, err: unknown): void {
  if (!res.headersSent) {
    const body = 'internal error\n';
    res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
    return;
  }
  // Part of a reply went out: only a reset tells the client it is incomplete.
  const socket = req.socket as unknown as ServiceSocket;
  if (!socket.destroyed) socket.emit('error', Object.assign(new Error(`request listener failed: ${err instanceof Error ? err.message : String(err)}`), { code: 'EHANDLER' }));
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}
