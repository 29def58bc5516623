// The receive side of the replication link's fault injection finds frame boundaries from the
// header alone; whatever way TCP cuts the stream, the pieces of each frame must add up to it.

import { describe, expect, it } from 'vitest';
import { helloMac, parseKey, sessionMac } from '../../../src/replication/auth.js';
import { FrameCutter } from '../../../src/replication/frame-cutter.js';
import { FrameSealer } from '../../../src/replication/framing.js';

const KEY = parseKey(new Uint8Array(32).fill(0xc3));

/** A session's stream: the hello (32-byte HMAC), then frames under the session key (16-byte GMAC tags). */
function frames(n: number): Buffer[] {
  const sealer = new FrameSealer(helloMac(KEY, 'dialer-to-listener'));
  const hello = Buffer.concat(sealer.seal({ type: 'hello', role: 'backup', epoch: 1, nodeId: 'b', nonce: new Uint8Array(16), lastLsn: 0 }));
  sealer.setMac(sessionMac(KEY, 'dialer-to-listener', new Uint8Array(16), new Uint8Array(16).fill(1)));
  const rest = Array.from({ length: n - 1 }, (_, i) => Buffer.concat(sealer.seal(i % 2 === 0 ? { type: 'ack', lsn: i } : { type: 'heartbeat', epoch: 1, lsn: i, clockUs: i * 1000 })));
  return [hello, ...rest];
}

function cutAll(stream: Buffer, step: number, cutter = new FrameCutter()): { frames: Buffer[]; open: Buffer } {
  const out: Buffer[] = [];
  let cur: Buffer[] = [];
  for (let at = 0; at < stream.length; at += step) {
    cutter.cut(stream.subarray(at, at + step), (piece, end) => {
      cur.push(Buffer.from(piece));
      if (end) {
        out.push(Buffer.concat(cur));
        cur = [];
      }
    });
  }
  return { frames: out, open: Buffer.concat(cur) };
}

describe('frame cutter', () => {
  it('finds every frame whatever the chunk size, from 1 byte to several frames at once', () => {
    const fs = frames(9);
    const stream = Buffer.concat(fs);
    for (const step of [1, 7, 16, 17, 55, 56, 57, 200, stream.length]) {
      const r = cutAll(stream, step);
      expect(r.frames, `step ${step}`).toEqual(fs);
      expect(r.open.length).toBe(0);
    }
  });

  it('hands a stream with a bad magic on unframed, for the decoder to refuse', () => {
    const stream = Buffer.concat([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), ...frames(2)]);
    const r = cutAll(stream, 10);
    expect(r.frames).toEqual([]);
    expect(r.open.equals(stream)).toBe(true);
  });

  it('hands a header with a length over the limit on unframed', () => {
    const f = frames(1)[0] as Buffer;
    const big = Buffer.from(f);
    big.writeUInt32LE(1 << 20, 4);
    const r = cutAll(big, 5, new FrameCutter(1024));
    expect(r.frames).toEqual([]);
    expect(r.open.equals(big)).toBe(true);
  });
});
