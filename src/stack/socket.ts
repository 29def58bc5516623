// A TCP connection as a Node stream, shaped like `net.Socket` so that services, and Node's own
// `http.Server`, use it unchanged. Bytes move without copies: received chunks are pushed as Buffer
// views of the core's payload slices, written chunks are handed to the core's chunk list.
// Backpressure runs both ways: a write callback waits until the send buffer took every byte, and
// a paused reader stops draining the receive buffer, so the advertised window closes.

import { Duplex } from 'node:stream';
import type { Micros, TcpConnection, TcpErrorCode, TcpEvent } from './tcp/api.js';
import { ServiceOffsets } from './service-offsets.js';
import { ipv4ToString } from './wire/types.js';

/** What a socket needs from its stack. */
export interface SocketContext {
  now(): Micros;
  /** A user call touched a connection: send what it produced soon (coalesced). */
  kick(): void;
  /** The socket no longer wants the connection's events. */
  release(conn: TcpConnection): void;
}

export interface SocketOptions {
  /** Like net: false ends our side once the peer's FIN was read. */
  allowHalfOpen?: boolean;
  /** Active opens start out connecting; accepted connections are open already. */
  connecting?: boolean;
}

export type SocketReadyState = 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed';

/** An Error with a `code` like Node's system errors (ECONNRESET, ETIMEDOUT, ...). */
export interface SocketError extends Error {
  code: string;
  syscall?: string;
}

const MESSAGES: Record<TcpErrorCode, string> = {
  ECONNRESET: 'connection reset by peer',
  ECONNREFUSED: 'connection refused',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host is unreachable',
  ENETUNREACH: 'network is unreachable',
  EPIPE: 'broken pipe',
};

export function socketError(code: TcpErrorCode | string, syscall = 'read'): SocketError {
  const msg = (MESSAGES as Record<string, string>)[code] ?? code;
  const e = new Error(`${syscall} ${code}: ${msg}`) as SocketError;
  e.code = code;
  e.syscall = syscall;
  return e;
}

type WriteCallback = (err?: Error | null) => void;

export class Socket extends Duplex {
  readonly remoteFamily = 'IPv4';
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  bytesRead = 0;
  /** Bytes the send buffer took. */
  bytesWritten = 0;
  connecting: boolean;

  private conn: TcpConnection | null;
  /** _read() asked for data and push() has not said stop since. */
  private wantRead = false;
  private eofPushed = false;
  /** Chunks the send buffer had no room for yet, with the callback that releases the writer. */
  private blocked: { chunks: Uint8Array[]; cb: WriteCallback } | null = null;
  /** _final() ran while still connecting: shut down once connected. */
  private finalPending: WriteCallback | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private idleMs = 0;
  private readonly offsets = new ServiceOffsets();

  constructor(
    private readonly ctx: SocketContext,
    conn: TcpConnection,
    opts: SocketOptions = {},
  ) {
    super({ allowHalfOpen: opts.allowHalfOpen ?? false, emitClose: true, autoDestroy: true });
    this.conn = conn;
    this.connecting = opts.connecting ?? false;
    const t = conn.tuple;
    this.remoteAddress = ipv4ToString(t.remoteAddr);
    this.remotePort = t.remotePort;
    this.localAddress = ipv4ToString(t.localAddr);
    this.localPort = t.localPort;
  }

  get pending(): boolean {
    return this.connecting;
  }

  get readyState(): SocketReadyState {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  /** The TCP state, for status output. */
  get tcpState(): string {
    return this.conn?.state ?? 'CLOSED';
  }

  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress, family: 'IPv4', port: this.localPort };
  }

  /**
   * The service declares a boundary (ARCHITECTURE.md 5.5): everything it consumed so far has been
   * answered by what it wrote so far, and its per-connection state is empty, so replaying the
   * client's bytes from here into a fresh instance regenerates its output from here. Replication
   * keeps client bytes from the latest boundary to bring a joining backup up to date.
   */
  markBoundary(): void {
    this.markBoundaryAt(this.offsets.consumed(this), this.offsets.written(this));
  }

  /** A boundary at explicit stream offsets (a replica socket on top, whose streams began earlier). */
  markBoundaryAt(inputOffset: number, outputOffset: number): void {
    this.conn?.markBoundary?.(inputOffset, outputOffset);
  }

  /** Stream offsets the service has consumed and written up to: a boundary would be taken here. */
  get serviceOffsets(): { input: number; output: number } {
    return { input: this.offsets.consumed(this), output: this.offsets.written(this) };
  }

  // ---- events from the connection (called by the stack) ----

  /** @internal */
  onTcpEvent(ev: TcpEvent): void {
    switch (ev.type) {
      case 'connected':
        if (this.connecting) {
          this.connecting = false;
          this.emit('connect');
          this.emit('ready');
          this.flushBlocked();
          if (this.finalPending) {
            const cb = this.finalPending;
            this.finalPending = null;
            this._final(cb);
          }
        }
        this.pull();
        return;
      case 'readable':
      case 'peer-fin':
        this.pull();
        return;
      case 'writable':
        this.flushBlocked();
        return;
      case 'error':
        this.fail(socketError(ev.code, this.connecting ? 'connect' : 'read'));
        return;
      case 'closed':
        this.onClosed();
        return;
    }
  }

  /** CLOSED without an error: both FINs were exchanged (or TIME-WAIT ended). */
  private onClosed(): void {
    const c = this.conn;
    if (c !== null && !this.eofPushed) {
      // Whatever is still buffered is handed over regardless of backpressure: the connection
      // object is about to be dropped.
      const now = this.ctx.now();
      for (let chunk = c.read(now); chunk !== null; chunk = c.read(now)) {
        this.bytesRead += chunk.length;
        this.offsets.pushed += chunk.length;
        this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      }
      this.eofPushed = true;
      this.push(null);
    }
    this.detach();
    if (this.destroyed) return;
    if (this.blocked || this.writableLength > 0) this.fail(socketError('EPIPE', 'write'));
    else if (this.readableEnded && (this.writableFinished || !this.writable)) this.destroy();
  }

  private fail(err: SocketError): void {
    this.detach();
    this.destroy(err);
  }

  /** The connection is gone (CLOSED or aborted by us): stop using it. */
  private detach(): void {
    const c = this.conn;
    if (c === null) return;
    this.conn = null;
    this.ctx.release(c);
  }

  // ---- reading ----

  override _read(): void {
    this.wantRead = true;
    this.pull();
  }

  private pull(): void {
    const c = this.conn;
    if (c === null || this.eofPushed) return;
    let took = false;
    const now = this.ctx.now();
    while (this.wantRead) {
      const chunk = c.read(now);
      if (chunk === null) break;
      took = true;
      this.bytesRead += chunk.length;
      this.offsets.pushed += chunk.length;
      this.wantRead = this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    }
    if (took) {
      this.touch();
      this.ctx.kick();
    }
    if (c.readEnded && c.readableLength === 0) {
      this.eofPushed = true;
      this.push(null);
    }
  }

  // ---- writing ----

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: WriteCallback): void {
    this.enqueue([chunk], this.offsets.writing(chunk.length, cb));
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: WriteCallback): void {
    let n = 0;
    for (const c of chunks) n += c.chunk.length;
    this.enqueue(
      chunks.map((c) => c.chunk),
      this.offsets.writing(n, cb),
    );
  }

  private enqueue(chunks: Uint8Array[], cb: WriteCallback): void {
    this.blocked = { chunks, cb };
    if (!this.connecting) this.flushBlocked();
  }

  /**
   * Moves blocked chunks into the send buffer; releases the writer once all went in. A write
   * goes in only once a quarter of the buffer (or all it still has) fits, like
   * Linux's write-space wake-up: moved in pieces of one or two segments per ACK, a download would
   * cost a send-buffer append and a replication record per ACK instead of per quarter megabyte.
   */
  private flushBlocked(): void {
    const b = this.blocked;
    if (b === null) return;
    const c = this.conn;
    if (c === null) {
      this.blocked = null;
      b.cb(socketError('EPIPE', 'write'));
      return;
    }
    let left = 0;
    for (const ch of b.chunks) left += ch.length;
    if (c.writableSpace < Math.min(left, c.sendBufferSize / 4)) return;
    const now = this.ctx.now();
    let wrote = 0;
    while (b.chunks.length > 0) {
      const chunk = b.chunks[0]!;
      const n = c.write(now, chunk);
      wrote += n;
      if (n < chunk.length) {
        b.chunks[0] = chunk.subarray(n);
        break;
      }
      b.chunks.shift();
    }
    if (wrote > 0) {
      this.bytesWritten += wrote;
      this.touch();
      this.ctx.kick();
    }
    if (b.chunks.length === 0) {
      this.blocked = null;
      b.cb();
    }
  }

  override _final(cb: WriteCallback): void {
    if (this.connecting) {
      this.finalPending = cb;
      return;
    }
    const c = this.conn;
    if (c !== null) {
      // Runs after every write callback, so the FIN follows all queued data.
      c.shutdown(this.ctx.now());
      this.ctx.kick();
    }
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.clearIdle();
    const c = this.conn;
    if (c !== null) {
      this.detach();
      // Like close(2): FIN after what the send buffer holds, or RST when received data was left
      // unread (RFC 9293 3.10.4 / RFC 2525); the core decides which.
      c.close(this.ctx.now());
      this.ctx.kick();
    }
    const b = this.blocked;
    this.blocked = null;
    if (b) b.cb(err ?? socketError('EPIPE', 'write'));
    cb(err);
  }

  /** Like net's resetAndDestroy(): abort with RST, then destroy. */
  resetAndDestroy(): this {
    const c = this.conn;
    if (c !== null) {
      this.detach();
      c.abort(this.ctx.now());
      this.ctx.kick();
    }
    return this.destroy();
  }

  /** Ends our side and destroys once the FIN is queued (used by http.Server). */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  // ---- options ----

  setNoDelay(noDelay = true): this {
    this.conn?.setNoDelay(noDelay);
    this.ctx.kick();
    return this;
  }

  setKeepAlive(enable = false, initialDelayMs = 0): this {
    this.conn?.setKeepAlive(enable, initialDelayMs > 0 ? initialDelayMs * 1000 : undefined);
    this.ctx.kick();
    return this;
  }

  /** Like net: emit 'timeout' after `ms` without reads or writes; 0 disables. */
  setTimeout(ms: number, cb?: () => void): this {
    this.idleMs = ms;
    if (cb) {
      if (ms === 0) this.removeListener('timeout', cb);
      else this.once('timeout', cb);
    }
    this.clearIdle();
    if (ms > 0 && !this.destroyed) {
      this.idleTimer = setTimeout(() => this.emit('timeout'), ms);
      this.idleTimer.unref();
    }
    return this;
  }

  get timeout(): number | undefined {
    return this.idleMs > 0 ? this.idleMs : undefined;
  }

  private touch(): void {
    this.idleTimer?.refresh();
  }

  private clearIdle(): void {
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
  }

  /** Like net: 'close' carries whether the socket was closed because of an error. */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'close' && args.length === 0) return super.emit('close', this.errored !== null);
    return super.emit(event, ...args);
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }
}
