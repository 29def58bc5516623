// The shape check of a snapshot record's state (log-records.ts SnapshotState). The codec carries
// the state as structured data; this turns whatever arrived into a typed state or a reason, so a
// corrupt or foreign snapshot is refused like any other undecodable record.

import type { NegotiatedOptions, RetainedRange, SnapshotState, StreamBoundary } from './log-records.js';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
const isU32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isOffset = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isShift = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 14;

function options(v: unknown): NegotiatedOptions | string {
  if (!isObj(v)) return 'options is not an object';
  const { sndMss, rcvMss, sndWindowScale, rcvWindowScale, sackPermitted, timestamps, tsOffset, sndWindow, rcvWindow } = v;
  if (!isU32(sndMss) || !isU32(rcvMss) || sndMss > 0xffff || rcvMss > 0xffff) return 'options: bad MSS';
  if (!isShift(sndWindowScale) || !isShift(rcvWindowScale)) return 'options: bad window scale';
  if (typeof sackPermitted !== 'boolean' || typeof timestamps !== 'boolean') return 'options: bad flags';
  if (!isU32(tsOffset) || !isU32(sndWindow) || !isU32(rcvWindow)) return 'options: bad timestamp offset or window';
  return { sndMss, rcvMss, sndWindowScale, rcvWindowScale, sackPermitted, timestamps, tsOffset, sndWindow, rcvWindow };
}

function boundary(v: unknown): StreamBoundary | string {
  if (!isObj(v) || !isOffset(v.input) || !isOffset(v.output)) return 'bad boundary';
  return { input: v.input, output: v.output };
}

/** A typed snapshot state, or why the value is not one. */
export function parseSnapshotState(v: unknown): SnapshotState | { error: string } {
  const fail = (why: string): { error: string } => ({ error: `snapshot state: ${why}` });
  if (!isObj(v)) return fail('not an object');
  if (v.version !== 1) return fail(`version ${String(v.version)}, this node reads 1`);
  const t = v.tuple;
  if (!isObj(t) || !isU32(t.localAddr) || !isU32(t.remoteAddr) || !isU32(t.localPort) || !isU32(t.remotePort) || t.localPort > 0xffff || t.remotePort > 0xffff) {
    return fail('bad 4-tuple');
  }
  const o = options(v.options);
  if (typeof o === 'string') return fail(o);
  const b = boundary(v.boundary);
  if (typeof b === 'string') return fail(b);
  const { iss, irs, rcvNxt, sndUna, inputEnd, ackedOutput, outputEnd, peerFin, ourFin, finAcked, firstFin, sndWnd, tsRecent } = v;
  if (!isU32(iss) || !isU32(irs) || !isU32(rcvNxt) || !isU32(sndUna) || !isU32(sndWnd)) return fail('bad sequence number or window');
  if (!isOffset(inputEnd) || !isOffset(ackedOutput) || !isOffset(outputEnd)) return fail('bad stream offset');
  if (typeof peerFin !== 'boolean' || typeof ourFin !== 'boolean' || typeof finAcked !== 'boolean') return fail('bad FIN flags');
  if (firstFin !== null && firstFin !== 'peer' && firstFin !== 'ours') return fail('bad firstFin');
  if (tsRecent !== null && !isU32(tsRecent)) return fail('bad TS.Recent');
  if (ackedOutput > outputEnd || b.input > inputEnd) return fail('offsets out of order');
  if (finAcked && !ourFin) return fail('FIN acknowledged but never sent');
  return {
    version: 1,
    tuple: { localAddr: t.localAddr, localPort: t.localPort, remoteAddr: t.remoteAddr, remotePort: t.remotePort },
    iss,
    irs,
    options: o,
    rcvNxt,
    inputEnd,
    peerFin,
    sndUna,
    ackedOutput,
    outputEnd,
    ourFin,
    finAcked,
    firstFin,
    sndWnd,
    tsRecent,
    boundary: b,
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
