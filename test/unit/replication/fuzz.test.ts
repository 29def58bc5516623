// Robustness: 20,000 seeded cases of random bytes, truncations, bit flips, byte overwrites and
// random length fields, through the batch decoder and the frame decoder. Nothing may throw; every
// failure must carry a reason; every success must be stable under re-encoding.

import { describe, expect, it } from 'vitest';
import { helloMac, type ReplicationKey, parseKey } from '../../../src/replication/auth.js';
import { decodeBatch, decodeRecord, encodeBatch, encodeRecord } from '../../../src/replication/codec.js';
import { FrameDecoder, FrameSealer, openFrame } from '../../../src/replication/framing.js';
import type { LogRecord } from '../../../src/replication/log-records.js';
import { sampleRecords } from './records.js';
import { seededRandom } from '../stack/helpers.js';

const ITERATIONS = 20_000;

/** A plain assertion: expect() per case would make the run several times slower. */
function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}

function concat(chunks: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(chunks));
}

describe('replication decoders under fuzzing', () => {
  it('never throw on 20,000 random, truncated and mutated batches, and decode stably when they accept', () => {
    const r = seededRandom(0x5eed);
    const below = (n: number): number => r() % n;
    const samples = sampleRecords();
    const valid = (): Uint8Array => {
      const n = 1 + below(6);
      const picked: LogRecord[] = [];
      for (let i = 0; i < n; i++) picked.push(samples[below(samples.length)]);
      return concat(encodeBatch(picked.map(encodeRecord)).chunks);
    };
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      let b: Uint8Array;
      const mode = below(6);
      if (mode === 0) {
        b = new Uint8Array(below(200));
        for (let j = 0; j < b.length; j++) b[j] = r() & 0xff;
      } else {
        b = valid();
        if (mode === 1) b = b.subarray(0, below(b.length + 1));
        else if (mode === 2) for (let k = 1 + below(4); k > 0; k--) b[below(b.length)] ^= 1 << below(8);
        else if (mode === 3) b[below(b.length)] = r() & 0xff;
        else if (mode === 4) {
          // A random length field: the record header's variable length or the fixed-part length.
          const at = 4 + (below(2) === 0 ? 16 : 2);
          new DataView(b.buffer).setUint32(Math.min(at, b.length - 4), r(), true);
        }
      }
      let out: ReturnType<typeof decodeBatch>;
      try {
        out = decodeBatch(b);
      } catch (e) {
        throw new Error(`case ${i} (mode ${mode}) threw: ${String(e)}`);
      }
      if ('error' in out) {
        check(typeof out.error === 'string' && out.error.length > 0, `case ${i}: empty reason`);
        refused++;
        continue;
      }
      accepted++;
      // Whatever was accepted must encode and decode to the same records (NaN-tolerant equality).
      const again = decodeBatch(concat(encodeBatch(out.map(encodeRecord)).chunks));
      check(!('error' in again), `case ${i}: re-encoding an accepted batch failed`);
      expect(again).toEqual(out);
      for (const rec of out) check(!('error' in decodeRecord(concat(encodeRecord(rec).chunks))), `case ${i}: record re-decode`);
    }
    expect(accepted).toBeGreaterThan(ITERATIONS / 10);
    expect(refused).toBeGreaterThan(ITERATIONS / 10);
  });

  it('frame decoding never throws on 20,000 cut and corrupted streams, and delivers intact streams whole', () => {
    const r = seededRandom(0xf00d);
    const below = (n: number): number => r() % n;
    const key: ReplicationKey = parseKey(new Uint8Array(32).fill(3));
    const samples = sampleRecords().map(encodeRecord);
    for (let i = 0; i < ITERATIONS; i++) {
      const sealer = new FrameSealer(helloMac(key, 'dialer-to-listener'));
      const frames: Uint8Array[] = [];
      const n = 1 + below(4);
      for (let k = 0; k < n; k++) {
        const kind = below(3);
        const m =
          kind === 0
            ? ({ type: 'records', records: samples.slice(0, 1 + below(samples.length)) } as const)
            : kind === 1
              ? ({ type: 'ack', lsn: r() } as const)
              : ({ type: 'heartbeat', epoch: r(), lsn: r(), clockUs: r() } as const);
        frames.push(concat(sealer.seal(m)));
      }
      const stream = concat(frames);
      const corrupt = below(3) === 0;
      if (corrupt) stream[below(stream.length)] ^= 1 << below(8);
      const dec = new FrameDecoder({ mac: helloMac(key, 'dialer-to-listener'), maxBody: 1 << 20 });
      let got = 0;
      let error: string | null = null;
      try {
        let at = 0;
        while (at < stream.length && error === null) {
          const cut = Math.min(stream.length, at + 1 + below(64));
          dec.push(stream.subarray(at, cut));
          at = cut;
          for (let f = dec.next(); f !== null; f = dec.next()) {
            if ('error' in f) {
              error = f.error;
              break;
            }
            const m = openFrame(f);
            if ('error' in m) {
              error = m.error;
              break;
            }
            got++;
          }
        }
      } catch (e) {
        throw new Error(`case ${i} threw: ${String(e)}`);
      }
      // A corrupted length field can also leave the decoder waiting for bytes that never come.
      if (corrupt) check((error !== null && error.length > 0) || (got < n && dec.bufferedBytes > 0), `case ${i}: a corrupted stream was accepted`);
      else check(error === null && got === n, `case ${i}: intact stream gave ${got}/${n} frames, error ${error}`);
    }
  });
});
