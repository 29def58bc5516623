// What the tests of the backup's shadows and service replicas start from: connection 1 opened by
// a log record (no options negotiated), records applied in LSN order, and a stand-in for the stack
// socket of the connection promoted at takeover.

import { Duplex } from 'node:stream';
import type { LogRecord, NewRecord, OpenRecord } from '../../../src/replication/log-records.js';
import type { ShadowTable } from '../../../src/replication/shadow.js';
import { TUPLE } from '../tcp/harness.js';

/** Connection 1 on TUPLE: ISS 1000, IRS 5000, MSS 1460, no window scaling, SACK or timestamps. */
export const OPEN: Omit<OpenRecord, 'lsn'> = {
  kind: 'open',
  conn: 1,
  tuple: TUPLE,
  iss: 1000,
  irs: 5000,
  options: { sndMss: 1460, rcvMss: 1460, sndWindowScale: 0, rcvWindowScale: 0, sackPermitted: false, timestamps: false, tsOffset: 0, sndWindow: 65535, rcvWindow: 65535 },
};

/** Applies records to `table` as the log would: each with the next LSN, from 1. */
export function logApplier(table: ShadowTable): (r: NewRecord) => void | 'blocked' {
  let lsn = 0;
  return (r) => table.apply({ ...r, lsn: ++lsn } as LogRecord);
}

/** Stands in for the promoted connection's stack socket: records what reaches it. */
export class StackSocketStandIn extends Duplex {
  written = '';
  ended = false;
  override _read(): void {}
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.written += chunk.toString();
    cb();
  }
  override _final(cb: () => void): void {
    this.ended = true;
    cb();
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
}
