// A snapshot record's state (log-records.ts SnapshotState) on the wire: one fixed little-endian
// layout. It was a tagged structured value (field names and a type tag per field, decoded into an
// object and then checked); at 4000 connections encoding those took most of the primary's attach
// turn and decoding them most of the backup's. Decoding checks every field, so a corrupt or
// foreign snapshot is refused like any other undecodable record.

import type { RetainedRange, SnapshotState } from './log-records.js';
import { readU64, writeU64 } from './u64.js';

/**
 * The layout, version 2 (1 was the structured value, which a reader of 2 refuses by its first
 * byte):
 *   0 u8 version, 1 u8 flags (FLAG_*), 2 u8 snd window scale, 3 u8 rcv window scale,
 *   4 u32 local addr, 8 u16 local port, 10 u16 remote port, 12 u32 remote addr,
 *   16 u32 ISS, 20 u32 IRS, 24 u16 snd MSS, 26 u16 rcv MSS, 28 u32 TS offset,
 *   32 u32 options' snd window, 36 u32 options' rcv window,
 *   40 u32 RCV.NXT, 44 u32 SND.UNA, 48 u32 SND.WND, 52 u32 TS.Recent (0 without timestamps),
 *   56 u64 inputEnd, 64 u64 ackedOutput, 72 u64 outputEnd, 80 u64 boundary input, 88 u64 boundary output.
 */
export const SNAPSHOT_STATE_BYTES = 96;

const FLAG_PEER_FIN = 0x01;
const FLAG_OUR_FIN = 0x02;
const FLAG_FIN_ACKED = 0x04;
/** Two bits: 0 no FIN yet, 1 the peer's first, 2 ours first. */
const FIRST_FIN_SHIFT = 3;
const FLAG_TS_RECENT = 0x20;
const FLAG_SACK = 0x40;
const FLAG_TIMESTAMPS = 0x80;
const MAX_SHIFT = 14;

function within(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`snapshot ${what} must be an integer in [0, ${max}], got ${v}`);
}

/** Our own state: a value that does not fit is a programming error and throws. */
export function encodeSnapshotState(s: SnapshotState): Uint8Array {
  const b = new Uint8Array(SNAPSHOT_STATE_BYTES);
  const dv = new DataView(b.buffer);
  const o = s.options;
  const firstFin = s.firstFin === null ? 0 : s.firstFin === 'peer' ? 1 : 2;
  const flags =
    (s.peerFin ? FLAG_PEER_FIN : 0) |
    (s.ourFin ? FLAG_OUR_FIN : 0) |
    (s.finAcked ? FLAG_FIN_ACKED : 0) |
    (firstFin << FIRST_FIN_SHIFT) |
    (s.tsRecent !== null ? FLAG_TS_RECENT : 0) |
    (o.sackPermitted ? FLAG_SACK : 0) |
    (o.timestamps ? FLAG_TIMESTAMPS : 0);
  const t = s.tuple;
  within(t.localPort, 0xffff, 'localPort');
  within(t.remotePort, 0xffff, 'remotePort');
  within(o.sndMss, 0xffff, 'sndMss');
  within(o.rcvMss, 0xffff, 'rcvMss');
  within(o.sndWindowScale, MAX_SHIFT, 'sndWindowScale');
  within(o.rcvWindowScale, MAX_SHIFT, 'rcvWindowScale');
  within(t.localAddr, 0xffffffff, 'localAddr');
  within(t.remoteAddr, 0xffffffff, 'remoteAddr');
  within(s.iss, 0xffffffff, 'iss');
  within(s.irs, 0xffffffff, 'irs');
  within(s.rcvNxt, 0xffffffff, 'rcvNxt');
  within(s.sndUna, 0xffffffff, 'sndUna');
  within(s.sndWnd, 0xffffffff, 'sndWnd');
  within(o.tsOffset, 0xffffffff, 'tsOffset');
  within(o.sndWindow, 0xffffffff, 'sndWindow');
  within(o.rcvWindow, 0xffffffff, 'rcvWindow');
  within(s.tsRecent ?? 0, 0xffffffff, 'tsRecent');
  within(s.inputEnd, Number.MAX_SAFE_INTEGER, 'inputEnd');
  within(s.ackedOutput, Number.MAX_SAFE_INTEGER, 'ackedOutput');
  within(s.outputEnd, Number.MAX_SAFE_INTEGER, 'outputEnd');
  within(s.boundary.input, Number.MAX_SAFE_INTEGER, 'boundary.input');
  within(s.boundary.output, Number.MAX_SAFE_INTEGER, 'boundary.output');
  dv.setUint8(0, s.version);
  dv.setUint8(1, flags);
  dv.setUint8(2, o.sndWindowScale);
  dv.setUint8(3, o.rcvWindowScale);
  dv.setUint32(4, t.localAddr, true);
  dv.setUint16(8, t.localPort, true);
  dv.setUint16(10, t.remotePort, true);
  dv.setUint32(12, t.remoteAddr, true);
  dv.setUint32(16, s.iss, true);
  dv.setUint32(20, s.irs, true);
  dv.setUint16(24, o.sndMss, true);
  dv.setUint16(26, o.rcvMss, true);
  dv.setUint32(28, o.tsOffset, true);
  dv.setUint32(32, o.sndWindow, true);
  dv.setUint32(36, o.rcvWindow, true);
  dv.setUint32(40, s.rcvNxt, true);
  dv.setUint32(44, s.sndUna, true);
  dv.setUint32(48, s.sndWnd, true);
  dv.setUint32(52, s.tsRecent ?? 0, true);
  writeU64(dv, 56, s.inputEnd);
  writeU64(dv, 64, s.ackedOutput);
  writeU64(dv, 72, s.outputEnd);
  writeU64(dv, 80, s.boundary.input);
  writeU64(dv, 88, s.boundary.output);
  return b;
}

/** A typed snapshot state, or why the bytes are not one. */
export function decodeSnapshotState(b: Uint8Array): SnapshotState | { error: string } {
  const fail = (why: string): { error: string } => ({ error: `snapshot state: ${why}` });
  if (b.length !== SNAPSHOT_STATE_BYTES) return fail(`${b.length} bytes, the layout has ${SNAPSHOT_STATE_BYTES}`);
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const version = dv.getUint8(0);
  if (version !== 2) return fail(`version ${version}, this node reads 2`);
  const flags = dv.getUint8(1);
  const firstFinCode = (flags >> FIRST_FIN_SHIFT) & 3;
  if (firstFinCode === 3) return fail('bad firstFin');
  const sndWindowScale = dv.getUint8(2);
  const rcvWindowScale = dv.getUint8(3);
  if (sndWindowScale > MAX_SHIFT || rcvWindowScale > MAX_SHIFT) return fail('options: bad window scale');
  const inputEnd = readU64(dv, 56);
  const ackedOutput = readU64(dv, 64);
  const outputEnd = readU64(dv, 72);
  const boundaryIn = readU64(dv, 80);
  const boundaryOut = readU64(dv, 88);
  if (inputEnd < 0 || ackedOutput < 0 || outputEnd < 0 || boundaryIn < 0 || boundaryOut < 0) return fail('stream offset beyond 2^53');
  if (ackedOutput > outputEnd || boundaryIn > inputEnd) return fail('offsets out of order');
  const ourFin = (flags & FLAG_OUR_FIN) !== 0;
  const finAcked = (flags & FLAG_FIN_ACKED) !== 0;
  if (finAcked && !ourFin) return fail('FIN acknowledged but never sent');
  const hasTsRecent = (flags & FLAG_TS_RECENT) !== 0;
  const tsRecent = dv.getUint32(52, true);
  if (!hasTsRecent && tsRecent !== 0) return fail('TS.Recent without the flag');
  return {
    version: 2,
    tuple: { localAddr: dv.getUint32(4, true), localPort: dv.getUint16(8, true), remoteAddr: dv.getUint32(12, true), remotePort: dv.getUint16(10, true) },
    iss: dv.getUint32(16, true),
    irs: dv.getUint32(20, true),
    options: {
      sndMss: dv.getUint16(24, true),
      rcvMss: dv.getUint16(26, true),
      sndWindowScale,
      rcvWindowScale,
      sackPermitted: (flags & FLAG_SACK) !== 0,
      timestamps: (flags & FLAG_TIMESTAMPS) !== 0,
      tsOffset: dv.getUint32(28, true),
      sndWindow: dv.getUint32(32, true),
      rcvWindow: dv.getUint32(36, true),
    },
    rcvNxt: dv.getUint32(40, true),
    inputEnd,
    peerFin: (flags & FLAG_PEER_FIN) !== 0,
    sndUna: dv.getUint32(44, true),
    ackedOutput,
    outputEnd,
    ourFin,
    finAcked,
    firstFin: firstFinCode === 0 ? null : firstFinCode === 1 ? 'peer' : 'ours',
    sndWnd: dv.getUint32(48, true),
    tsRecent: hasTsRecent ? tsRecent : null,
    boundary: { input: boundaryIn, output: boundaryOut },
  };
}

/**
 * The two retained ranges a snapshot must carry: input [boundary.input, inputEnd) and output
 * [ackedOutput, outputEnd). Returns them, or why the ranges do not fit the state.
 */
export function snapshotRanges(s: SnapshotState, retained: readonly RetainedRange[]): { input: Uint8Array; output: Uint8Array } | { error: string } {
  const input = retained.filter((r) => r.stream === 'input');
  const output = retained.filter((r) => r.stream === 'output');
  if (input.length !== 1 || output.length !== 1) return { error: 'snapshot: needs exactly one input and one output range' };
  const i = input[0]!;
  const o = output[0]!;
  if (i.offset !== s.boundary.input || i.offset + i.data.length !== s.inputEnd) {
    return { error: `snapshot: input range [${i.offset}, ${i.offset + i.data.length}) is not [${s.boundary.input}, ${s.inputEnd})` };
  }
  if (o.offset !== s.ackedOutput || o.offset + o.data.length !== s.outputEnd) {
    return { error: `snapshot: output range [${o.offset}, ${o.offset + o.data.length}) is not [${s.ackedOutput}, ${s.outputEnd})` };
  }
  return { input: i.data, output: o.data };
}
