// The proxy behaviour, written once against any transport that carries a client connection to the
// service: kernel loopback (proxy.test.ts) and our own stack on a memory link (proxy-stack.test.ts).
// The backend is always a Node net server on 127.0.0.1: the proxy's other side is Linux TCP.

import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createProxyService } from '../../../src/services/proxy.js';
import type { Service } from '../../../src/services/service.js';
import { collect, sleep } from './helpers.js';

export interface ProxyTransport {
  /** Serves the service; connect() opens a client connection to it. */
  start(service: Service): Promise<{ connect(): Promise<Duplex & { resetAndDestroy?(): unknown }>; close(): Promise<void> }>;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface Backend {
  port: number;
  server: Server;
  /** Backend-side sockets in accept order. */
  sockets: Socket[];
  close(): Promise<void>;
}

/** A backend on 127.0.0.1 whose per-connection behaviour the test gives. */
async function backend(onSocket: (s: Socket) => void): Promise<Backend> {
  const sockets: Socket[] = [];
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    s.on('error', () => {});
    onSocket(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return {
    port: addr.port,
    server,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A port on 127.0.0.1 with nothing listening (bound once, then released). */
async function closedPort(): Promise<number> {
  const b = await backend(() => {});
  await b.close();
  return b.port;
}

function errorOf(s: Duplex): Promise<NodeJS.ErrnoException> {
  return new Promise((resolve) => s.once('error', resolve));
}

export function proxySuite(title: string, transport: ProxyTransport): void {
  describe(title, () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    async function setup(onSocket: (s: Socket) => void, port?: number) {
      const b = port === undefined ? await backend(onSocket) : undefined;
      if (b !== undefined) cleanups.push(() => b.close());
      const service = createProxyService({ host: '127.0.0.1', port: port ?? b!.port });
      // What the proxy reports on its client sockets (the node's connection log listens the same
      // way), recorded from the moment each socket is handed over.
      const reasons: (NodeJS.ErrnoException & { backendCode?: string })[] = [];
      const recorded: Service = {
        name: service.name,
        onConnection(s) {
          s.on('error', (e) => reasons.push(e));
          service.onConnection(s);
        },
        close: () => service.close(),
      };
      const front = await transport.start(recorded);
      cleanups.push(() => front.close());
      const reason = async () => {
        while (reasons[0] === undefined) await sleep(1);
        return reasons[0];
      };
      return { b, service, front, reason };
    }

    it('relays 8 MiB byte-exact through an echoing backend', async () => {
      const { front } = await setup((s) => s.pipe(s));
      const c = await front.connect();
      const data = randomBytes(8 * 1024 * 1024);
      const back = collect(c);
      c.end(data);
      const got = await back;
      expect(got.length).toBe(data.length);
      expect(sha(got)).toBe(sha(data));
    });

    it('carries 8 MiB each way at once, byte-exact in both directions', async () => {
      const up = randomBytes(8 * 1024 * 1024);
      const down = randomBytes(8 * 1024 * 1024);
      let received: Promise<Buffer> | undefined;
      const { front } = await setup((s) => {
        received = collect(s);
        s.end(down);
      });
      const c = await front.connect();
      const fromBackend = collect(c);
      c.end(up);
      const got = await fromBackend;
      expect(sha(got)).toBe(sha(down));
      while (received === undefined) await sleep(5);
      expect(sha(await received)).toBe(sha(up));
    });

    it("carries the client's FIN to the backend and still delivers the reply sent after it", async () => {
      const { front } = await setup((s) => {
        const chunks: Buffer[] = [];
        s.on('data', (d: Buffer) => chunks.push(d));
        // The backend answers only once it has seen the end of the request (like `nc -N` peers).
        s.on('end', () => setTimeout(() => s.end(`got ${Buffer.concat(chunks).toString()} then FIN`), 50));
      });
      const c = await front.connect();
      const reply = collect(c);
      c.end('request');
      expect((await reply).toString()).toBe('got request then FIN');
    });

    it("carries the backend's FIN to the client, whose later bytes still reach the backend", async () => {
      let received: Promise<Buffer> | undefined;
      const { front } = await setup((s) => {
        received = collect(s);
        s.end('banner, and no more from me');
      });
      const c = await front.connect();
      // The client, too, must keep sending after the FIN it received (net's default would end it).
      (c as Duplex & { allowHalfOpen: boolean }).allowHalfOpen = true;
      const chunks: Buffer[] = [];
      c.on('data', (d: Buffer) => chunks.push(d));
      await once(c, 'end');
      expect(Buffer.concat(chunks).toString()).toBe('banner, and no more from me');
      c.end('sent after the backend ended');
      while (received === undefined) await sleep(5);
      expect((await received).toString()).toBe('sent after the backend ended');
    });

    it('resets the client and names the reason when the backend refuses the connection', async () => {
      const { front, reason } = await setup(() => {}, await closedPort());
      const c = await front.connect();
      const clientError = errorOf(c);
      c.write('anyone there?');
      expect((await clientError).code).toBe('ECONNRESET');
      const r = await reason();
      expect(r.code).toBe('EBACKEND');
      expect(r.backendCode).toBe('ECONNREFUSED');
      expect(r.message).toMatch(/^proxy: cannot connect to backend 127\.0\.0\.1:\d+ \(ECONNREFUSED\)$/);
    });

    it('resets the client when the backend resets mid-reply', async () => {
      const { front, reason } = await setup((s) => {
        s.write('partial reply');
        setTimeout(() => s.resetAndDestroy(), 50);
      });
      const c = await front.connect();
      const chunks: Buffer[] = [];
      c.on('data', (d: Buffer) => chunks.push(d));
      const err = await errorOf(c);
      expect(err.code).toBe('ECONNRESET');
      expect(Buffer.concat(chunks).toString()).toBe('partial reply');
      const r = await reason();
      expect(r.code).toBe('EBACKEND');
      expect(r.backendCode).toBe('ECONNRESET');
      expect(r.message).toMatch(/^proxy: backend 127\.0\.0\.1:\d+ reset the connection \(ECONNRESET\)$/);
    });

    it('resets the backend when the client resets', async () => {
      let backendError: Promise<NodeJS.ErrnoException> | undefined;
      const { front } = await setup((s) => {
        backendError = errorOf(s);
        s.resume();
      });
      const c = await front.connect();
      c.write('hello');
      while (backendError === undefined) await sleep(5);
      if (typeof c.resetAndDestroy !== 'function') throw new Error('client cannot reset');
      c.resetAndDestroy();
      expect((await backendError).code).toBe('ECONNRESET');
    });

    it('stops reading from the backend while the client does not read (backpressure)', async () => {
      const size = 64 * 1024 * 1024;
      const chunk = Buffer.alloc(256 * 1024, 0x5a);
      let handedToKernel = 0;
      let done: Promise<void> | undefined;
      const { front } = await setup((s) => {
        done = (async () => {
          for (let sent = 0; sent < size; sent += chunk.length) {
            // Counted once the kernel took the chunk (write callback), not when it was queued.
            const ok = s.write(chunk, () => (handedToKernel += chunk.length));
            if (!ok) await once(s, 'drain');
          }
          s.end();
        })();
      });
      const c = await front.connect();
      c.pause();
      await sleep(600);
      const first = handedToKernel;
      await sleep(300);
      // Every buffer on the way is bounded; without backpressure the proxy would take it all.
      expect(handedToKernel).toBe(first);
      expect(first).toBeLessThan(size / 2);
      let got = 0;
      c.on('data', (d: Buffer) => (got += d.length));
      c.resume();
      await once(c, 'end');
      expect(got).toBe(size);
      await done;
    });

    it('close() resets the client and the backend of an open connection', async () => {
      let backendError: Promise<NodeJS.ErrnoException> | undefined;
      const { service, front } = await setup((s) => {
        backendError = errorOf(s);
        s.resume();
      });
      const c = await front.connect();
      const clientError = errorOf(c);
      c.write('x');
      while (backendError === undefined) await sleep(5);
      await service.close();
      expect((await clientError).code).toBe('ECONNRESET');
      expect((await backendError).code).toBe('ECONNRESET');
    });
  });
}
