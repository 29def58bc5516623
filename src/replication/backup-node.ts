// A backup: applies the primary's log to shadow connections, runs the service replica on them,
// and acknowledges what it applied. Its stack exists from the start but is silent (the VIP's
// packets go to the primary) until takeover, which promotes every shadow into a connection of
// this stack and attaches the replica sockets to them.

import { createStack, type Stack, type StackOptions } from '../stack/stack.js';
import { realClock, type Clock } from '../stack/driver.js';
import type { TcpConfig } from '../stack/tcp/api.js';
import type { Service } from '../services/service.js';
import type { Link } from '../tun/link.js';
import type { LogRecord, Lsn } from './log-records.js';
import { ReplicaLog } from './replication-log.js';
import { ServiceReplica } from './service-replica.js';
import { promote, ShadowTable } from './shadow.js';

export interface BackupNodeOptions {
  link: Link;
  addresses: string[];
  port: number;
  /** The backup's own instance of the primary's service. */
  service: Service;
  /** Must equal the primary's: windows and buffers resume from the same figures. */
  tcp?: Partial<TcpConfig>;
  isnKey?: Uint8Array;
  clock?: Clock;
  random?: () => number;
  /** The rest of the stack's options (connection log, ICMP echo, half-open queue). */
  stack?: Pick<StackOptions, 'log' | 'icmpEcho' | 'synBacklog'>;
  /** Sends a cumulative acknowledgement to the primary. */
  sendAck: (lsn: Lsn) => void;
  /** Coalesces acknowledgements (e.g. one per event-loop turn). */
  scheduleAck?: (run: () => void) => void;
  maxAheadBytes?: number;
  /** The epoch this backup starts in; a takeover moves to the next one (fencing, 5.4). Default 1. */
  epoch?: number;
  say?: (line: string) => void;
}

export interface TakeoverReport {
  promoted: number;
  /** Shadows with nothing left to resume (both FINs exchanged and acknowledged). */
  finished: number;
  /** Shadows that could not be promoted, with the reason. */
  failed: { conn: number; error: string }[];
}

export interface BackupStatus {
  role: 'backup' | 'primary';
  epoch: number;
  shadows: number;
  lastApplied: Lsn;
  divergences: number;
  /** The last refusal of the log (gap, duplicate, failing record), if any. */
  logError: string | null;
}

export class BackupNode {
  readonly stack: Stack;
  readonly shadows: ShadowTable;
  readonly replica: ServiceReplica;
  readonly replicaLog: ReplicaLog;
  private readonly clock: Clock;
  private role: 'backup' | 'primary' = 'backup';
  private currentEpoch: number;
  private logError: string | null = null;
  private readonly say: (line: string) => void;

  constructor(private readonly opts: BackupNodeOptions) {
    this.clock = opts.clock ?? realClock;
    this.currentEpoch = opts.epoch ?? 1;
    this.say = opts.say ?? (() => undefined);
    this.replica = new ServiceReplica(opts.service, { maxAheadBytes: opts.maxAheadBytes, say: this.say, sayFailed: this.say });
    this.shadows = new ShadowTable(this.clock, this.replica);
    this.replicaLog = new ReplicaLog({ apply: (r) => this.shadows.apply(r), sendAck: opts.sendAck, scheduleAck: opts.scheduleAck });
    this.stack = createStack({
      ...opts.stack,
      link: opts.link,
      addresses: opts.addresses,
      tcp: opts.tcp,
      isnKey: opts.isnKey,
      clock: this.clock,
      random: opts.random,
    });
    // New connections after takeover meet the listener like on any primary.
    this.stack.createServer((s) => opts.service.onConnection(s)).listen(opts.port);
  }

  /** Heartbeats and hellos announce it; a node that hears a higher one stops speaking for the VIP. */
  get epoch(): number {
    return this.currentEpoch;
  }

  get lastApplied(): Lsn {
    return this.replicaLog.lastApplied;
  }

  /**
   * A message of records from the primary. A gap, duplicate or record that does not fit stops
   * there (the caller drops the session; the primary resumes from lastApplied). Ignored after
   * takeover: this node is the primary now.
   */
  receive(records: LogRecord[]): { ok: true } | { ok: false; error: string } {
    if (this.role !== 'backup') return { ok: false, error: 'this node took over; it takes no log' };
    const r = this.replicaLog.receive(records);
    if (r.ok) return { ok: true };
    this.logError = r.error;
    this.say(`replication: refused the primary's log: ${r.error}`);
    return { ok: false, error: r.error };
  }

  resetAck(): void {
    this.replicaLog.resetAck();
  }

  status(): BackupStatus {
    return {
      role: this.role,
      epoch: this.currentEpoch,
      shadows: this.shadows.size,
      lastApplied: this.replicaLog.lastApplied,
      divergences: this.replica.stats.divergences,
      logError: this.logError,
    };
  }

  /**
   * Becomes the primary: stops applying the log, promotes every shadow into a live connection of
   * this stack (which retransmits from SND.UNA and sends a window update at once) and attaches
   * its replica socket. Taking the VIP on the network is the caller's step.
   */
  takeover(): TakeoverReport {
    if (this.role !== 'backup') throw new Error('already took over');
    this.role = 'primary';
    this.currentEpoch++;
    // Promoted TCBs get this host's own settings and sources, as its other connections do.
    const env = this.stack.env;
    const tcp = this.stack.tcpConfig;
    const report: TakeoverReport = { promoted: 0, finished: 0, failed: [] };
    const ctx = { now: this.clock(), primaryClockUs: this.shadows.primaryClockNow() };
    for (const s of [...this.shadows.all()]) {
      const sock = this.replica.release(s.id);
      try {
        const conn = promote(s, tcp, env, ctx);
        if (conn === null) {
          report.finished++;
          sock?.destroy();
          continue;
        }
        const real = this.stack.adoptConnection(conn, { allowHalfOpen: true });
        // Errors surface on the replica socket, which the service listens to.
        real.on('error', () => undefined);
        if (sock !== undefined) sock.attach(real);
        else real.destroy();
        report.promoted++;
      } catch (e) {
        report.failed.push({ conn: s.id, error: e instanceof Error ? e.message : String(e) });
        sock?.destroy();
      }
    }
    this.shadows.clear();
    this.say(`replication: took over: ${report.promoted} connection(s) resumed, ${report.finished} already finished, ${report.failed.length} failed`);
    return report;
  }

  async close(): Promise<void> {
    await this.opts.service.close();
    await this.stack.close();
  }
}
