import http from 'node:http';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createStack, type Stack, type StackLogEvent } from '../../../src/stack/stack.js';
import type { Socket } from '../../../src/stack/socket.js';
import { defaultTcpConfig } from '../../../src/stack/tcp/config.js';
import { createMemoryLinkPair } from '../../../src/tun/memory-link.js';

const SERVER = '198.18.0.1';
const CLIENT = '198.18.0.2';
let stacks: Stack[] = [];

function pair(tcp = {}): { server: Stack; client: Stack } {
  const [a, b] = createMemoryLinkPair(1500);
  const server = createStack({ link: a, addresses: [SERVER], tcp });
  const client = createStack({ link: b, addresses: [CLIENT], tcp });
  stacks.push(server, client);
  return { server, client };
}

afterEach(async () => {
  for (const s of stacks) await s.close();
  stacks = [];
});

function collect(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  return new Promise((resolve, reject) => {
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
}

function pattern(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** Resolves once `f()` stops changing for a few macrotask turns. */
async function settled(f: () => number): Promise<number> {
  let last = -1;
  let same = 0;
  while (same < 20) {
    await new Promise((r) => setTimeout(r, 5));
    const v = f();
    same = v === last ? same + 1 : 0;
    last = v;
  }
  return last;
}

describe('http.Server over stack sockets', () => {
  it('ESTABLISHED via stack.connect, three requests through a keep-alive Agent: http.Server answers all on one connection', async () => {
    const { server, client } = pair();
    const httpServer = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => res.end(`${req.method} ${req.url} ${body.length}`));
    });
    let accepted = 0;
    server
      .createServer((s) => {
        accepted++;
        httpServer.emit('connection', s);
      })
      .listen(80);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    (agent as unknown as { createConnection: unknown }).createConnection = (_o: unknown, cb: (e: Error | null, s: Socket) => void) => {
      const s = client.connect({ host: SERVER, port: 80 });
      s.once('connect', () => cb(null, s));
      s.once('error', (e) => cb(e, s));
      return undefined;
    };
    const request = (method: string, path: string, body?: string): Promise<{ status: number; text: string }> =>
      new Promise((resolve, reject) => {
        const req = http.request({ agent, host: SERVER, port: 80, method, path }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        });
        req.on('error', reject);
        req.end(body);
      });
    expect(await request('GET', '/a')).toEqual({ status: 200, text: 'GET /a 0' });
    expect(await request('POST', '/b', 'x'.repeat(100_000))).toEqual({ status: 200, text: 'POST /b 100000' });
    expect(await request('GET', '/c')).toEqual({ status: 200, text: 'GET /c 0' });
    expect(accepted).toBe(1);
    agent.destroy();
    httpServer.close();
  });
});

describe('socket data path', () => {
  it('ESTABLISHED: twice the send buffer echoed both ways arrives byte-exact, and write() signals backpressure with drain', async () => {
    const { server, client } = pair();
    server.createServer((s) => s.pipe(s)).listen(7);
    const s = client.connect({ host: SERVER, port: 7 });
    await once(s, 'connect');
    // More than the send buffer holds, so that the writer must see backpressure.
    const data = pattern(2 * defaultTcpConfig().sndBuf);
    const got = collect(s);
    let sawFalse = false;
    let drains = 0;
    s.on('drain', () => drains++);
    for (let off = 0; off < data.length; off += 65536) {
      if (!s.write(data.subarray(off, off + 65536))) {
        sawFalse = true;
        await once(s, 'drain');
      }
    }
    s.end();
    const echoed = await got;
    expect(echoed.equals(data)).toBe(true);
    expect(sawFalse).toBe(true);
    expect(drains).toBeGreaterThan(0);
    expect(s.bytesWritten).toBe(data.length);
    expect(s.bytesRead).toBe(data.length);
  });

  it('ESTABLISHED with the reader paused: the window closes and the writer stalls within the buffers, then completes on resume', async () => {
    const buf = 64 * 1024;
    const { server, client } = pair({ rcvBuf: buf, sndBuf: buf });
    let serverSocket: Socket | undefined;
    server.createServer({ pauseOnConnect: true }, (s) => (serverSocket = s)).listen(9);
    const s = client.connect({ host: SERVER, port: 9 });
    await once(s, 'connect');
    const data = pattern(1024 * 1024, 7);
    s.end(data);
    const stalled = await settled(() => s.bytesWritten);
    // Paused reader: at most its receive buffer plus the sender's send buffer can have left the
    // writer, far from the whole megabyte.
    expect(stalled).toBeLessThanOrEqual(2 * buf + 4096);
    expect(serverSocket).toBeDefined();
    const got = collect(serverSocket!);
    serverSocket!.resume();
    expect((await got).equals(data)).toBe(true);
  });

  it('ESTABLISHED with allowHalfOpen false, peer FIN: our side ends after our writes and both sockets close', async () => {
    const { server, client } = pair();
    let serverEnded = false;
    server
      .createServer((s) => {
        s.on('end', () => (serverEnded = true));
        s.resume();
      })
      .listen(7);
    const s = client.connect({ host: SERVER, port: 7 });
    await once(s, 'connect');
    s.resume();
    s.end('bye');
    expect(await once(s, 'close')).toEqual([false]);
    expect(serverEnded).toBe(true);
    expect(s.readyState).toBe('closed');
  });

  it('CLOSE-WAIT with allowHalfOpen true: the server still writes after the peer FIN and the client reads it', async () => {
    const { server, client } = pair();
    server
      .createServer({ allowHalfOpen: true }, (s) => {
        s.resume();
        s.on('end', () => s.end('late reply'));
      })
      .listen(7);
    const s = client.connect({ host: SERVER, port: 7, allowHalfOpen: true });
    const got = collect(s);
    s.end('request');
    expect((await got).toString()).toBe('late reply');
  });
});

describe('socket errors', () => {
  it('SYN-SENT, RST from a port with no listener: error ECONNREFUSED', async () => {
    const { client } = pair();
    const s = client.connect({ host: SERVER, port: 81 });
    const [err] = (await once(s, 'error')) as [Error & { code: string }];
    expect(err.code).toBe('ECONNREFUSED');
  });

  it('ESTABLISHED, peer calls resetAndDestroy: error ECONNRESET', async () => {
    const { server, client } = pair();
    server.createServer((s) => s.resetAndDestroy()).listen(7);
    const s = client.connect({ host: SERVER, port: 7 });
    const closed = new Promise((resolve) => s.once('close', (hadError: boolean) => resolve([hadError])));
    const [err] = (await once(s, 'error')) as [Error & { code: string }];
    expect(err.code).toBe('ECONNRESET');
    expect(await closed).toEqual([true]);
    expect(client.connectionCount).toBe(0);
  });

  it('LISTEN already on the port, second listen: error EADDRINUSE', async () => {
    const { server } = pair();
    server.createServer().listen(7);
    const second = server.createServer().listen(7);
    const [err] = (await once(second, 'error')) as [Error & { code: string }];
    expect(err.code).toBe('EADDRINUSE');
  });
});

describe('socket and server life cycle', () => {
  it('ESTABLISHED and idle past setTimeout: timeout is emitted and the socket stays open', async () => {
    const { server, client } = pair();
    server.createServer((s) => s.resume()).listen(7);
    const s = client.connect({ host: SERVER, port: 7 });
    await once(s, 'connect');
    s.setTimeout(30);
    await once(s, 'timeout');
    expect(s.readyState).toBe('open');
  });

  it('LISTEN, server close with a connection open: new SYNs are refused and close waits for the connection', async () => {
    const { server, client } = pair();
    let accepted: Socket | undefined;
    const srv = server.createServer((s) => {
      accepted = s;
      s.resume();
    });
    srv.listen(7);
    await once(srv, 'listening');
    expect(srv.address()).toEqual({ address: '0.0.0.0', family: 'IPv4', port: 7 });
    const s = client.connect({ host: SERVER, port: 7 });
    s.resume();
    await once(s, 'connect');
    await new Promise((r) => setTimeout(r, 10));
    let closed = false;
    srv.close(() => (closed = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(closed).toBe(false);
    // New connections are refused once the listener is gone.
    const refused = client.connect({ host: SERVER, port: 7 });
    const [err] = (await once(refused, 'error')) as [Error & { code: string }];
    expect(err.code).toBe('ECONNREFUSED');
    accepted!.end();
    s.end();
    await once(srv, 'close');
    expect(closed).toBe(true);
  });

  it('SYN-SENT then ESTABLISHED: readyState, addresses and ports read like net.Socket', async () => {
    const { server, client } = pair();
    let remote = '';
    server.createServer((s) => (remote = `${s.remoteAddress}:${s.remotePort} ${s.localAddress}:${s.localPort} ${s.remoteFamily}`)).listen(80);
    const s = client.connect({ host: SERVER, port: 80 });
    expect(s.readyState).toBe('opening');
    await once(s, 'connect');
    expect(s.readyState).toBe('open');
    expect(s.remoteAddress).toBe(SERVER);
    expect(s.remotePort).toBe(80);
    expect(s.localAddress).toBe(CLIENT);
    await new Promise((r) => setTimeout(r, 10));
    expect(remote).toBe(`${CLIENT}:${s.localPort} ${SERVER}:80 IPv4`);
  });

  it('ESTABLISHED, stack.close on one side: the peer sees its FIN and the log tells the story', async () => {
    const [a, b] = createMemoryLinkPair(1500);
    const events: StackLogEvent[] = [];
    const server = createStack({ link: a, addresses: [SERVER], log: (e) => events.push(e) });
    const client = createStack({ link: b, addresses: [CLIENT] });
    stacks.push(client);
    server.createServer((s) => s.resume()).listen(7);
    const s = client.connect({ host: SERVER, port: 7 });
    s.resume();
    await once(s, 'connect');
    await new Promise((r) => setTimeout(r, 10));
    const ended = once(s, 'end');
    await server.close();
    await ended;
    expect(events.map((e) => e.type)).toEqual(['listen', 'accept', 'unlisten', 'closed']);
    expect(events[1]).toEqual({ type: 'accept', local: `${SERVER}:7`, remote: `${CLIENT}:${s.localPort}` });
    expect(() => server.connect({ host: CLIENT, port: 1 })).toThrow();
  });
});

describe('service boundaries on stack sockets', () => {
  it('boundary: offsets count bytes the service consumed (not those still buffered) and bytes it wrote (also those not yet in the send buffer)', async () => {
    const buf = 16 * 1024;
    const { server, client } = pair({ rcvBuf: buf, sndBuf: buf });
    let serverSocket: Socket | undefined;
    server.createServer({ pauseOnConnect: true }, (sock) => (serverSocket = sock)).listen(11);
    const s = client.connect({ host: SERVER, port: 11 });
    await once(s, 'connect');
    s.write(pattern(3000));
    await settled(() => serverSocket?.readableLength ?? 0);
    const ss = serverSocket!;
    // Paused: nothing consumed yet, although the bytes may sit in the readable buffer.
    expect(ss.serviceOffsets).toEqual({ input: 0, output: 0 });
    const first = ss.read(1000) as Buffer;
    expect(first.length).toBe(1000);
    expect(ss.serviceOffsets.input).toBe(1000);
    // A write far beyond the send buffer: the service has written it all, the core took a part.
    ss.write(pattern(100_000, 3));
    expect(ss.bytesWritten).toBeLessThan(100_000);
    expect(ss.serviceOffsets).toEqual({ input: 1000, output: 100_000 });
    ss.write('abc');
    expect(ss.serviceOffsets.output).toBe(100_003);
    s.resume();
    await settled(() => ss.bytesWritten);
    expect(ss.bytesWritten).toBe(100_003);
    expect(ss.serviceOffsets).toEqual({ input: 1000, output: 100_003 });
  });
});
