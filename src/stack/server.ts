// A listening endpoint shaped like `net.Server`: listen(), 'listening', 'connection', 'close',
// 'error', close(), address(). Connections arrive through the host's accept queue.

import { EventEmitter } from 'node:events';
import type { TcpListener } from './host-api.js';
import type { Socket } from './socket.js';
import { ipv4FromString, ipv4ToString } from './wire/types.js';

/** What a server needs from its stack. */
export interface ServerContext {
  /** Opens a listener; throws an Error with `code` (EADDRINUSE, EADDRNOTAVAIL). */
  listen(server: Server, addr: number, port: number, backlog: number): TcpListener;
  /** Closes the listener; connections already accepted stay open. */
  unlisten(server: Server, listener: TcpListener): void;
  /** A free port for listen(0). */
  freePort(addr: number): number;
}

export interface ServerOptions {
  allowHalfOpen?: boolean;
  /** Accepted sockets start paused, like net's pauseOnConnect. */
  pauseOnConnect?: boolean;
}

export interface ListenOptions {
  port?: number;
  host?: string;
  backlog?: number;
}

/** Linux's default SOMAXCONN. */
const DEFAULT_BACKLOG = 4096;

function codedError(code: string, message: string): Error & { code: string } {
  const e = new Error(message) as Error & { code: string };
  e.code = code;
  return e;
}

export class Server extends EventEmitter {
  readonly allowHalfOpen: boolean;
  readonly pauseOnConnect: boolean;
  private listener: TcpListener | null = null;
  private readonly sockets = new Set<Socket>();
  private closing = false;
  maxConnections?: number;

  constructor(
    private readonly ctx: ServerContext,
    opts: ServerOptions = {},
  ) {
    super();
    this.allowHalfOpen = opts.allowHalfOpen ?? false;
    this.pauseOnConnect = opts.pauseOnConnect ?? false;
  }

  get listening(): boolean {
    return this.listener !== null;
  }

  /** listen(port[, host][, backlog][, cb]) or listen({ port, host, backlog }[, cb]), like net. */
  listen(...args: unknown[]): this {
    let port = 0;
    let host: string | undefined;
    let backlog = DEFAULT_BACKLOG;
    let cb: (() => void) | undefined;
    const rest = [...args];
    if (typeof rest[rest.length - 1] === 'function') cb = rest.pop() as () => void;
    const first = rest[0];
    if (typeof first === 'object' && first !== null) {
      const o = first as ListenOptions;
      port = o.port ?? 0;
      host = o.host;
      backlog = o.backlog ?? backlog;
    } else {
      port = Number(first ?? 0);
      if (typeof rest[1] === 'string') {
        host = rest[1];
        if (typeof rest[2] === 'number') backlog = rest[2];
      } else if (typeof rest[1] === 'number') {
        backlog = rest[1];
      }
    }
    if (cb) this.once('listening', cb);
    try {
      if (this.listener) throw codedError('ERR_SERVER_ALREADY_LISTEN', 'listen method has been called more than once');
      let addr = 0;
      if (host !== undefined && host !== '0.0.0.0' && host !== '::') {
        const a = ipv4FromString(host);
        if (a === undefined) throw codedError('EADDRNOTAVAIL', `not an IPv4 address: ${host}`);
        addr = a;
      }
      if (port === 0) port = this.ctx.freePort(addr);
      this.listener = this.ctx.listen(this, addr, port, backlog);
      this.closing = false;
      process.nextTick(() => this.emit('listening'));
    } catch (err) {
      process.nextTick(() => this.emit('error', err));
    }
    return this;
  }

  address(): { address: string; family: string; port: number } | null {
    const l = this.listener;
    if (l === null) return null;
    return { address: ipv4ToString(l.addr), family: 'IPv4', port: l.port };
  }

  /** Stops accepting; 'close' follows once every accepted connection has closed, like net. */
  close(cb?: (err?: Error) => void): this {
    if (cb) {
      if (this.listener === null) {
        process.nextTick(cb, codedError('ERR_SERVER_NOT_RUNNING', 'Server is not running.'));
      } else {
        this.once('close', cb);
      }
    }
    const l = this.listener;
    if (l === null) return this;
    this.listener = null;
    this.closing = true;
    this.ctx.unlisten(this, l);
    this.maybeClosed();
    return this;
  }

  getConnections(cb: (err: Error | null, count: number) => void): this {
    process.nextTick(cb, null, this.sockets.size);
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  /** @internal The stack accepted a connection for this server. */
  onAccepted(socket: Socket): void {
    if (this.maxConnections !== undefined && this.sockets.size >= this.maxConnections) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.maybeClosed();
    });
    if (this.pauseOnConnect) socket.pause();
    this.emit('connection', socket);
  }

  private maybeClosed(): void {
    if (this.closing && this.sockets.size === 0) {
      this.closing = false;
      process.nextTick(() => this.emit('close'));
    }
  }
}
