// The command side of the control socket: one connection, requests matched to replies by id.
// Errors carry a kind so the CLI can tell "no node there" (exit 1, one line) from a node that
// refused the request.

import { createConnection, type Socket } from 'node:net';
import { encodeRequest, LineSplitter, type ControlError, type ControlReply, type RequestId } from './protocol.js';

/** Replies can be large (status of many connections), but not unbounded. */
const MAX_REPLY_LINE = 64 * 1024 * 1024;

export type ControlClientErrorKind = 'no-node' | 'closed' | 'timeout' | 'protocol' | 'remote';

export class ControlClientError extends Error {
  override readonly name = 'ControlClientError';
  constructor(
    readonly kind: ControlClientErrorKind,
    message: string,
    /** The node's error, for kind 'remote'. */
    readonly remote?: ControlError,
  ) {
    super(message);
  }
}

interface Pending {
  resolve: (result: unknown) => void;
  reject: (err: ControlClientError) => void;
  timer: NodeJS.Timeout;
}

export class ControlConnection {
  private nextId = 1;
  private readonly pending = new Map<RequestId, Pending>();
  private closedError: ControlClientError | undefined;

  private constructor(
    private readonly socket: Socket,
    readonly path: string,
  ) {
    const splitter = new LineSplitter(
      MAX_REPLY_LINE,
      (line) => this.onLine(line),
      () => this.failAll(new ControlClientError('protocol', 'reply too long')),
    );
    socket.on('data', (chunk: Buffer) => splitter.push(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => this.failAll(new ControlClientError('closed', `control connection failed: ${err.code ?? err.message}`)));
    socket.on('close', () => this.failAll(new ControlClientError('closed', `the node at ${path} closed the control connection`)));
  }

  static open(path: string, timeoutMs = 5000): Promise<ControlConnection> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ControlClientError('timeout', `no answer from ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const why = err.code === 'ENOENT' ? 'no such socket' : err.code === 'ECONNREFUSED' ? 'nobody listening' : (err.code ?? err.message);
        reject(new ControlClientError('no-node', `no node at ${path} (${why})`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new ControlConnection(socket, path));
      });
    });
  }

  request(method: string, params: Record<string, unknown> = {}, timeoutMs = 5000): Promise<unknown> {
    if (this.closedError !== undefined) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ControlClientError('timeout', `no reply to "${method}" from ${this.path} within ${timeoutMs} ms (is the node hung?)`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.write(encodeRequest({ id, method, params }));
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onLine(line: string): void {
    let reply: ControlReply;
    try {
      reply = JSON.parse(line) as ControlReply;
    } catch {
      this.failAll(new ControlClientError('protocol', 'the node sent a reply that is not JSON'));
      return;
    }
    const id = reply.id;
    const p = id === null ? undefined : this.pending.get(id);
    if (p === undefined) {
      // An error without an id answers whatever we sent that it could not read.
      if (!reply.ok && id === null) this.failAll(new ControlClientError('remote', reply.error.message, reply.error));
      return;
    }
    this.pending.delete(id!);
    clearTimeout(p.timer);
    if (reply.ok) p.resolve(reply.result);
    else p.reject(new ControlClientError('remote', reply.error.message, reply.error));
  }

  private failAll(err: ControlClientError): void {
    this.closedError ??= err;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }
}

/** One request on a fresh connection. */
export async function controlRequest(path: string, method: string, params: Record<string, unknown> = {}, timeoutMs = 5000): Promise<unknown> {
  const conn = await ControlConnection.open(path, timeoutMs);
  try {
    return await conn.request(method, params, timeoutMs);
  } finally {
    conn.close();
  }
}
