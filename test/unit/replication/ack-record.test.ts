import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord, recordBytes } from '../../../src/replication/codec.js';
import type { AckRecord } from '../../../src/replication/log-records.js';

describe('ack record', () => {
  it('carries TS.Recent when given and decodes without it otherwise', () => {
    const a: AckRecord = { kind: 'ack', lsn: 9, conn: 3, ack: 0xfffffff0, window: 1 << 20, tsRecent: 0xdeadbeef };
    expect(decodeRecord(recordBytes(encodeRecord(a)))).toEqual(a);
    const b: AckRecord = { kind: 'ack', lsn: 10, conn: 3, ack: 5, window: 6 };
    expect(decodeRecord(recordBytes(encodeRecord(b)))).toEqual(b);
  });

  it('refuses a variable part that is neither empty nor TS.Recent', () => {
    const bytes = recordBytes(encodeRecord({ kind: 'ack', lsn: 1, conn: 1, ack: 1, window: 1, tsRecent: 1 }));
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    new DataView(longer.buffer).setUint32(16, 5, true);
    expect(decodeRecord(longer)).toMatchObject({ error: expect.stringMatching(/ack: 5 variable bytes/) });
  });
});
