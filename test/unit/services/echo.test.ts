import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createEchoService } from '../../../src/services/echo.js';
import { collect, expectEchoedExactly, serveOnLoopback, sleep, type LoopbackService } from './helpers.js';

describe('echo service over loopback', () => {
  let lo: LoopbackService | undefined;
  afterEach(async () => {
    await lo?.close();
    lo = undefined;
  });

  it('returns 8 MiB byte-exact and ends after the client ends', async () => {
    lo = await serveOnLoopback(createEchoService());
    const c = await lo.connect();
    await expectEchoedExactly(c, 8 * 1024 * 1024);
  });

  it('stops reading while the client does not read its echo (backpressure)', async () => {
    lo = await serveOnLoopback(createEchoService());
    const c = await lo.connect();
    const data = randomBytes(32 * 1024 * 1024);
    c.pause();
    c.write(data);
    c.end();
    await sleep(400);
    const server = lo.accepted[0];
    if (server === undefined) throw new Error('not accepted');
    const first = server.bytesRead;
    await sleep(300);
    // Without backpressure the server would have read everything into memory by now.
    expect(server.bytesRead).toBe(first);
    expect(first).toBeLessThan(data.length / 2);
    const back = await collect(c);
    expect(back.equals(data)).toBe(true);
  });

  it('close() resets open connections and refuses new ones', async () => {
    const service = createEchoService();
    lo = await serveOnLoopback(service);
    const c = await lo.connect();
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    let error: NodeJS.ErrnoException | undefined;
    c.on('error', (e) => (error = e));
    await service.close();
    await closed;
    expect(error?.code).toBe('ECONNRESET');
    const late = await lo.connect();
    late.on('error', () => {});
    const lateClosed = new Promise<void>((r) => late.once('close', () => r()));
    late.write('x');
    await lateClosed;
    expect(lo.accepted[1]?.bytesWritten ?? 0).toBe(0);
  });
});
