// A replication log that also keeps every record appended, as the backup would apply them.

import type { LogRecord, NewRecord } from '../../../src/replication/log-records.js';
import { ReplicationLog } from '../../../src/replication/replication-log.js';

export class SpyLog extends ReplicationLog {
  readonly records: LogRecord[] = [];
  /**
   * The backup's part in one go: every record so far sealed, sent and acknowledged, so the output
   * that waited for it (the connections' send limits) goes.
   */
  ackAll(): void {
    if (!this.attached) this.attach(() => undefined, this.ackedLsn);
    this.flush();
    this.onAck(this.lastLsn);
  }

  override append(r: NewRecord): number {
    const lsn = super.append(r);
    this.records.push({ ...r, lsn } as LogRecord);
    return lsn;
  }
}
