// The replication log's records as plain data (ARCHITECTURE.md 5.2). The primary appends one record
// per event it must not lose; the backup applies them in LSN order. Nothing here does I/O.

import type { SeqNum } from '../stack/wire/seq.js';
import type { FourTuple } from '../stack/wire/types.js';

/**
 * Log sequence number: a safe integer, 1 for the first record, +1 per record.
 *
 * A number rather than a bigint because LSNs are compared, stored as Map keys and carried on every
 * record of the hot path, where bigint arithmetic allocates; 2^53 records at ten million a second
 * last 28 years. On the wire it takes 64 bits, so the format never has to change, and a decoder
 * refuses a value above Number.MAX_SAFE_INTEGER.
 */
export type Lsn = number;

/** No record yet: the LSN "before the first". */
export const LSN_NONE: Lsn = 0;

/**
 * A connection's identity in the log: a 32-bit number the primary assigns at `open`, shorter than
 * the 4-tuple and never reused while either node still knows the connection.
 */
export type ConnId = number;

/** A byte offset in one direction of a connection's stream: a safe integer, 64 bits on the wire. */
export type StreamOffset = number;

/** What the handshake settled, enough to rebuild identical segments on the backup (5.1 item 2). */
export interface NegotiatedOptions {
  /** Largest segment we may send (the peer's MSS, possibly lowered by PMTU). */
  sndMss: number;
  /** The MSS we advertised. */
  rcvMss: number;
  /** Shift applied to the peer's window field; 0 without window scaling. */
  sndWindowScale: number;
  /** Shift applied to the window we advertise; 0 without window scaling. */
  rcvWindowScale: number;
  sackPermitted: boolean;
  timestamps: boolean;
  /**
   * Added to the timestamp clock to get our TSval (unsigned 32-bit), so that the backup's TSvals
   * continue the primary's and never go backwards (5.1 item 2).
   */
  tsOffset: number;
  /** The peer's window in bytes (scaled) after the handshake. */
  sndWindow: number;
  /** The window in bytes we advertised on the SYN-ACK (or SYN). */
  rcvWindow: number;
}

export interface OpenRecord {
  kind: 'open';
  lsn: Lsn;
  conn: ConnId;
  tuple: FourTuple;
  iss: SeqNum;
  irs: SeqNum;
  options: NegotiatedOptions;
}

/** Client bytes accepted in order; out-of-order data is never logged (the client resends it). */
export interface InputRecord {
  kind: 'input';
  lsn: Lsn;
  conn: ConnId;
  /**
   * Stream offset of data[0]. Derivable from RCV.NXT only modulo 2^32; carried so that the backup
   * checks per-connection continuity and boundaries (5.5) name bytes unambiguously.
   */
  offset: StreamOffset;
  data: Uint8Array;
  /** RCV.NXT after these bytes (and the FIN, when set). */
  rcvNxt: SeqNum;
  /** The client's FIN follows the data. */
  fin: boolean;
}

/** Bytes the primary's service wrote, logged before any of them is sent (5.1 item 3). */
export interface OutputRecord {
  kind: 'output';
  lsn: Lsn;
  conn: ConnId;
  offset: StreamOffset;
  data: Uint8Array;
  /** The service shut down or closed its side after these bytes. */
  fin: boolean;
}

/**
 * Bytes the primary's service wrote, logged as their length and a digest instead of the bytes: for a
 * deterministic service (Service.deterministic) the backup's replica writes the same bytes, and the
 * backup applies (and so acknowledges) this record only once its replica has written them and they
 * match. 5.1 rule 3 then holds as "the backup holds the bytes before any of them is sent", without
 * the primary shipping every byte of a download a second time (docs/replication.md, "Output digests").
 */
export interface OutputDigestRecord {
  kind: 'output-digest';
  lsn: Lsn;
  conn: ConnId;
  offset: StreamOffset;
  length: number;
  /**
   * outputDigest() of the bytes (16 bytes; CRC-32 or Poly1305 by length, output-digest.ts): catches
   * a replica that writes other bytes of the same length.
   */
  digest: Uint8Array;
  fin: boolean;
}

/** The client's cumulative ACK: lets the backup trim its copy of the output. */
export interface AckRecord {
  kind: 'ack';
  lsn: Lsn;
  conn: ConnId;
  ack: SeqNum;
  /** The client's window in bytes, already scaled. */
  window: number;
  /**
   * The client's latest TSval we hold (TS.Recent, RFC 7323), when timestamps are on: the promoted
   * connection echoes it and applies PAWS from it instead of from nothing.
   */
  tsRecent?: number;
}

/** An input offset where the service's per-connection state is empty (5.5). */
export interface BoundaryRecord {
  kind: 'boundary';
  lsn: Lsn;
  conn: ConnId;
  inputOffset: StreamOffset;
}

export interface CloseRecord {
  kind: 'close';
  lsn: Lsn;
  conn: ConnId;
  /** Free text for logs and reports (UTF-8, at most MAX_REASON_BYTES). */
  reason: string;
}

export interface ResetRecord {
  kind: 'reset';
  lsn: Lsn;
  conn: ConnId;
  reason: string;
}

/** Congestion state of one connection, so that the backup resumes at speed, not from slow start. */
export interface CongestionHint {
  conn: ConnId;
  cwnd: number;
  ssthresh: number;
  /** Null before the first RTT sample. */
  srttUs: number | null;
  rttvarUs: number;
}

/**
 * The primary's pulse inside the log. Unlike the channel's own heartbeat message, it is ordered
 * with the other records, so congestion hints apply to the connection state they were taken from.
 */
export interface HeartbeatRecord {
  kind: 'heartbeat';
  lsn: Lsn;
  epoch: number;
  /** The primary's clock in microseconds when the record was appended. */
  clockUs: number;
  congestion: CongestionHint[];
}

/** Bytes a snapshot keeps of one stream direction, to replay or resend after reintegration. */
export interface RetainedRange {
  stream: 'input' | 'output';
  offset: StreamOffset;
  data: Uint8Array;
}

/** A service boundary (5.5): stream offsets in both directions at which the service held no state. */
export interface StreamBoundary {
  input: StreamOffset;
  output: StreamOffset;
}

/**
 * Everything a shadow needs of a connection the backup never saw (reintegration, 5.5): what an
 * `open` record carries, plus where both streams stand now. Version 2 (snapshot-state.ts has the
 * layout); a decoder refuses others.
 */
export interface SnapshotState {
  version: 2;
  tuple: FourTuple;
  iss: SeqNum;
  irs: SeqNum;
  /** As at open, with the current windows. */
  options: NegotiatedOptions;
  rcvNxt: SeqNum;
  /** Client bytes accepted so far (the input stream's end offset, before any FIN). */
  inputEnd: StreamOffset;
  peerFin: boolean;
  /** The client's cumulative ACK, and the output offset it stands at (bytes it acknowledged). */
  sndUna: SeqNum;
  ackedOutput: StreamOffset;
  /** Bytes the service's output reached in the TCP send buffer, and whether our FIN follows. */
  outputEnd: StreamOffset;
  ourFin: boolean;
  /** The client acknowledged our FIN too. */
  finAcked: boolean;
  /** Which FIN came first, when both did (CLOSING/TIME-WAIT versus LAST-ACK). */
  firstFin: 'peer' | 'ours' | null;
  /** The client's window in bytes, already scaled, and its latest TSval held (TS.Recent). */
  sndWnd: number;
  tsRecent: number | null;
  /** The service's latest boundary: its replica restarts from there. */
  boundary: StreamBoundary;
}

/**
 * A whole connection, for a backup joining a live primary (reintegration, 5.5). `retained` holds
 * two ranges: the input from boundary.input to inputEnd (replayed into the service replica) and
 * the output from ackedOutput to outputEnd (not yet acknowledged by the client: resent after a
 * takeover, and compared with what the replica regenerates).
 */
export interface SnapshotRecord {
  kind: 'snapshot';
  lsn: Lsn;
  conn: ConnId;
  state: SnapshotState;
  retained: RetainedRange[];
}

export type LogRecord =
  | OpenRecord
  | InputRecord
  | OutputRecord
  | OutputDigestRecord
  | AckRecord
  | BoundaryRecord
  | CloseRecord
  | ResetRecord
  | HeartbeatRecord
  | SnapshotRecord;

export type RecordKind = LogRecord['kind'];

/** Omit that keeps a union a union (the built-in Omit collapses it). */
type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A record before the log has given it an LSN: what `ReplicationLog.append` takes. */
export type NewRecord = OmitEach<LogRecord, 'lsn'>;

/** Reasons are for humans; bounding them keeps a record's size predictable. */
export const MAX_REASON_BYTES = 1024;

/** The connection a record belongs to, or null for log-wide records (heartbeat). */
export function recordConn(r: LogRecord | NewRecord): ConnId | null {
  return r.kind === 'heartbeat' ? null : r.conn;
}
