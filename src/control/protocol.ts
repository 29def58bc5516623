// The control socket's wire format: newline-delimited JSON, one request or reply per line.
//   request: {"id": 1, "method": "status", "params": {...}}
//   reply:   {"id": 1, "ok": true, "result": ...}
//            {"id": 1, "ok": false, "error": {"code": "invalid-params", "message": "..."}}
// A request that cannot be read at all gets a reply with id null. Lines are bounded: the socket is
// root-only, but a runaway client must not make the node buffer without limit.

export const CONTROL_PROTOCOL_VERSION = 1;
/** Longest request line accepted, in bytes (replies may be longer: status of many connections). */
export const MAX_REQUEST_LINE = 64 * 1024;

export type RequestId = string | number;

export interface ControlRequest {
  id: RequestId;
  method: string;
  params: Record<string, unknown>;
}

export type ControlErrorCode =
  | 'parse-error' // not JSON
  | 'invalid-request' // JSON, but not {id, method, params?}
  | 'line-too-long'
  | 'unknown-method'
  | 'invalid-params'
  | 'unavailable' // valid, but this node cannot do it (e.g. no replication link)
  | 'busy' // too many control connections
  | 'internal';

export interface ControlError {
  code: ControlErrorCode;
  message: string;
}

export type ControlReply =
  | { id: RequestId | null; ok: true; result: unknown }
  | { id: RequestId | null; ok: false; error: ControlError };

/** Parses one request line; returns a reply-ready error instead of throwing. */
export function parseRequest(line: string): { request: ControlRequest } | { error: ControlError; id: RequestId | null } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    return { id: null, error: { code: 'parse-error', message: `request is not JSON: ${err instanceof Error ? err.message : String(err)}` } };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { id: null, error: { code: 'invalid-request', message: 'request must be a JSON object {"id", "method", "params"}' } };
  }
  const rec = value as Record<string, unknown>;
  const id = rec['id'];
  if (!(typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)))) {
    return { id: null, error: { code: 'invalid-request', message: 'request needs an "id" (string or number)' } };
  }
  const method = rec['method'];
  if (typeof method !== 'string' || method === '') {
    return { id, error: { code: 'invalid-request', message: 'request needs a "method" (string)' } };
  }
  const params = rec['params'] ?? {};
  if (typeof params !== 'object' || params === null || Array.isArray(params)) {
    return { id, error: { code: 'invalid-request', message: '"params" must be an object' } };
  }
  return { request: { id, method, params: params as Record<string, unknown> } };
}

export function encodeReply(reply: ControlReply): string {
  return JSON.stringify(reply) + '\n';
}

export function encodeRequest(request: ControlRequest): string {
  return JSON.stringify(request) + '\n';
}

/**
 * Splits a byte stream into lines, at most `maxLine` bytes each. A longer line is reported once
 * through onOverflow and skipped up to its newline, so the stream stays in step.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;

  constructor(
    private readonly maxLine: number,
    private readonly onLine: (line: string) => void,
    private readonly onOverflow: () => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) {
        this.keep(chunk.subarray(start));
        return;
      }
      this.keep(chunk.subarray(start, nl));
      if (!this.skipping) {
        const line = Buffer.concat(this.parts, this.size).toString('utf8').replace(/\r$/, '');
        if (line.trim() !== '') this.onLine(line);
      }
      this.parts = [];
      this.size = 0;
      this.skipping = false;
      start = nl + 1;
    }
  }

  /** Bytes held for an unfinished line. */
  get pending(): number {
    return this.size;
  }

  private keep(piece: Buffer): void {
    if (this.skipping || piece.length === 0) return;
    if (this.size + piece.length > this.maxLine) {
      this.parts = [];
      this.size = 0;
      this.skipping = true;
      this.onOverflow();
      return;
    }
    this.parts.push(piece);
    this.size += piece.length;
  }
}
