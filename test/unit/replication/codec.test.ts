import { describe, expect, it } from 'vitest';
import {
  RECORD_HEADER_BYTES,
  decodeBatch,
  decodeRecord,
  decodeStructured,
  encodeBatch,
  encodeRecord,
  encodeStructured,
  recordBytes,
} from '../../../src/replication/codec.js';
import { MAX_REASON_BYTES, type InputRecord, type SnapshotRecord, type SnapshotState } from '../../../src/replication/log-records.js';
import { restoreConnection, type TcbSnapshot } from '../../../src/stack/tcp/snapshot.js';
import { MS, bytes, established, plainConfig, seg, testEnv } from '../tcp/harness.js';
import { sampleRecords, sampleSnapshotState } from './records.js';

/** A fresh, unpooled buffer, so that DataViews over `.buffer` start at offset 0. */
function concat(chunks: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(chunks));
}

describe('record codec', () => {
  it('round-trips a record of every kind', () => {
    for (const r of sampleRecords()) {
      const decoded = decodeRecord(recordBytes(encodeRecord(r)));
      expect(decoded, r.kind).toEqual(r);
    }
  });

  it('writes a little-endian header with kind, connection id, LSN and variable length', () => {
    const r: InputRecord = { kind: 'input', lsn: 2 ** 32 + 5, conn: 0x01020304, offset: 0, data: new Uint8Array(3), rcvNxt: 0, fin: true };
    const b = recordBytes(encodeRecord(r));
    const dv = new DataView(b.buffer);
    expect(dv.getUint8(0)).toBe(2);
    expect(dv.getUint8(1)).toBe(1);
    expect(dv.getUint16(2, true)).toBe(12);
    expect(dv.getUint32(4, true)).toBe(0x01020304);
    expect(dv.getUint32(8, true)).toBe(5);
    expect(dv.getUint32(12, true)).toBe(1);
    expect(dv.getUint32(16, true)).toBe(3);
    expect(b.length).toBe(RECORD_HEADER_BYTES + 12 + 3);
  });

  it('references payload bytes on encode instead of copying them', () => {
    const data = new Uint8Array(1000).fill(7);
    const e = encodeRecord({ kind: 'output', lsn: 1, conn: 1, offset: 0, data, fin: false });
    expect(e.chunks).toContain(data);
    expect(e.byteLength).toBe(RECORD_HEADER_BYTES + 8 + 1000);
  });

  it('decodes payloads as views into the received buffer', () => {
    const body = concat(encodeBatch([encodeRecord({ kind: 'input', lsn: 1, conn: 1, offset: 0, data: new Uint8Array([1, 2, 3]), rcvNxt: 4, fin: false })]).chunks);
    const records = decodeBatch(body);
    if ('error' in records) throw new Error(records.error);
    const r = records[0] as InputRecord;
    expect(r.data.buffer).toBe(body.buffer);
    body[body.length - 1] = 99;
    expect(r.data[2]).toBe(99);
  });

  it('round-trips a batch of every kind in order', () => {
    const records = sampleRecords();
    const batch = encodeBatch(records.map(encodeRecord));
    const body = concat(batch.chunks);
    expect(body.length).toBe(batch.byteLength);
    expect(decodeBatch(body)).toEqual(records);
  });

  it('cuts an overlong reason at the byte limit', () => {
    const r = decodeRecord(recordBytes(encodeRecord({ kind: 'close', lsn: 1, conn: 1, reason: 'x'.repeat(5000) })));
    expect(r).toMatchObject({ kind: 'close', reason: 'x'.repeat(MAX_REASON_BYTES) });
  });

  it('refuses to encode out-of-range fields', () => {
    const base = sampleRecords()[1] as InputRecord;
    expect(() => encodeRecord({ ...base, lsn: -1 })).toThrow(/lsn/);
    expect(() => encodeRecord({ ...base, lsn: 2 ** 53 })).toThrow(/lsn/);
    expect(() => encodeRecord({ ...base, conn: 2 ** 32 })).toThrow(/conn/);
    expect(() => encodeRecord({ ...base, rcvNxt: 1.5 })).toThrow(/rcvNxt/);
    expect(() => encodeRecord({ kind: 'snapshot', lsn: 1, conn: 1, state: { ...sampleSnapshotState(), tuple: new Map() } as never, retained: [] })).toThrow(/cannot encode/);
  });

  it('reports garbage as errors with a reason', () => {
    const good = recordBytes(encodeRecord(sampleRecords()[1]));
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(5), /truncated record header/],
      [Uint8Array.from([0, ...good.subarray(1)]), /unknown record kind 0/],
      [Uint8Array.from([2, 0x80, ...good.subarray(2)]), /unknown flags/],
      [good.subarray(0, good.length - 1), /declared/],
      [concat([good, new Uint8Array(1)]), /stray/],
    ];
    for (const [bytes, reason] of cases) {
      const r = decodeRecord(bytes);
      expect('error' in r && r.error).toMatch(reason);
    }
    const hugeLsn = Uint8Array.from(good);
    new DataView(hugeLsn.buffer).setUint32(12, 0x00200000, true);
    expect(decodeRecord(hugeLsn)).toEqual({ error: expect.stringMatching(/LSN beyond 2\^53/) });
  });

  it('refuses a batch whose count does not match its records', () => {
    const batch = concat(encodeBatch(sampleRecords().slice(0, 3).map(encodeRecord)).chunks);
    new DataView(batch.buffer).setUint32(0, 2, true);
    expect(decodeBatch(batch)).toEqual({ error: expect.stringMatching(/stray bytes after 2 records/) });
    new DataView(batch.buffer).setUint32(0, 0xffffffff, true);
    expect(decodeBatch(batch)).toEqual({ error: expect.stringMatching(/claims/) });
  });
});

describe('snapshot records', () => {
  const snapshotOf = (state: unknown, retained = sampleSnapshot().retained): Uint8Array =>
    recordBytes(encodeRecord({ kind: 'snapshot', lsn: 9, conn: 3, state: state as SnapshotState, retained }));

  function sampleSnapshot(): SnapshotRecord {
    const r = sampleRecords().find((x) => x.kind === 'snapshot');
    if (r?.kind !== 'snapshot') throw new Error('no sample snapshot');
    return r;
  }

  it('snapshot: round-trips the state and both retained ranges', () => {
    const r = sampleSnapshot();
    const out = decodeRecord(recordBytes(encodeRecord(r)));
    expect(out).toEqual(r);
  });

  it('snapshot: refuses another version, a bad field and ranges that do not fit the state', () => {
    const st = sampleSnapshotState();
    expect(decodeRecord(snapshotOf({ ...st, version: 2 }))).toEqual({ error: expect.stringMatching(/version 2/) });
    expect(decodeRecord(snapshotOf({ ...st, iss: -1 }))).toEqual({ error: expect.stringMatching(/sequence number/) });
    expect(decodeRecord(snapshotOf({ ...st, options: { ...st.options, rcvWindowScale: 15 } }))).toEqual({ error: expect.stringMatching(/window scale/) });
    expect(decodeRecord(snapshotOf({ ...st, firstFin: 'both' }))).toEqual({ error: expect.stringMatching(/firstFin/) });
    expect(decodeRecord(snapshotOf({ ...st, boundary: { input: 13, output: 0 } }))).toEqual({ error: expect.stringMatching(/out of order/) });
    expect(decodeRecord(snapshotOf({ ...st, tuple: undefined }))).toEqual({ error: expect.stringMatching(/4-tuple/) });
    expect(decodeRecord(snapshotOf([1, 2]))).toEqual({ error: expect.stringMatching(/not an object/) });
    const short = [{ stream: 'input' as const, offset: 10, data: new Uint8Array(1) }, sampleSnapshot().retained[1]!];
    expect(decodeRecord(snapshotOf(st, short))).toEqual({ error: expect.stringMatching(/input range \[10, 11\) is not \[10, 12\)/) });
    expect(decodeRecord(snapshotOf(st, short.slice(1)))).toEqual({ error: expect.stringMatching(/exactly one input and one output/) });
  });

  it('snapshot: garbage in the state bytes is refused, never thrown', () => {
    const good = snapshotOf(sampleSnapshotState());
    for (let i = RECORD_HEADER_BYTES + 8; i < good.length; i += 7) {
      const bad = good.slice();
      bad[i] = bad[i]! ^ 0xa5;
      const out = decodeRecord(bad);
      // A flip inside payload bytes may still decode; anything else must come back as an error.
      if (!('error' in out)) expect(out.kind).toBe('snapshot');
    }
  });
});

describe('structured values', () => {
  it('round-trip nested data with bytes, nulls, undefined and non-finite numbers', () => {
    const v = { a: [1, -0.5, Infinity, null, undefined, 'é'], b: { c: new Uint8Array([1, 2]) }, d: true, e: false };
    const r = decodeStructured(encodeStructured(v));
    expect(r).toEqual({ value: v });
  });

  it('keep a key named __proto__ as a plain key', () => {
    const v = JSON.parse('{"__proto__": {"polluted": true}}') as unknown;
    const r = decodeStructured(encodeStructured(v));
    if ('error' in r) throw new Error(r.error);
    const out = r.value as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuse cycles on encode and deep nesting on decode', () => {
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    expect(() => encodeStructured(cyc)).toThrow(/deeper/);
    const deep = new Uint8Array(200 * 5);
    for (let i = 0; i < 200; i++) deep.set([6, 1, 0, 0, 0], i * 5);
    expect(decodeStructured(deep)).toEqual({ error: expect.stringMatching(/nested too deep/) });
  });

  it('refuse counts that cannot fit before looping on them', () => {
    expect(decodeStructured(Uint8Array.from([6, 0xff, 0xff, 0xff, 0xff]))).toEqual({ error: expect.stringMatching(/cannot fit/) });
    expect(decodeStructured(Uint8Array.from([7, 0xff, 0xff, 0xff, 0x7f]))).toEqual({ error: expect.stringMatching(/cannot fit/) });
  });
});
