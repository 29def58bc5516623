// Test helpers: a service on kernel loopback, and a tiny HTTP/1.1 client that keeps full control
// of the connection (so keep-alive and HEAD framing are observable byte by byte).

import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { expect } from 'vitest';
import type { Service, ServiceSocket } from '../../../src/services/service.js';

export interface LoopbackService {
  port: number;
  /** Server-side sockets in accept order. */
  accepted: Socket[];
  connect(): Promise<Socket>;
  close(): Promise<void>;
}

export async function serveOnLoopback(service: Service): Promise<LoopbackService> {
  const accepted: Socket[] = [];
  const server: Server = createServer((s) => {
    accepted.push(s);
    service.onConnection(s as ServiceSocket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const clients: Socket[] = [];
  return {
    port: address.port,
    accepted,
    async connect() {
      const c = connect(address.port, '127.0.0.1');
      clients.push(c);
      await once(c, 'connect');
      return c;
    },
    async close() {
      for (const c of clients) c.destroy();
      await service.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Sequential requests on one connection; responses must carry Content-Length (ours always do). */
export class RawHttpClient {
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  ended = false;

  constructor(readonly socket: Duplex) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiter?.();
    });
    socket.on('end', () => {
      this.ended = true;
      this.waiter?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.waiter?.();
    });
    socket.on('error', () => {});
  }

  async request(method: string, path: string, headers: Record<string, string> = {}): Promise<HttpResponse> {
    const lines = [`${method} ${path} HTTP/1.1`, 'Host: test', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    this.socket.write(lines.join('\r\n') + '\r\n\r\n');
    return this.readResponse(method === 'HEAD');
  }

  /** Resolves when the server has ended or closed the connection. */
  async waitEnded(): Promise<void> {
    while (!this.ended) await new Promise<void>((resolve) => (this.waiter = resolve));
  }

  async readResponse(head: boolean): Promise<HttpResponse> {
    let end: number;
    while ((end = this.buf.indexOf('\r\n\r\n')) < 0) await this.more();
    const [statusLine = '', ...headerLines] = this.buf.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(statusLine.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const l of headerLines) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    this.buf = this.buf.subarray(end + 4);
    const length = head || status === 304 ? 0 : Number(headers['content-length'] ?? 0);
    while (this.buf.length < length) await this.more();
    const body = Buffer.from(this.buf.subarray(0, length));
    this.buf = this.buf.subarray(length);
    return { status, headers, body };
  }

  private more(): Promise<void> {
    if (this.ended) return Promise.reject(new Error('connection ended before the response was complete'));
    return new Promise((resolve) => {
      this.waiter = () => {
        this.waiter = undefined;
        resolve();
      };
    });
  }
}

export function collect(stream: Duplex): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (d: Buffer) => chunks.push(d));
  // An explicit pause() earlier would otherwise keep the stream stopped despite the listener.
  stream.resume();
  return new Promise((resolve, reject) => {
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

/** Sends `bytes` random bytes and ends; the echo must come back byte for byte, then end. */
export async function expectEchoedExactly(c: Duplex, bytes: number): Promise<void> {
  const data = randomBytes(bytes);
  const received = collect(c);
  c.end(data);
  const back = await received;
  expect(back.length).toBe(data.length);
  expect(back.equals(data)).toBe(true);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
