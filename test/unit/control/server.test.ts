// The control socket server over a real Unix socket in a temporary directory.

import { once } from 'node:events';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ControlClientError, ControlConnection, controlRequest } from '../../../src/control/client.js';
import { MAX_REQUEST_LINE } from '../../../src/control/protocol.js';
import { ControlRequestError, ControlSocketError, startControlServer, type ControlServer } from '../../../src/control/server.js';

const root = mkdtempSync(join(tmpdir(), 'understudy-control-'));
let n = 0;
const freshPath = (): string => join(root, `d${++n}`, 'node.sock');

/** A raw client: write bytes, read reply lines. */
async function raw(path: string): Promise<{ socket: Socket; next: () => Promise<Record<string, unknown>> }> {
  const socket = createConnection(path);
  await once(socket, 'connect');
  const lines: string[] = [];
  const waiters: ((l: string) => void)[] = [];
  let buf = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiters.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  const next = (): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no reply line')), 3000);
      const take = (l: string) => {
        clearTimeout(t);
        resolve(JSON.parse(l) as Record<string, unknown>);
      };
      const l = lines.shift();
      if (l !== undefined) take(l);
      else waiters.push(take);
    });
  return { socket, next };
}

describe('control socket server', () => {
  const servers: ControlServer[] = [];
  const problems: string[] = [];
  const after: (() => void)[] = [];
  const start = async (path = freshPath()): Promise<ControlServer> => {
    const s = await startControlServer({
      path,
      handlers: {
        echo: ({ params }) => params,
        slow: async () => {
          await new Promise((r) => setTimeout(r, 50));
          return 'done';
        },
        refuse: () => {
          throw new ControlRequestError('unavailable', 'not here');
        },
        broken: () => {
          throw new Error('bug');
        },
        later: ({ afterReply }) => {
          afterReply(() => after.push(() => undefined));
          return 'first';
        },
      },
      onProblem: (what, detail) => problems.push(`${what} ${detail}`),
    });
    servers.push(s);
    return s;
  };
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('answers a request by id, with the directory 0700 and the socket 0600', async () => {
    const s = await start();
    expect(await controlRequest(s.path, 'echo', { a: 1 })).toEqual({ a: 1 });
    expect(s.replacedStale).toBe(false);
    expect(statSync(s.path).mode & 0o777).toBe(0o600);
    expect(statSync(join(s.path, '..')).mode & 0o777).toBe(0o700);
  });

  it('matches replies to requests sent together on one connection', async () => {
    const s = await start();
    const conn = await ControlConnection.open(s.path);
    try {
      const [a, b] = await Promise.all([conn.request('slow'), conn.request('echo', { x: 2 })]);
      expect(a).toBe('done');
      expect(b).toEqual({ x: 2 });
    } finally {
      conn.close();
    }
  });

  it('answers garbage with a parse error and keeps serving the same connection', async () => {
    const s = await start();
    const c = await raw(s.path);
    c.socket.write('this is not json\n');
    expect(await c.next()).toMatchObject({ id: null, ok: false, error: { code: 'parse-error' } });
    c.socket.write('{"id":1}\n');
    expect(await c.next()).toMatchObject({ id: 1, ok: false, error: { code: 'invalid-request' } });
    c.socket.write('{"id":2,"method":"nope"}\n');
    const unknown = await c.next();
    expect(unknown).toMatchObject({ id: 2, ok: false, error: { code: 'unknown-method' } });
    expect(String((unknown['error'] as { message: string }).message)).toContain('echo');
    c.socket.write('{"id":3,"method":"echo","params":{"ok":true}}\n');
    expect(await c.next()).toEqual({ id: 3, ok: true, result: { ok: true } });
    c.socket.destroy();
    expect(problems.some((p) => p.includes('parse-error'))).toBe(true);
  });

  it('refuses a line longer than the bound without buffering it, then reads the next request', async () => {
    const s = await start();
    const c = await raw(s.path);
    const huge = Buffer.alloc(MAX_REQUEST_LINE * 4, 0x61);
    c.socket.write(huge);
    expect(await c.next()).toMatchObject({ id: null, ok: false, error: { code: 'line-too-long' } });
    c.socket.write('\n{"id":9,"method":"echo","params":{"after":"huge"}}\n');
    expect(await c.next()).toEqual({ id: 9, ok: true, result: { after: 'huge' } });
    c.socket.destroy();
  });

  it('replies with the handler error code, and "internal" for a bug, and carries on', async () => {
    const s = await start();
    await expect(controlRequest(s.path, 'refuse')).rejects.toMatchObject({ kind: 'remote', remote: { code: 'unavailable', message: 'not here' } });
    await expect(controlRequest(s.path, 'broken')).rejects.toMatchObject({ kind: 'remote', remote: { code: 'internal', message: 'bug' } });
    expect(await controlRequest(s.path, 'echo', { still: 'up' })).toEqual({ still: 'up' });
  });

  it('survives a client that disconnects mid-request or before its reply', async () => {
    const s = await start();
    const a = await raw(s.path);
    a.socket.write('{"id":1,"method":"ec');
    a.socket.destroy();
    const b = await raw(s.path);
    b.socket.end('{"id":1,"method":"slow"}\n'); // gone before the reply is ready
    await new Promise((r) => setTimeout(r, 100));
    b.socket.destroy();
    expect(await controlRequest(s.path, 'echo', { n: 1 })).toEqual({ n: 1 });
  });

  it('runs afterReply work only once the reply is on its way', async () => {
    const s = await start();
    after.length = 0;
    const reply = controlRequest(s.path, 'later');
    expect(after).toHaveLength(0);
    expect(await reply).toBe('first');
    expect(after).toHaveLength(1);
  });

  it('removes its socket file on close', async () => {
    const s = await start();
    expect(existsSync(s.path)).toBe(true);
    await s.close();
    servers.splice(servers.indexOf(s), 1);
    expect(existsSync(s.path)).toBe(false);
  });

  it('replaces a stale socket file left by a crashed node', async () => {
    const path = freshPath();
    // A socket file nobody listens on, as a SIGKILLed node leaves it: a process that bound the
    // path and died without unlinking it.
    mkdirSync(join(path, '..'), { recursive: true });
    const ghost = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect(ghost.signal).toBe('SIGKILL');
    expect(statSync(path).isSocket()).toBe(true);
    await expect(controlRequest(path, 'echo')).rejects.toMatchObject({ kind: 'no-node' });
    const s = await start(path);
    expect(s.replacedStale).toBe(true);
    expect(await controlRequest(s.path, 'echo', { fresh: true })).toEqual({ fresh: true });
  });

  it('refuses to start when a live node answers on the path, and leaves it serving', async () => {
    const first = await start();
    await expect(start(first.path)).rejects.toThrow(ControlSocketError);
    await expect(start(first.path)).rejects.toThrow(`another node is running on control socket ${first.path}`);
    expect(await controlRequest(first.path, 'echo', { first: 1 })).toEqual({ first: 1 });
  });

  it('refuses a path that exists and is not a socket', async () => {
    const path = freshPath();
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, 'precious');
    await expect(start(path)).rejects.toThrow(/exists and is not a socket/);
  });

  it('the client says "no node" when nothing is at the path', async () => {
    const err = await controlRequest(join(root, 'nothing.sock'), 'status').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ControlClientError);
    expect((err as ControlClientError).kind).toBe('no-node');
    expect((err as Error).message).toMatch(/^no node at .*nothing\.sock \(no such socket\)$/);
  });
});
