// Binary encoding of log records. Every record is a fixed little-endian header, the kind's fixed
// fields, then a variable part (payload bytes, reason text, congestion hints or a snapshot). Payload
// bytes are referenced, not copied, on encode, and decoded as views into the received message.
// Decoding never throws: whatever arrives, the answer is records or `{ error }` with a reason.

import type {
  AckRecord,
  CongestionHint,
  LogRecord,
  Lsn,
  RecordKind,
  RetainedRange,
} from './log-records.js';
import { MAX_REASON_BYTES } from './log-records.js';
import { DIGEST_BYTES, malformedDigest } from './output-digest.js';
import { decodeSnapshotState, encodeSnapshotState, snapshotRanges } from './snapshot-state.js';
import { readU64, writeU64 } from './u64.js';

export interface DecodeError {
  error: string;
}

/** An encoded record: chunks to write in order (payloads by reference) and their total size. */
export interface EncodedRecord {
  lsn: Lsn;
  chunks: Uint8Array[];
  byteLength: number;
}

/**
 * Record header, little-endian:
 *   0 u8 kind, 1 u8 flags, 2 u16 fixed-field length, 4 u32 connection id,
 *   8 u64 LSN, 16 u32 variable-part length; then fixed fields, then the variable part.
 */
export const RECORD_HEADER_BYTES = 20;

const FLAG_FIN = 0x01;
const KNOWN_FLAGS = FLAG_FIN;

const KIND_CODES: Record<RecordKind, number> = {
  open: 1,
  input: 2,
  output: 3,
  ack: 4,
  boundary: 5,
  close: 6,
  reset: 7,
  heartbeat: 8,
  snapshot: 9,
  'output-digest': 10,
};

const KIND_BY_CODE: readonly (RecordKind | undefined)[] = (() => {
  const table: (RecordKind | undefined)[] = [];
  for (const [kind, code] of Object.entries(KIND_CODES)) table[code] = kind as RecordKind;
  return table;
})();

/** Fixed-field sizes; a decoder accepts exactly these, so a misframed record is caught early. */
const FIXED_BYTES: Record<RecordKind, number> = {
  open: 40,
  input: 12,
  output: 8,
  ack: 8,
  boundary: 8,
  close: 0,
  reset: 0,
  heartbeat: 12,
  snapshot: 8,
  'output-digest': 28,
};

const HINT_BYTES = 32;
/** The largest write an output digest may stand for (far above any send buffer: one write's record). */
export const MAX_DIGEST_BYTES = 64 * 1024 * 1024;
/** An ack record's optional variable part: the peer's TS.Recent. */
const ACK_TS_BYTES = 4;
const RANGE_HEADER_BYTES = 16;
const TWO_32 = 0x1_0000_0000;

const utf8 = new TextEncoder();
/** Non-fatal: invalid UTF-8 in a reason becomes U+FFFD instead of an exception. */
const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

// ---------------------------------------------------------------------------------------------
// Encoding. Inputs are our own records, so invalid values are programming errors and throw.

function assertU32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v >= TWO_32) throw new RangeError(`${what} must be an unsigned 32-bit integer, got ${v}`);
}

function assertU16(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`${what} must be an unsigned 16-bit integer, got ${v}`);
}

function assertU8(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`${what} must be an unsigned 8-bit integer, got ${v}`);
}

function assertSafe(v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${what} must be a non-negative safe integer, got ${v}`);
}

function header(r: LogRecord, fixed: number, varLen: number, flags: number): { buf: Uint8Array; dv: DataView } {
  assertSafe(r.lsn, 'lsn');
  const conn = r.kind === 'heartbeat' ? 0 : r.conn;
  assertU32(conn, 'conn');
  const buf = new Uint8Array(RECORD_HEADER_BYTES + fixed);
  const dv = new DataView(buf.buffer);
  dv.setUint8(0, KIND_CODES[r.kind]);
  dv.setUint8(1, flags);
  dv.setUint16(2, fixed, true);
  dv.setUint32(4, conn, true);
  writeU64(dv, 8, r.lsn);
  dv.setUint32(16, varLen, true);
  return { buf, dv };
}

function withPayload(lsn: Lsn, head: Uint8Array, data: Uint8Array): EncodedRecord {
  const chunks = data.length > 0 ? [head, data] : [head];
  return { lsn, chunks, byteLength: head.length + data.length };
}

/** Encodes one record; payload bytes are referenced, so the caller must not modify them later. */
export function encodeRecord(r: LogRecord): EncodedRecord {
  const F = RECORD_HEADER_BYTES;
  switch (r.kind) {
    case 'open': {
      const { buf, dv } = header(r, FIXED_BYTES.open, 0, 0);
      const t = r.tuple;
      const o = r.options;
      assertU32(t.localAddr, 'tuple.localAddr');
      assertU16(t.localPort, 'tuple.localPort');
      assertU16(t.remotePort, 'tuple.remotePort');
      assertU32(t.remoteAddr, 'tuple.remoteAddr');
      assertU32(r.iss, 'iss');
      assertU32(r.irs, 'irs');
      assertU16(o.sndMss, 'sndMss');
      assertU16(o.rcvMss, 'rcvMss');
      assertU8(o.sndWindowScale, 'sndWindowScale');
      assertU8(o.rcvWindowScale, 'rcvWindowScale');
      assertU32(o.tsOffset, 'tsOffset');
      assertU32(o.sndWindow, 'sndWindow');
      assertU32(o.rcvWindow, 'rcvWindow');
      dv.setUint32(F, t.localAddr, true);
      dv.setUint16(F + 4, t.localPort, true);
      dv.setUint16(F + 6, t.remotePort, true);
      dv.setUint32(F + 8, t.remoteAddr, true);
      dv.setUint32(F + 12, r.iss, true);
      dv.setUint32(F + 16, r.irs, true);
      dv.setUint16(F + 20, o.sndMss, true);
      dv.setUint16(F + 22, o.rcvMss, true);
      dv.setUint8(F + 24, o.sndWindowScale);
      dv.setUint8(F + 25, o.rcvWindowScale);
      dv.setUint8(F + 26, (o.sackPermitted ? 1 : 0) | (o.timestamps ? 2 : 0));
      dv.setUint32(F + 28, o.tsOffset, true);
      dv.setUint32(F + 32, o.sndWindow, true);
      dv.setUint32(F + 36, o.rcvWindow, true);
      return { lsn: r.lsn, chunks: [buf], byteLength: buf.length };
    }
    case 'input': {
      assertSafe(r.offset, 'offset');
      assertU32(r.rcvNxt, 'rcvNxt');
      const { buf, dv } = header(r, FIXED_BYTES.input, r.data.length, r.fin ? FLAG_FIN : 0);
      writeU64(dv, F, r.offset);
      dv.setUint32(F + 8, r.rcvNxt, true);
      return withPayload(r.lsn, buf, r.data);
    }
    case 'output': {
      assertSafe(r.offset, 'offset');
      const { buf, dv } = header(r, FIXED_BYTES.output, r.data.length, r.fin ? FLAG_FIN : 0);
      writeU64(dv, F, r.offset);
      return withPayload(r.lsn, buf, r.data);
    }
    case 'output-digest': {
      assertSafe(r.offset, 'offset');
      assertU32(r.length, 'length');
      if (r.digest.length !== DIGEST_BYTES) throw new RangeError(`digest: ${r.digest.length} bytes, expected ${DIGEST_BYTES}`);
      const { buf, dv } = header(r, FIXED_BYTES['output-digest'], 0, r.fin ? FLAG_FIN : 0);
      writeU64(dv, F, r.offset);
      dv.setUint32(F + 8, r.length, true);
      buf.set(r.digest, F + 12);
      return { lsn: r.lsn, chunks: [buf], byteLength: buf.length };
    }
    case 'ack': {
      assertU32(r.ack, 'ack');
      assertU32(r.window, 'window');
      // TS.Recent, when known, is the whole variable part: older decoders saw none there.
      const ts = r.tsRecent;
      if (ts !== undefined) assertU32(ts, 'tsRecent');
      const { buf, dv } = header(r, FIXED_BYTES.ack + (ts !== undefined ? ACK_TS_BYTES : 0), 0, 0);
      dv.setUint16(2, FIXED_BYTES.ack, true);
      dv.setUint32(16, ts !== undefined ? ACK_TS_BYTES : 0, true);
      dv.setUint32(F, r.ack, true);
      dv.setUint32(F + 4, r.window, true);
      if (ts !== undefined) dv.setUint32(F + FIXED_BYTES.ack, ts, true);
      return { lsn: r.lsn, chunks: [buf], byteLength: buf.length };
    }
    case 'boundary': {
      assertSafe(r.inputOffset, 'inputOffset');
      const { buf, dv } = header(r, FIXED_BYTES.boundary, 0, 0);
      writeU64(dv, F, r.inputOffset);
      return { lsn: r.lsn, chunks: [buf], byteLength: buf.length };
    }
    case 'close':
    case 'reset': {
      let text = utf8.encode(r.reason);
      // Cut at a byte limit; a split character decodes as U+FFFD, which is fine for a log line.
      if (text.length > MAX_REASON_BYTES) text = text.subarray(0, MAX_REASON_BYTES);
      const { buf } = header(r, 0, text.length, 0);
      return withPayload(r.lsn, buf, text);
    }
    case 'heartbeat': {
      assertU32(r.epoch, 'epoch');
      assertSafe(r.clockUs, 'clockUs');
      const hints = encodeHints(r.congestion);
      const { buf, dv } = header(r, FIXED_BYTES.heartbeat, hints.length, 0);
      dv.setUint32(F, r.epoch, true);
      writeU64(dv, F + 4, r.clockUs);
      return withPayload(r.lsn, buf, hints);
    }
    case 'snapshot': {
      const tcb = encodeSnapshotState(r.state);
      const parts: Uint8Array[] = [tcb];
      let varLen = tcb.length;
      for (const range of r.retained) {
        assertSafe(range.offset, 'retained offset');
        const rh = new Uint8Array(RANGE_HEADER_BYTES);
        const rdv = new DataView(rh.buffer);
        rdv.setUint8(0, range.stream === 'input' ? 0 : 1);
        writeU64(rdv, 4, range.offset);
        rdv.setUint32(12, range.data.length, true);
        parts.push(rh);
        if (range.data.length > 0) parts.push(range.data);
        varLen += RANGE_HEADER_BYTES + range.data.length;
      }
      const { buf, dv } = header(r, FIXED_BYTES.snapshot, varLen, 0);
      dv.setUint32(F, tcb.length, true);
      dv.setUint32(F + 4, r.retained.length, true);
      return { lsn: r.lsn, chunks: [buf, ...parts], byteLength: buf.length + varLen };
    }
  }
}

function encodeHints(hints: CongestionHint[]): Uint8Array {
  const out = new Uint8Array(hints.length * HINT_BYTES);
  const dv = new DataView(out.buffer);
  hints.forEach((h, i) => {
    const at = i * HINT_BYTES;
    assertU32(h.conn, 'hint conn');
    assertU32(h.cwnd, 'hint cwnd');
    assertU32(h.ssthresh, 'hint ssthresh');
    dv.setUint32(at, h.conn, true);
    dv.setUint32(at + 4, h.cwnd, true);
    dv.setUint32(at + 8, h.ssthresh, true);
    dv.setUint32(at + 12, h.srttUs === null ? 0 : 1, true);
    dv.setFloat64(at + 16, h.srttUs ?? 0, true);
    dv.setFloat64(at + 24, h.rttvarUs, true);
  });
  return out;
}

/** The concatenation of an encoded record's chunks (tests, diagnostics). */
export function recordBytes(e: EncodedRecord): Uint8Array {
  const out = new Uint8Array(e.byteLength);
  let at = 0;
  for (const c of e.chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding.

function fail(error: string): DecodeError {
  return { error };
}

/**
 * Decodes the record that starts at `at` in `buf`. Returns the record and where the next one
 * starts. Payload fields are views into `buf`.
 */
export function decodeRecordAt(buf: Uint8Array, at: number): { record: LogRecord; next: number } | DecodeError {
  if (buf.length - at < RECORD_HEADER_BYTES) return fail(`truncated record header: ${buf.length - at} of ${RECORD_HEADER_BYTES} bytes`);
  const dv = new DataView(buf.buffer, buf.byteOffset + at, buf.length - at);
  const code = dv.getUint8(0);
  const kind = KIND_BY_CODE[code];
  if (kind === undefined) return fail(`unknown record kind ${code}`);
  const flags = dv.getUint8(1);
  if ((flags & ~KNOWN_FLAGS) !== 0) return fail(`${kind}: unknown flags 0x${flags.toString(16)}`);
  const fixed = dv.getUint16(2, true);
  if (fixed !== FIXED_BYTES[kind]) return fail(`${kind}: fixed part of ${fixed} bytes, expected ${FIXED_BYTES[kind]}`);
  const conn = dv.getUint32(4, true);
  const lsn = readU64(dv, 8);
  if (lsn < 0) return fail(`${kind}: LSN beyond 2^53`);
  const varLen = dv.getUint32(16, true);
  const total = RECORD_HEADER_BYTES + fixed + varLen;
  if (total > buf.length - at) return fail(`${kind} at LSN ${lsn}: ${total} bytes declared, ${buf.length - at} left`);
  const F = RECORD_HEADER_BYTES;
  const varStart = at + F + fixed;
  const variable = buf.subarray(varStart, varStart + varLen);
  const fin = (flags & FLAG_FIN) !== 0;
  const next = at + total;
  if (fin && kind !== 'input' && kind !== 'output' && kind !== 'output-digest') return fail(`${kind}: FIN flag on a record that has none`);
  const noVariable = (): DecodeError | null => (varLen === 0 ? null : fail(`${kind}: unexpected ${varLen} variable bytes`));

  switch (kind) {
    case 'open': {
      const bad = noVariable();
      if (bad) return bad;
      const optFlags = dv.getUint8(F + 26);
      if ((optFlags & ~3) !== 0 || dv.getUint8(F + 27) !== 0) return fail('open: unknown option flags');
      return {
        record: {
          kind,
          lsn,
          conn,
          tuple: {
            localAddr: dv.getUint32(F, true),
            localPort: dv.getUint16(F + 4, true),
            remotePort: dv.getUint16(F + 6, true),
            remoteAddr: dv.getUint32(F + 8, true),
          },
          iss: dv.getUint32(F + 12, true),
          irs: dv.getUint32(F + 16, true),
          options: {
            sndMss: dv.getUint16(F + 20, true),
            rcvMss: dv.getUint16(F + 22, true),
            sndWindowScale: dv.getUint8(F + 24),
            rcvWindowScale: dv.getUint8(F + 25),
            sackPermitted: (optFlags & 1) !== 0,
            timestamps: (optFlags & 2) !== 0,
            tsOffset: dv.getUint32(F + 28, true),
            sndWindow: dv.getUint32(F + 32, true),
            rcvWindow: dv.getUint32(F + 36, true),
          },
        },
        next,
      };
    }
    case 'input': {
      const offset = readU64(dv, F);
      if (offset < 0) return fail('input: offset beyond 2^53');
      return { record: { kind, lsn, conn, offset, data: variable, rcvNxt: dv.getUint32(F + 8, true), fin }, next };
    }
    case 'output': {
      const offset = readU64(dv, F);
      if (offset < 0) return fail('output: offset beyond 2^53');
      return { record: { kind, lsn, conn, offset, data: variable, fin }, next };
    }
    case 'output-digest': {
      const bad = noVariable();
      if (bad) return bad;
      const offset = readU64(dv, F);
      if (offset < 0) return fail('output-digest: offset beyond 2^53');
      const length = dv.getUint32(F + 8, true);
      // The backup may have to stand in for these bytes (a replica that cannot write them): a
      // length no send buffer holds is refused rather than allocated.
      if (length > MAX_DIGEST_BYTES) return fail(`output-digest: ${length} bytes, limit ${MAX_DIGEST_BYTES}`);
      // A copy: 16 bytes, and the record may outlive the message while it waits for the replica.
      const digest = new Uint8Array(DIGEST_BYTES);
      digest.set(buf.subarray(at + F + 12, at + F + 12 + DIGEST_BYTES));
      const malformed = malformedDigest(length, digest);
      if (malformed !== null) return fail(`output-digest: ${malformed}`);
      return { record: { kind, lsn, conn, offset, length, digest, fin }, next };
    }
    case 'ack': {
      if (varLen !== 0 && varLen !== ACK_TS_BYTES) return fail(`ack: ${varLen} variable bytes, expected 0 or ${ACK_TS_BYTES} (TS.Recent)`);
      const ack: AckRecord = { kind, lsn, conn, ack: dv.getUint32(F, true), window: dv.getUint32(F + 4, true) };
      if (varLen === ACK_TS_BYTES) ack.tsRecent = new DataView(variable.buffer, variable.byteOffset, ACK_TS_BYTES).getUint32(0, true);
      return { record: ack, next };
    }
    case 'boundary': {
      const bad = noVariable();
      if (bad) return bad;
      const inputOffset = readU64(dv, F);
      if (inputOffset < 0) return fail('boundary: offset beyond 2^53');
      return { record: { kind, lsn, conn, inputOffset }, next };
    }
    case 'close':
    case 'reset': {
      if (varLen > MAX_REASON_BYTES) return fail(`${kind}: reason of ${varLen} bytes, limit ${MAX_REASON_BYTES}`);
      return { record: { kind, lsn, conn, reason: utf8Decoder.decode(variable) }, next };
    }
    case 'heartbeat': {
      if (conn !== 0) return fail('heartbeat: connection id must be 0');
      const clockUs = readU64(dv, F + 4);
      if (clockUs < 0) return fail('heartbeat: clock beyond 2^53');
      const congestion = decodeHints(variable);
      if ('error' in congestion) return congestion;
      return { record: { kind, lsn, epoch: dv.getUint32(F, true), clockUs, congestion }, next };
    }
    case 'snapshot': {
      const tcbLen = dv.getUint32(F, true);
      const count = dv.getUint32(F + 4, true);
      if (tcbLen > varLen) return fail(`snapshot: TCB of ${tcbLen} bytes in a ${varLen}-byte record`);
      const state = decodeSnapshotState(variable.subarray(0, tcbLen));
      if ('error' in state) return fail(state.error);
      const retained = decodeRanges(variable.subarray(tcbLen), count);
      if ('error' in retained) return retained;
      const ranges = snapshotRanges(state, retained);
      if ('error' in ranges) return fail(ranges.error);
      return { record: { kind, lsn, conn, state, retained }, next };
    }
  }
}

function decodeHints(b: Uint8Array): CongestionHint[] | DecodeError {
  if (b.length % HINT_BYTES !== 0) return fail(`heartbeat: ${b.length} hint bytes is not a multiple of ${HINT_BYTES}`);
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const out: CongestionHint[] = [];
  for (let at = 0; at < b.length; at += HINT_BYTES) {
    const hasSrtt = dv.getUint32(at + 12, true);
    if (hasSrtt > 1) return fail('heartbeat: bad hint flags');
    const srtt = dv.getFloat64(at + 16, true);
    const rttvar = dv.getFloat64(at + 24, true);
    if (!Number.isFinite(srtt) || !Number.isFinite(rttvar)) return fail('heartbeat: RTT figure is not finite');
    out.push({
      conn: dv.getUint32(at, true),
      cwnd: dv.getUint32(at + 4, true),
      ssthresh: dv.getUint32(at + 8, true),
      srttUs: hasSrtt === 1 ? srtt : null,
      rttvarUs: rttvar,
    });
  }
  return out;
}

function decodeRanges(b: Uint8Array, count: number): RetainedRange[] | DecodeError {
  // Every range takes at least its header: bound the count before looping on it.
  if (count > b.length / RANGE_HEADER_BYTES) return fail(`snapshot: ${count} ranges cannot fit in ${b.length} bytes`);
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const out: RetainedRange[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (b.length - at < RANGE_HEADER_BYTES) return fail(`snapshot: range ${i} header truncated`);
    const stream = dv.getUint8(at);
    if (stream > 1 || dv.getUint8(at + 1) !== 0 || dv.getUint16(at + 2, true) !== 0) return fail(`snapshot: range ${i} has a bad stream tag`);
    const offset = readU64(dv, at + 4);
    if (offset < 0) return fail(`snapshot: range ${i} offset beyond 2^53`);
    const len = dv.getUint32(at + 12, true);
    at += RANGE_HEADER_BYTES;
    if (len > b.length - at) return fail(`snapshot: range ${i} of ${len} bytes, ${b.length - at} left`);
    out.push({ stream: stream === 0 ? 'input' : 'output', offset, data: b.subarray(at, at + len) });
    at += len;
  }
  if (at !== b.length) return fail(`snapshot: ${b.length - at} stray bytes after the ranges`);
  return out;
}

/** Decodes exactly one record filling `buf`. */
export function decodeRecord(buf: Uint8Array): LogRecord | DecodeError {
  const r = decodeRecordAt(buf, 0);
  if ('error' in r) return r;
  if (r.next !== buf.length) return fail(`${buf.length - r.next} stray bytes after the record`);
  return r.record;
}

// ---------------------------------------------------------------------------------------------
// Batches: a u32 record count, then the records back to back. A replication message's body.

export const BATCH_HEADER_BYTES = 4;

/** The chunks of a batch body for records already encoded (no payload copies). */
export function encodeBatch(records: readonly EncodedRecord[]): { chunks: Uint8Array[]; byteLength: number } {
  const head = new Uint8Array(BATCH_HEADER_BYTES);
  new DataView(head.buffer).setUint32(0, records.length, true);
  const chunks: Uint8Array[] = [head];
  let byteLength = BATCH_HEADER_BYTES;
  for (const r of records) {
    for (const c of r.chunks) chunks.push(c);
    byteLength += r.byteLength;
  }
  return { chunks, byteLength };
}

export function decodeBatch(body: Uint8Array): LogRecord[] | DecodeError {
  if (body.length < BATCH_HEADER_BYTES) return fail(`batch of ${body.length} bytes has no record count`);
  const count = new DataView(body.buffer, body.byteOffset, body.length).getUint32(0, true);
  if (count > (body.length - BATCH_HEADER_BYTES) / RECORD_HEADER_BYTES) return fail(`batch claims ${count} records in ${body.length} bytes`);
  const out: LogRecord[] = [];
  let at = BATCH_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const r = decodeRecordAt(body, at);
    if ('error' in r) return fail(`record ${i}: ${r.error}`);
    out.push(r.record);
    at = r.next;
  }
  if (at !== body.length) return fail(`${body.length - at} stray bytes after ${count} records`);
  return out;
}
