import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createDiscardService } from '../../../src/services/discard.js';
import { collect, serveOnLoopback, type LoopbackService } from './helpers.js';

describe('discard service over loopback', () => {
  let lo: LoopbackService | undefined;
  afterEach(async () => {
    await lo?.close();
    lo = undefined;
  });

  it('reads everything, sends nothing, and ends after the client ends', async () => {
    lo = await serveOnLoopback(createDiscardService());
    const c = await lo.connect();
    const received = collect(c);
    c.end(randomBytes(4 * 1024 * 1024));
    const back = await received;
    expect(back.length).toBe(0);
    expect(lo.accepted[0]?.bytesRead).toBe(4 * 1024 * 1024);
  });
});
