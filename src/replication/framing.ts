// Frames and messages of the replication channel. A frame is a 16-byte little-endian header
// (magic "US", version, message type, body length, per-direction counter), the body, and a MAC
// over header and body (HMAC-SHA-256 on hellos, GMAC on session frames: auth.ts). FrameDecoder reassembles frames from arbitrary TCP chunks and
// refuses bad magic, another version, an oversized length, a bad MAC or an unexpected counter; after
// a refusal the stream is out of step, so the decoder stays failed and the peer is dropped.

import { MAC_BYTES, NONCE_BYTES, SESSION_TAG_BYTES, macEquals, type FrameMac } from './auth.js';
import { decodeBatch, encodeBatch, type EncodedRecord } from './codec.js';
import type { LogRecord, Lsn } from './log-records.js';
import { readU64, writeU64 } from './u64.js';

/**
 * 2: session frames carry a 16-byte GMAC tag instead of a 32-byte HMAC. 3: an output-digest record
 * carries a 16-byte digest (CRC-32 or Poly1305 by length, output-digest.ts) instead of a CRC-32.
 */
export const FRAME_VERSION = 3;
export const FRAME_HEADER_BYTES = 16;
export const DEFAULT_MAX_FRAME_BODY = 16 * 1024 * 1024;
const MAGIC_0 = 0x55; // 'U'
const MAGIC_1 = 0x53; // 'S'

export type Role = 'primary' | 'backup';

/** The first frame each side sends; the only one MAC'd with the file key itself. */
export interface HelloMessage {
  type: 'hello';
  role: Role;
  epoch: number;
  nodeId: string;
  /** Fresh per connection: binds the session's frame MACs to this connection. */
  nonce: Uint8Array;
  /** Primary: the last LSN appended. Backup: the last LSN applied, where the stream resumes. */
  lastLsn: Lsn;
}

/** A batch of log records, primary to backup. */
export interface RecordsMessage {
  type: 'records';
  records: LogRecord[];
}

/** Cumulative acknowledgement: every record up to lsn has been applied. Backup to primary. */
export interface AckMessage {
  type: 'ack';
  lsn: Lsn;
}

/** Liveness, both ways, outside the log so that it flows even when the window is full. */
export interface HeartbeatMessage {
  type: 'heartbeat';
  epoch: number;
  /** Primary: last LSN appended. Backup: last LSN applied. */
  lsn: Lsn;
  clockUs: number;
}

/**
 * Planned switchover (ARCHITECTURE.md 5.4), primary to backup: the primary holds its output, the
 * backup has acknowledged every record up to lastLsn and the VIP is withdrawn; take over at once.
 */
export interface HandoverMessage {
  type: 'handover';
  /** The primary's epoch; the backup takes over with the next one. */
  epoch: number;
  lastLsn: Lsn;
}

/** Backup to primary: the takeover ran, the new primary serves under `epoch`. */
export interface HandoverDoneMessage {
  type: 'handover-done';
  epoch: number;
  /** From the handover's arrival to the release of the promoted connections' retransmissions. */
  takeoverMs: number;
}

/** Backup to primary: it cannot take over (not in step); the primary resumes. */
export interface HandoverRefusedMessage {
  type: 'handover-refused';
  reason: string;
}

export type Message = HelloMessage | RecordsMessage | AckMessage | HeartbeatMessage | HandoverMessage | HandoverDoneMessage | HandoverRefusedMessage;
export type MessageType = Message['type'];

/** What a sender passes: records already encoded, so a resend costs no re-encoding. */
export type OutgoingMessage = Exclude<Message, RecordsMessage> | { type: 'records'; records: readonly EncodedRecord[] };

const TYPE_CODES: Record<MessageType, number> = { hello: 1, records: 2, ack: 3, heartbeat: 4, handover: 5, 'handover-done': 6, 'handover-refused': 7 };
const TYPE_BY_CODE: readonly (MessageType | undefined)[] = [undefined, 'hello', 'records', 'ack', 'heartbeat', 'handover', 'handover-done', 'handover-refused'];

/**
 * Bytes of MAC after a frame with this type code, for readers that cut the stream without
 * verifying it (frame-cutter.ts): a hello's HMAC under the file key, every later frame's GMAC.
 */
export function tagBytesFor(typeCode: number): number {
  return typeCode === TYPE_CODES.hello ? MAC_BYTES : SESSION_TAG_BYTES;
}

export const MAX_NODE_ID_BYTES = 255;
export const MAX_REFUSAL_BYTES = 255;
const HELLO_FIXED = 16 + NONCE_BYTES;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

/** A message's body as chunks (records by reference). */
export function encodeMessageBody(m: OutgoingMessage): { chunks: Uint8Array[]; byteLength: number } {
  switch (m.type) {
    case 'records':
      return encodeBatch(m.records);
    case 'ack': {
      const b = new Uint8Array(8);
      writeU64(new DataView(b.buffer), 0, m.lsn);
      return { chunks: [b], byteLength: 8 };
    }
    case 'heartbeat': {
      const b = new Uint8Array(24);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, m.epoch, true);
      writeU64(dv, 8, m.lsn);
      writeU64(dv, 16, m.clockUs);
      return { chunks: [b], byteLength: 24 };
    }
    case 'handover':
    case 'handover-done': {
      // epoch, then the LSN (handover) or the takeover time in microseconds (handover-done).
      const b = new Uint8Array(16);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, m.epoch, true);
      writeU64(dv, 8, m.type === 'handover' ? m.lastLsn : Math.max(0, Math.round(m.takeoverMs * 1000)));
      return { chunks: [b], byteLength: 16 };
    }
    case 'handover-refused': {
      const reason = truncateUtf8(m.reason, MAX_REFUSAL_BYTES);
      const b = new Uint8Array(1 + reason.length);
      b[0] = reason.length;
      b.set(reason, 1);
      return { chunks: [b], byteLength: b.length };
    }
    case 'hello': {
      let id = utf8.encode(m.nodeId);
      if (id.length > MAX_NODE_ID_BYTES) id = id.subarray(0, MAX_NODE_ID_BYTES);
      if (m.nonce.length !== NONCE_BYTES) throw new RangeError(`hello nonce must be ${NONCE_BYTES} bytes`);
      const b = new Uint8Array(HELLO_FIXED + id.length);
      const dv = new DataView(b.buffer);
      dv.setUint8(0, m.role === 'primary' ? 1 : 2);
      dv.setUint8(1, id.length);
      dv.setUint32(4, m.epoch, true);
      writeU64(dv, 8, m.lastLsn);
      b.set(m.nonce, 16);
      b.set(id, HELLO_FIXED);
      return { chunks: [b], byteLength: b.length };
    }
  }
}

export function decodeMessageBody(type: MessageType, body: Uint8Array): Message | { error: string } {
  const dv = new DataView(body.buffer, body.byteOffset, body.length);
  switch (type) {
    case 'records': {
      const records = decodeBatch(body);
      return 'error' in records ? records : { type, records };
    }
    case 'ack': {
      if (body.length !== 8) return { error: `ack body of ${body.length} bytes, expected 8` };
      const lsn = readU64(dv, 0);
      return lsn < 0 ? { error: 'ack LSN beyond 2^53' } : { type, lsn };
    }
    case 'heartbeat': {
      if (body.length !== 24) return { error: `heartbeat body of ${body.length} bytes, expected 24` };
      const lsn = readU64(dv, 8);
      const clockUs = readU64(dv, 16);
      if (lsn < 0 || clockUs < 0) return { error: 'heartbeat figure beyond 2^53' };
      return { type, epoch: dv.getUint32(0, true), lsn, clockUs };
    }
    case 'handover':
    case 'handover-done': {
      if (body.length !== 16) return { error: `${type} body of ${body.length} bytes, expected 16` };
      const v = readU64(dv, 8);
      if (v < 0) return { error: `${type} figure beyond 2^53` };
      const epoch = dv.getUint32(0, true);
      if (epoch === 0) return { error: `${type} with epoch 0` };
      return type === 'handover' ? { type, epoch, lastLsn: v } : { type, epoch, takeoverMs: v / 1000 };
    }
    case 'handover-refused': {
      if (body.length < 1 || body.length !== 1 + body[0]!) return { error: 'handover-refused reason length does not match the body' };
      return { type, reason: utf8Decoder.decode(body.subarray(1)) };
    }
    case 'hello': {
      if (body.length < HELLO_FIXED) return { error: `hello body of ${body.length} bytes, at least ${HELLO_FIXED} expected` };
      const roleCode = dv.getUint8(0);
      const idLen = dv.getUint8(1);
      if (roleCode !== 1 && roleCode !== 2) return { error: `hello with unknown role ${roleCode}` };
      if (body.length !== HELLO_FIXED + idLen) return { error: 'hello node id length does not match the body' };
      const lastLsn = readU64(dv, 8);
      if (lastLsn < 0) return { error: 'hello LSN beyond 2^53' };
      return {
        type,
        role: roleCode === 1 ? 'primary' : 'backup',
        epoch: dv.getUint32(4, true),
        nodeId: utf8Decoder.decode(body.subarray(HELLO_FIXED)),
        nonce: body.slice(16, 16 + NONCE_BYTES),
        lastLsn,
      };
    }
  }
}

/** At most `max` bytes of s's UTF-8, cut at a character boundary. */
function truncateUtf8(s: string, max: number): Uint8Array {
  const b = utf8.encode(s);
  if (b.length <= max) return b;
  let end = max;
  // Back off continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end);
}

/** Seals one direction's frames: numbers them and MACs them. */
export class FrameSealer {
  private counter = 0;

  constructor(private macer: FrameMac) {}

  /** Switch to the session MAC after the hello; the counter carries on. */
  setMac(mac: FrameMac): void {
    this.macer = mac;
  }

  get framesSealed(): number {
    return this.counter;
  }

  /** The frame's chunks, body by reference: header, body chunks, MAC. */
  seal(m: OutgoingMessage): Uint8Array[] {
    const body = encodeMessageBody(m);
    const head = new Uint8Array(FRAME_HEADER_BYTES);
    const dv = new DataView(head.buffer);
    head[0] = MAGIC_0;
    head[1] = MAGIC_1;
    head[2] = FRAME_VERSION;
    head[3] = TYPE_CODES[m.type];
    dv.setUint32(4, body.byteLength, true);
    const counter = this.counter++;
    writeU64(dv, 8, counter);
    const signed = [head, ...body.chunks];
    return [...signed, this.macer.mac(signed, counter)];
  }
}

/** A frame that passed every check. */
export interface VerifiedFrame {
  type: MessageType;
  counter: number;
  body: Uint8Array;
}

/** Why a stream was refused: `auth` for a bad MAC or counter, `protocol` for everything else. */
export interface FrameError {
  error: string;
  kind: 'auth' | 'protocol';
}

export interface FrameDecoderOptions {
  mac: FrameMac;
  /** Largest body accepted; a larger length field is refused before any of the body is buffered. */
  maxBody?: number;
}

/** Reassembles and verifies frames from a byte stream cut anywhere. */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private expected = 0;
  private failure: FrameError | null = null;
  private macer: FrameMac;
  private readonly maxBody: number;

  constructor(opts: FrameDecoderOptions) {
    this.macer = opts.mac;
    this.maxBody = opts.maxBody ?? DEFAULT_MAX_FRAME_BODY;
  }

  /** Switch to the session MAC after the hello. */
  setMac(mac: FrameMac): void {
    this.macer = mac;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  get failed(): FrameError | null {
    return this.failure;
  }

  push(chunk: Uint8Array): void {
    if (this.failure !== null || chunk.length === 0) return;
    this.buffered += chunk.length;
    // A read that continues the previous one in the same memory (ReadSlabs) joins it, so that a
    // frame split between them is taken as one view rather than copied together.
    const last = this.chunks.length - 1;
    const prev = this.chunks[last];
    if (prev !== undefined && prev.buffer === chunk.buffer && prev.byteOffset + prev.length === chunk.byteOffset) {
      this.chunks[last] = new Uint8Array(prev.buffer, prev.byteOffset, prev.length + chunk.length);
      return;
    }
    this.chunks.push(chunk);
  }

  /** The next complete frame, a refusal (then every later call returns it too), or null for "need more". */
  next(): VerifiedFrame | FrameError | null {
    if (this.failure !== null) return this.failure;
    if (this.buffered < FRAME_HEADER_BYTES) {
      // Refuse a wrong magic as soon as it shows, rather than waiting for a full header.
      return this.buffered > 0 && this.peek(Math.min(2, this.buffered)).some((b, i) => b !== (i === 0 ? MAGIC_0 : MAGIC_1))
        ? this.fail('protocol', 'bad magic: not a replication stream')
        : null;
    }
    const head = this.peek(FRAME_HEADER_BYTES);
    const dv = new DataView(head.buffer, head.byteOffset, FRAME_HEADER_BYTES);
    if (head[0] !== MAGIC_0 || head[1] !== MAGIC_1) return this.fail('protocol', 'bad magic: not a replication stream');
    if (head[2] !== FRAME_VERSION) return this.fail('protocol', `frame version ${head[2]}, this node speaks ${FRAME_VERSION}`);
    const type = TYPE_BY_CODE[head[3]];
    if (type === undefined) return this.fail('protocol', `unknown message type ${head[3]}`);
    const bodyLen = dv.getUint32(4, true);
    if (bodyLen > this.maxBody) return this.fail('protocol', `frame body of ${bodyLen} bytes exceeds the ${this.maxBody}-byte limit`);
    const total = FRAME_HEADER_BYTES + bodyLen + this.macer.bytes;
    if (this.buffered < total) return null;
    const counter = readU64(dv, 8);
    // A counter past 2^53 cannot be this session's (and is no nonce): refused like any wrong one.
    if (counter < 0) return this.fail('auth', `frame counter beyond 2^53, expected ${this.expected}: not this session's frame`);
    const frame = this.take(total);
    const signed = frame.subarray(0, FRAME_HEADER_BYTES + bodyLen);
    const mac = frame.subarray(FRAME_HEADER_BYTES + bodyLen);
    if (!macEquals(this.macer.mac([signed], counter), mac)) {
      return this.fail('auth', `bad MAC on a ${type} frame (wrong key, or a frame from another session)`);
    }
    if (counter !== this.expected) {
      return this.fail('auth', `frame counter ${counter}, expected ${this.expected}: replayed or reordered frame`);
    }
    this.expected++;
    return { type, counter, body: frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + bodyLen) };
  }

  private fail(kind: FrameError['kind'], error: string): FrameError {
    this.failure = { kind, error };
    this.chunks = [];
    this.buffered = 0;
    return this.failure;
  }

  /** The first n buffered bytes, without consuming them (copied only when they span chunks). */
  private peek(n: number): Uint8Array {
    const first = this.chunks[0];
    if (first.length >= n) return first.subarray(0, n);
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of this.chunks) {
      const part = c.subarray(0, n - at);
      out.set(part, at);
      at += part.length;
      if (at === n) break;
    }
    return out;
  }

  /** Consumes n bytes: a view when they lie in one chunk, one copy otherwise. */
  private take(n: number): Uint8Array {
    this.buffered -= n;
    const first = this.chunks[0];
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0];
      const need = n - at;
      if (c.length <= need) {
        out.set(c, at);
        at += c.length;
        this.chunks.shift();
      } else {
        out.set(c.subarray(0, need), at);
        this.chunks[0] = c.subarray(need);
        at = n;
      }
    }
    return out;
  }
}

/** Decodes a verified frame into its message; a body that does not parse is a protocol error. */
export function openFrame(f: VerifiedFrame): Message | FrameError {
  const m = decodeMessageBody(f.type, f.body);
  return 'error' in m ? { kind: 'protocol', error: `${f.type} message: ${m.error}` } : m;
}
