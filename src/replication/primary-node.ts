// A primary: the stack serving the VIP, with the tap logging every connection and the output
// gate holding its packets until the backup has what they depend on. The transport to the backup
// is the caller's (the authenticated channel, or an in-memory one in simulations): it calls
// backupAttached() once the log is attached, backupLost() when the backup is gone.

import { createStack, type Stack, type StackOptions } from '../stack/stack.js';
import type { Clock } from '../stack/driver.js';
import { realClock } from '../stack/driver.js';
import type { TcpConfig } from '../stack/tcp/api.js';
import type { Service } from '../services/service.js';
import type { Link } from '../tun/link.js';
import type { Server } from '../stack/server.js';
import type { OutputGate } from './output-gate.js';
import { PrimaryTap } from './primary-tap.js';
import { ReplicationLog, type ReplicationLogOptions } from './replication-log.js';

export interface PrimaryNodeOptions {
  link: Link;
  /** The VIP(s), dotted quads. */
  addresses: string[];
  port: number;
  service: Service;
  tcp?: Partial<TcpConfig>;
  /** Half-open connections before SYN cookies (StackOptions.synBacklog). */
  synBacklog?: number;
  /** The rest of the stack's options (connection log, ICMP echo). */
  stack?: Pick<StackOptions, 'log' | 'icmpEcho'>;
  /** RFC 6528 secret shared with the backup. */
  isnKey?: Uint8Array;
  clock?: Clock;
  random?: () => number;
  log?: Omit<ReplicationLogOptions, 'startAfter'>;
  /** Heartbeat records (clock and congestion hints) every this many ms. Default 50. */
  heartbeatMs?: number;
  epoch?: () => number;
  say?: (line: string) => void;
}

export interface PrimaryStatus {
  protected: boolean;
  fenced: boolean;
  connections: number;
  replicated: number;
  unreplicated: number;
  lastLsn: number;
  ackedLsn: number;
  heldPackets: number;
}

export class PrimaryNode {
  readonly stack: Stack;
  /** Replaced by a fresh one when a backup joins this node after it went unprotected. */
  log: ReplicationLog;
  readonly tap: PrimaryTap;
  readonly gate: OutputGate;
  readonly server: Server;
  private readonly link: Link;
  private readonly service: Service;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private readonly heartbeatMs: number;
  private dead = false;
  private readonly logOptions: ReplicationLogOptions;
  private readonly say: (line: string) => void;

  constructor(opts: PrimaryNodeOptions) {
    const clock = opts.clock ?? realClock;
    this.link = opts.link;
    this.service = opts.service;
    this.heartbeatMs = opts.heartbeatMs ?? 50;
    this.say = opts.say ?? (() => undefined);
    this.logOptions = { scheduleFlush: (run) => queueMicrotask(run), ...opts.log };
    this.log = new ReplicationLog(this.logOptions);
    this.tap = new PrimaryTap({ log: this.log, clock, epoch: opts.epoch, say: opts.say, kick: () => this.stack.kick() });
    this.gate = this.tap.wrapLink(opts.link);
    this.stack = createStack({
      ...opts.stack,
      link: this.gate,
      addresses: opts.addresses,
      tcp: opts.tcp,
      synBacklog: opts.synBacklog,
      isnKey: opts.isnKey,
      clock,
      random: opts.random,
      wrapEnv: (env) => this.tap.wrapEnv(env),
    });
    this.server = this.stack.createServer((s) => opts.service.onConnection(s));
    this.server.listen(opts.port);
    opts.say?.('replication: primary starts UNPROTECTED (no backup attached yet)');
  }

  /** The backup holds the log from its first record: protect every connection from now on. */
  backupAttached(): void {
    if (this.dead) return;
    this.tap.protect();
    // The first heartbeat goes at once: a takeover needs the primary's clock for its TSvals.
    this.tap.heartbeat();
    if (this.heartbeatTimer === null) {
      this.heartbeatTimer = setInterval(() => this.tap.heartbeat(), this.heartbeatMs);
      this.heartbeatTimer.unref();
    }
  }

  /**
   * A backup joins this unprotected node holding nothing: replication starts over on a fresh log
   * (LSN 1 again). backupAttached() then brings the connections already open into it by snapshot
   * (reintegration, 5.5); new ones are protected from their SYN.
   */
  freshLog(): ReplicationLog {
    if (this.tap.isProtected) throw new Error('a protected primary keeps its log');
    this.log.close();
    this.log = new ReplicationLog(this.logOptions);
    this.tap.setLog(this.log);
    return this.log;
  }

  /** The backup is gone: serve on, unprotected, and say so. */
  backupLost(reason: string): void {
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    this.log.detach();
    this.tap.unprotect(reason);
  }

  /**
   * Another node took over with a higher epoch (5.4): stop speaking for the VIP at once. Nothing
   * held or produced from now on leaves, nothing received goes up; the process stays for the
   * operator to inspect or restart as a backup.
   */
  fence(reason: string): void {
    if (this.gate.isFenced) return;
    this.gate.fence();
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    this.say(`replication: FENCED, no longer answering for the VIP: ${reason}`);
  }

  status(): PrimaryStatus {
    return {
      protected: this.tap.isProtected,
      fenced: this.gate.isFenced,
      connections: this.stack.connectionCount,
      replicated: this.tap.stats.replicated,
      unreplicated: this.tap.stats.unreplicated,
      lastLsn: this.log.lastLsn,
      ackedLsn: this.log.ackedLsn,
      heldPackets: this.gate.heldPackets,
    };
  }

  /**
   * Planned switchover, this node's half: it stops taking input so that its connections stop
   * moving, waits until the backup holds every record (the packets waiting for them then leave),
   * and stops without a FIN or RST. Nothing it sent is unknown to the backup, which then takes
   * over with nothing to retransmit but what the clients did not yet acknowledge. Resolves false
   * when the log did not drain within `timeoutMs` (the node then stays up, input muted).
   */
  async handOver(timeoutMs = 2000): Promise<boolean> {
    if (this.dead) throw new Error('the node is stopped');
    this.gate.muteInput();
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    const deadline = performance.now() + timeoutMs;
    // Services may still write after the input stops (until the send buffers fill): go round
    // until a drained log stays drained.
    for (;;) {
      const target = this.log.lastLsn;
      this.log.flush();
      const left = deadline - performance.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([
        this.log.waitFor(target).then(() => true),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), left))),
      ]);
      clearTimeout(timer);
      if (!done) return false;
      await new Promise((r) => setImmediate(r));
      if (this.log.lastLsn === target && this.gate.heldPackets === 0) break;
    }
    await this.kill();
    return true;
  }

  /**
   * Dies abruptly, as a crashed process: nothing more leaves (held packets included), no FIN or
   * RST is sent, timers stop. Only for simulations; the caller cuts the replication link too.
   */
  async kill(): Promise<void> {
    if (this.dead) return;
    this.dead = true;
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    // Closing the link first makes everything the stack does while shutting down vanish.
    this.gate.close();
    this.tap.stop();
    this.log.close();
    await this.stack.close();
  }

  /** Orderly shutdown (tests' teardown). */
  async close(): Promise<void> {
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    this.dead = true;
    await this.service.close();
    await this.stack.close();
    this.log.close();
    this.link.close();
  }
}
