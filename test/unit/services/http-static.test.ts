import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createHttpStaticService } from '../../../src/services/http-static.js';
import { httpStaticSuite } from './http-static-suite.js';
import { serveOnLoopback } from './helpers.js';

httpStaticSuite('http-static over loopback', {
  async start(service) {
    const lo = await serveOnLoopback(service);
    return { connect: () => lo.connect(), close: () => lo.close() };
  },
});

describe('http-static streaming', () => {
  it('reads the file only as fast as the client takes it (backpressure)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'understudy-stream-'));
    const size = 64 * 1024 * 1024;
    writeFileSync(join(dir, 'huge.bin'), Buffer.alloc(size, 7));
    const lo = await serveOnLoopback(createHttpStaticService(dir));
    try {
      const c = await lo.connect();
      c.pause();
      c.write('GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n');
      await new Promise((r) => setTimeout(r, 500));
      const s = lo.accepted[0];
      if (s === undefined) throw new Error('not accepted');
      // Sent to the kernel plus queued in the socket: bounded by buffers, not by the file size.
      const taken = s.bytesWritten + s.writableLength;
      expect(taken).toBeLessThan(size / 4);
      let received = 0;
      c.on('data', (d: Buffer) => (received += d.length));
      c.resume();
      while (received < size) await new Promise((r) => setTimeout(r, 20));
      expect(received).toBeGreaterThan(size);
    } finally {
      await lo.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
