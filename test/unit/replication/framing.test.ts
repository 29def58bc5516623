import { describe, expect, it } from 'vitest';
import { MAC_BYTES, SESSION_TAG_BYTES, helloMac, parseKey, sessionMac } from '../../../src/replication/auth.js';
import { encodeRecord } from '../../../src/replication/codec.js';
import {
  FRAME_HEADER_BYTES,
  FRAME_VERSION,
  FrameDecoder,
  FrameSealer,
  openFrame,
  type FrameError,
  type Message,
  type OutgoingMessage,
  type VerifiedFrame,
} from '../../../src/replication/framing.js';
import { sampleRecords } from './records.js';

const key = parseKey(new Uint8Array(32).fill(9));
const wrongKey = parseKey(new Uint8Array(32).fill(8));
const D2L = 'dialer-to-listener' as const;

function bytes(chunks: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(chunks));
}

function drain(dec: FrameDecoder): (VerifiedFrame | FrameError)[] {
  const out: (VerifiedFrame | FrameError)[] = [];
  for (let f = dec.next(); f !== null; f = dec.next()) {
    out.push(f);
    if ('error' in f) break;
  }
  return out;
}

function messages(dec: FrameDecoder): (Message | FrameError)[] {
  return drain(dec).map((f) => ('error' in f ? f : openFrame(f)));
}

const hello: OutgoingMessage = { type: 'hello', role: 'backup', epoch: 4, nodeId: 'node-b', nonce: new Uint8Array(16).fill(5), lastLsn: 2 ** 40 };

describe('frames', () => {
  it('carry every message type intact', () => {
    const sealer = new FrameSealer(helloMac(key, D2L));
    const dec = new FrameDecoder({ mac: helloMac(key, D2L) });
    const records = sampleRecords();
    const sent: OutgoingMessage[] = [
      hello,
      { type: 'records', records: records.map(encodeRecord) },
      { type: 'ack', lsn: 123456789012 },
      { type: 'heartbeat', epoch: 4, lsn: 77, clockUs: 1_764_000_000_000_000 },
    ];
    for (const m of sent) dec.push(bytes(sealer.seal(m)));
    expect(messages(dec)).toEqual([hello, { type: 'records', records }, sent[2], sent[3]]);
  });

  it('lay out magic, version, type, length and counter in a 16-byte header, MAC last', () => {
    const sealer = new FrameSealer(helloMac(key, D2L));
    sealer.seal({ type: 'ack', lsn: 1 });
    const f = bytes(sealer.seal({ type: 'ack', lsn: 1 }));
    expect([...f.subarray(0, 4)]).toEqual([0x55, 0x53, FRAME_VERSION, 3]);
    expect(new DataView(f.buffer).getUint32(4, true)).toBe(8);
    expect(new DataView(f.buffer).getUint32(8, true)).toBe(1);
    expect(f.length).toBe(FRAME_HEADER_BYTES + 8 + MAC_BYTES);
  });

  it('reassemble from one-byte chunks and from chunks spanning several frames', () => {
    const sealer = new FrameSealer(helloMac(key, D2L));
    const stream = bytes([1, 2, 3, 4, 5].map((lsn) => bytes(sealer.seal({ type: 'ack', lsn }))));
    const one = new FrameDecoder({ mac: helloMac(key, D2L) });
    const got: (Message | FrameError)[] = [];
    for (const b of stream) {
      one.push(Uint8Array.of(b));
      got.push(...messages(one));
    }
    expect(got.map((m) => ('lsn' in m ? m.lsn : m))).toEqual([1, 2, 3, 4, 5]);
    const big = new FrameDecoder({ mac: helloMac(key, D2L) });
    big.push(stream.subarray(0, 70));
    big.push(stream.subarray(70));
    expect(messages(big).map((m) => ('lsn' in m ? m.lsn : m))).toEqual([1, 2, 3, 4, 5]);
    expect(big.bufferedBytes).toBe(0);
  });

  it('refuse an oversized length as soon as the header arrives', () => {
    const sealer = new FrameSealer(helloMac(key, D2L));
    const f = bytes(sealer.seal({ type: 'records', records: [encodeRecord({ kind: 'output', lsn: 1, conn: 1, offset: 0, data: new Uint8Array(2000), fin: false })] }));
    const dec = new FrameDecoder({ mac: helloMac(key, D2L), maxBody: 1024 });
    dec.push(f.subarray(0, FRAME_HEADER_BYTES));
    expect(dec.next()).toEqual({ kind: 'protocol', error: expect.stringMatching(/exceeds the 1024-byte limit/) });
    expect(dec.bufferedBytes).toBe(0);
  });

  it('refuse another version, an unknown type and a stream that is not ours', () => {
    const sealer = new FrameSealer(helloMac(key, D2L));
    const f = bytes(sealer.seal({ type: 'ack', lsn: 1 }));
    const v1 = Uint8Array.from(f);
    v1[2] = 1;
    // 2: a node from before output digests carried 16 bytes (its CRC-32 records would misdecode).
    const v2 = Uint8Array.from(f);
    v2[2] = 2;
    const t9 = Uint8Array.from(f);
    t9[3] = 9;
    const cases: [Uint8Array, RegExp][] = [
      [v1, /frame version 1, this node speaks 3/],
      [v2, /frame version 2, this node speaks 3/],
      [t9, /unknown message type 9/],
      [new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n'), /bad magic/],
      [Uint8Array.of(0x55, 0x00), /bad magic/],
    ];
    for (const [b, why] of cases) {
      const dec = new FrameDecoder({ mac: helloMac(key, D2L) });
      dec.push(b);
      expect(dec.next()).toEqual({ kind: 'protocol', error: expect.stringMatching(why) });
    }
  });

  it('refuse a frame under the wrong key or with any bit flipped, and stay failed', () => {
    const good = bytes(new FrameSealer(helloMac(key, D2L)).seal(hello));
    const dec = new FrameDecoder({ mac: helloMac(wrongKey, D2L) });
    dec.push(good);
    const refusal = dec.next();
    expect(refusal).toEqual({ kind: 'auth', error: expect.stringMatching(/bad MAC on a hello frame/) });
    dec.push(good);
    expect(dec.next()).toBe(refusal);
    for (const at of [FRAME_HEADER_BYTES + 3, good.length - 1]) {
      const flipped = Uint8Array.from(good);
      flipped[at] ^= 0x10;
      const d = new FrameDecoder({ mac: helloMac(key, D2L) });
      d.push(flipped);
      expect(d.next()).toMatchObject({ kind: 'auth' });
    }
  });

  it('refuse a hello reflected back to its sender', () => {
    const mine = bytes(new FrameSealer(helloMac(key, D2L)).seal(hello));
    const dec = new FrameDecoder({ mac: helloMac(key, 'listener-to-dialer') });
    dec.push(mine);
    expect(dec.next()).toMatchObject({ kind: 'auth', error: expect.stringMatching(/bad MAC/) });
  });

  it('refuse a replayed frame and a reordered one by their counters', () => {
    const mac = sessionMac(key, D2L, new Uint8Array(16), new Uint8Array(16).fill(1));
    const sealer = new FrameSealer(mac);
    const f0 = bytes(sealer.seal({ type: 'ack', lsn: 1 }));
    const f1 = bytes(sealer.seal({ type: 'ack', lsn: 2 }));
    const f2 = bytes(sealer.seal({ type: 'ack', lsn: 3 }));
    const replay = new FrameDecoder({ mac });
    replay.push(f0);
    replay.push(f1);
    replay.push(f1);
    expect(drain(replay).map((f) => ('error' in f ? f.error : f.counter))).toEqual([0, 1, 'frame counter 1, expected 2: replayed or reordered frame']);
    const reorder = new FrameDecoder({ mac });
    reorder.push(f0);
    reorder.push(f2);
    expect(drain(reorder)[1]).toEqual({ kind: 'auth', error: 'frame counter 2, expected 1: replayed or reordered frame' });
  });

  it('session frames end in a 16-byte tag, and a flipped bit anywhere is refused', () => {
    const mac = sessionMac(key, D2L, new Uint8Array(16), new Uint8Array(16).fill(1));
    const f = bytes(new FrameSealer(mac).seal({ type: 'ack', lsn: 9 }));
    expect(f.length).toBe(FRAME_HEADER_BYTES + 8 + SESSION_TAG_BYTES);
    const ok = new FrameDecoder({ mac });
    ok.push(f);
    expect(ok.next()).toMatchObject({ type: 'ack', counter: 0 });
    for (const at of [3, 8, FRAME_HEADER_BYTES + 2, f.length - 1]) {
      const bad = Uint8Array.from(f);
      bad[at]! ^= 0x10;
      const dec = new FrameDecoder({ mac });
      dec.push(bad);
      expect(dec.next(), `bit flipped at byte ${at}`).toHaveProperty('error');
    }
  });

  it('refuse frames of another session even with the right counter', () => {
    const a = new FrameSealer(sessionMac(key, D2L, new Uint8Array(16), new Uint8Array(16).fill(1)));
    const dec = new FrameDecoder({ mac: sessionMac(key, D2L, new Uint8Array(16), new Uint8Array(16).fill(2)) });
    dec.push(bytes(a.seal({ type: 'ack', lsn: 1 })));
    expect(dec.next()).toMatchObject({ kind: 'auth' });
  });

  it('report a well-authenticated but malformed body as a protocol error', () => {
    const sealer = new FrameSealer(helloMac(key, D2L));
    const dec = new FrameDecoder({ mac: helloMac(key, D2L) });
    // A records message whose batch claims more records than it holds.
    dec.push(bytes(sealer.seal({ type: 'records', records: [] })));
    const f = dec.next() as VerifiedFrame;
    expect(openFrame(f)).toEqual({ type: 'records', records: [] });
    const bad: VerifiedFrame = { ...f, body: Uint8Array.of(5, 0, 0, 0) };
    expect(openFrame(bad)).toEqual({ kind: 'protocol', error: expect.stringMatching(/^records message: batch claims 5 records/) });
  });

  it('carry the handover messages intact, a long refusal cut at a character boundary', () => {
    const sealer = new FrameSealer(helloMac(key, D2L));
    const dec = new FrameDecoder({ mac: helloMac(key, D2L) });
    const sent: OutgoingMessage[] = [
      { type: 'handover', epoch: 3, lastLsn: 2 ** 45 + 7 },
      { type: 'handover-done', epoch: 4, takeoverMs: 12.345 },
      { type: 'handover-refused', reason: 'this backup applied up to LSN 9, the handover names 12' },
      { type: 'handover-refused', reason: 'é'.repeat(200) },
    ];
    for (const m of sent) dec.push(bytes(sealer.seal(m)));
    const got = messages(dec);
    expect(got.slice(0, 3)).toEqual(sent.slice(0, 3));
    // 255 bytes hold 127 two-byte characters: the cut never splits one.
    expect(got[3]).toEqual({ type: 'handover-refused', reason: 'é'.repeat(127) });
    expect([...bytes(new FrameSealer(helloMac(key, D2L)).seal(sent[0]!)).subarray(0, 4)]).toEqual([0x55, 0x53, FRAME_VERSION, 5]);
  });

  it('refuse malformed handover bodies as protocol errors', () => {
    const sealer = new FrameSealer(helloMac(key, D2L));
    const dec = new FrameDecoder({ mac: helloMac(key, D2L) });
    dec.push(bytes(sealer.seal({ type: 'handover', epoch: 1, lastLsn: 1 })));
    const f = dec.next() as VerifiedFrame;
    const lsnTooBig = new Uint8Array(16);
    new DataView(lsnTooBig.buffer).setUint32(0, 1, true);
    new DataView(lsnTooBig.buffer).setUint32(12, 0xffffffff, true);
    const cases: [VerifiedFrame, RegExp][] = [
      [{ ...f, body: new Uint8Array(15) }, /^handover message: handover body of 15 bytes, expected 16/],
      [{ ...f, body: new Uint8Array(16) }, /^handover message: handover with epoch 0/],
      [{ ...f, body: lsnTooBig }, /^handover message: handover figure beyond 2\^53/],
      [{ ...f, type: 'handover-done', body: new Uint8Array(17) }, /^handover-done message: handover-done body of 17 bytes/],
      [{ ...f, type: 'handover-refused', body: Uint8Array.of(5, 0x61) }, /^handover-refused message: handover-refused reason length does not match/],
      [{ ...f, type: 'handover-refused', body: new Uint8Array(0) }, /^handover-refused message: handover-refused reason length does not match/],
    ];
    for (const [frame, why] of cases) expect(openFrame(frame)).toEqual({ kind: 'protocol', error: expect.stringMatching(why) });
  });

  it('refuse a handover sealed under the wrong key', () => {
    const dec = new FrameDecoder({ mac: helloMac(wrongKey, D2L) });
    dec.push(bytes(new FrameSealer(helloMac(key, D2L)).seal({ type: 'handover', epoch: 2, lastLsn: 10 })));
    expect(dec.next()).toEqual({ kind: 'auth', error: expect.stringMatching(/bad MAC on a handover frame/) });
  });
});
