import { describe, expect, it } from 'vitest';
import {
  RECORD_HEADER_BYTES,
  decodeBatch,
  decodeRecord,
  encodeBatch,
  encodeRecord,
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
    expect(() => encodeRecord({ kind: 'snapshot', lsn: 1, conn: 1, state: { ...sampleSnapshotState(), tuple: new Map() } as never, retained: [] })).toThrow(/localPort/);
    expect(() => encodeRecord({ kind: 'snapshot', lsn: 1, conn: 1, state: { ...sampleSnapshotState(), iss: -1 }, retained: [] })).toThrow(/iss/);
    expect(() => encodeRecord({ kind: 'snapshot', lsn: 1, conn: 1, state: { ...sampleSnapshotState(), outputEnd: 2 ** 53 }, retained: [] })).toThrow(/outputEnd/);
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
    // The state's bytes start after the record header and the snapshot's 8 fixed bytes.
    const S = RECORD_HEADER_BYTES + 8;
    const patched = (at: number, value: number, state: SnapshotState = st): Uint8Array => {
      const b = snapshotOf(state);
      b[S + at] = value;
      return b;
    };
    expect(decodeRecord(patched(0, 1))).toEqual({ error: expect.stringMatching(/version 1, this node reads 2/) });
    expect(decodeRecord(patched(3, 15))).toEqual({ error: expect.stringMatching(/window scale/) });
    // firstFin's two bits (3 and 4) both set: no such value.
    expect(decodeRecord(patched(1, 0x18))).toEqual({ error: expect.stringMatching(/firstFin/) });
    // FIN-acknowledged flag without our FIN.
    expect(decodeRecord(patched(1, 0x04))).toEqual({ error: expect.stringMatching(/never sent/) });
    // TS.Recent present in the bytes, flag cleared.
    expect(decodeRecord(patched(1, 0x01 | 0x02 | 0x08))).toEqual({ error: expect.stringMatching(/TS.Recent/) });
    // The high word of inputEnd past 2^53.
    expect(decodeRecord(patched(63, 0xff))).toEqual({ error: expect.stringMatching(/beyond 2\^53/) });
    expect(decodeRecord(snapshotOf({ ...st, boundary: { input: 13, output: 0 } }))).toEqual({ error: expect.stringMatching(/out of order/) });
    const r = encodeRecord({ kind: 'snapshot', lsn: 9, conn: 3, state: st, retained: sampleSnapshot().retained });
    const whole = recordBytes(r);
    // A state one byte short of the layout (the TCB length field says so).
    const cut = Uint8Array.from([...whole.subarray(0, S + 95), ...whole.subarray(S + 96)]);
    new DataView(cut.buffer).setUint32(RECORD_HEADER_BYTES, 95, true);
    new DataView(cut.buffer).setUint32(16, new DataView(whole.buffer).getUint32(16, true) - 1, true);
    expect(decodeRecord(cut)).toEqual({ error: expect.stringMatching(/95 bytes, the layout has 96/) });
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
