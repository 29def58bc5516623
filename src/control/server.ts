// The node's end of the control socket: a Unix socket, root-only (directory 0700, socket 0600),
// answering newline-delimited JSON requests (protocol.ts). A bad request gets an error reply and
// the node carries on. A socket file left by a crashed node is recognised (nobody answers) and
// replaced; one that answers means another node is running, and this one must not start.

import { mkdirSync, chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import {
  encodeReply,
  LineSplitter,
  MAX_REQUEST_LINE,
  parseRequest,
  type ControlError,
  type ControlErrorCode,
  type ControlReply,
  type ControlRequest,
} from './protocol.js';

/** Thrown by a handler to reply with a specific error code instead of 'internal'. */
export class ControlRequestError extends Error {
  override readonly name = 'ControlRequestError';
  constructor(
    readonly code: ControlErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface ControlCall {
  params: Record<string, unknown>;
  /**
   * Runs after the reply has been handed to the kernel: for faults that end or freeze the process
   * (crash, hang), which must still answer first.
   */
  afterReply(fn: () => void): void;
}

export type ControlHandler = (call: ControlCall) => unknown;

export interface ControlServerOptions {
  path: string;
  handlers: Readonly<Record<string, ControlHandler>>;
  /** Bad requests and connection trouble, for the node's log. */
  onProblem?: (what: string, detail: string) => void;
  /** Simultaneous control connections; more are answered 'busy' and closed. Default 16. */
  maxConnections?: number;
}

export interface ControlServer {
  readonly path: string;
  /** A socket file left by a node that died without cleanup was found and replaced. */
  readonly replacedStale: boolean;
  /** Stops listening, drops the connections and removes the socket file. */
  close(): Promise<void>;
}

/** The socket could not be set up; the message is fit for one line on the terminal. */
export class ControlSocketError extends Error {
  override readonly name = 'ControlSocketError';
}

export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const { path } = opts;
  prepareDirectory(path);
  const replacedStale = await removeStaleSocket(path);
  const sockets = new Set<Socket>();
  const maxConnections = opts.maxConnections ?? 16;
  const problem = opts.onProblem ?? (() => undefined);
  const server: Server = createServer((socket) => {
    if (sockets.size >= maxConnections) {
      socket.end(encodeReply({ id: null, ok: false, error: { code: 'busy', message: `too many control connections (${maxConnections})` } }));
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    serveConnection(socket, opts.handlers, problem);
  });
  await listen(server, path);
  const ours = inodeOf(path);
  return {
    path,
    replacedStale,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // Only our own file: a node started after us with the same path may own it by now.
      if (ours !== undefined && inodeOf(path) === ours) {
        try {
          unlinkSync(path);
        } catch {
          // already gone
        }
      }
    },
  };
}

function serveConnection(socket: Socket, handlers: Readonly<Record<string, ControlHandler>>, problem: (what: string, detail: string) => void): void {
  // A client that goes away mid-request is normal; its errors must not reach the process.
  socket.on('error', (err) => problem('control.connection-error', err.message));
  const send = (reply: ControlReply, then?: () => void): void => {
    if (socket.destroyed || !socket.writable) return;
    socket.write(encodeReply(reply), () => then?.());
  };
  const fail = (id: ControlReply['id'], error: ControlError): void => {
    problem('control.bad-request', `${error.code}: ${error.message}`);
    send({ id, ok: false, error });
  };
  const splitter = new LineSplitter(
    MAX_REQUEST_LINE,
    (line) => {
      const parsed = parseRequest(line);
      if ('error' in parsed) fail(parsed.id, parsed.error);
      else void dispatch(parsed.request);
    },
    () => fail(null, { code: 'line-too-long', message: `request line longer than ${MAX_REQUEST_LINE} bytes, ignored` }),
  );
  socket.on('data', (chunk: Buffer) => splitter.push(chunk));

  async function dispatch(req: ControlRequest): Promise<void> {
    const handler = Object.hasOwn(handlers, req.method) ? handlers[req.method] : undefined;
    if (handler === undefined) {
      fail(req.id, { code: 'unknown-method', message: `unknown method "${req.method}" (known: ${Object.keys(handlers).join(', ')})` });
      return;
    }
    const after: (() => void)[] = [];
    let result: unknown;
    try {
      result = await handler({ params: req.params, afterReply: (fn) => after.push(fn) });
    } catch (err) {
      const code = err instanceof ControlRequestError ? err.code : 'internal';
      fail(req.id, { code, message: err instanceof Error ? err.message : String(err) });
      return;
    }
    send({ id: req.id, ok: true, result: result ?? null }, () => {
      for (const fn of after) fn();
    });
  }
}

function prepareDirectory(path: string): void {
  const dir = dirname(path);
  try {
    // mode applies only to directories created here; an existing one keeps the operator's choice.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ControlSocketError(`cannot create the control socket directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** Returns true when a stale socket file was removed. */
async function removeStaleSocket(path: string): Promise<boolean> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return false; // nothing there
  }
  if (!isSocket) throw new ControlSocketError(`control socket path ${path} exists and is not a socket`);
  if (await answers(path)) throw new ControlSocketError(`another node is running on control socket ${path}`);
  try {
    unlinkSync(path);
  } catch (err) {
    throw new ControlSocketError(`cannot remove the stale control socket ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return true;
}

/** True when something accepts connections on the socket file (a live node). */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    const timer = setTimeout(() => done(true), 2000); // accepted but slow: treat as alive
    const done = (alive: boolean): void => {
      clearTimeout(timer);
      probe.destroy();
      resolve(alive);
    };
    probe.once('connect', () => done(true));
    probe.once('error', () => done(false));
  });
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new ControlSocketError(`cannot listen on control socket ${path}: ${err.code ?? err.message}`));
    };
    server.once('error', onError);
    // The bind happens inside listen(): a tight umask means the file never exists with wider
    // permissions, not even between bind and chmod.
    const old = process.umask(0o177);
    try {
      server.listen(path, () => {
        server.off('error', onError);
        try {
          chmodSync(path, 0o600);
        } catch {
          // umask already gave 0600
        }
        resolve();
      });
    } finally {
      process.umask(old);
    }
  });
}

function inodeOf(path: string): number | undefined {
  try {
    return lstatSync(path).ino;
  } catch {
    return undefined;
  }
}
