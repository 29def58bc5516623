// Replication as one `understudy node` runs it (ARCHITECTURE.md 5, docs/replication.md): the
// composition of the building blocks in src/replication around a real stack.
//
// Both roles build the same plumbing before the stack exists: the PrimaryTap's env hook (every new
// connection gets an observer) and the link chain stack -> OutputGate -> HoldLink -> client link.
// A primary listens for its backup, logs every connection while one is attached (output commit by
// LSN in the gate) and serves unprotected otherwise. A backup dials its primary, applies records
// into shadows and runs the service replica on them; when the primary is silent on the channel AND
// on the LAN for dead-after, it takes over: epoch+1, promote every shadow, attach the replica
// sockets, take the VIP, then let the held retransmissions and window updates go. From then on it
// is a primary itself, listening for a new backup on its own replication address.

import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import type { Service } from '../../services/service.js';
import type { Stack } from '../../stack/stack.js';
import { realClock } from '../../stack/driver.js';
import type { TcpEnv } from '../../stack/tcp/api.js';
import type { Socket } from '../../stack/socket.js';
import type { Link } from '../../tun/link.js';
import type { ReplicationKey } from '../auth.js';
import { type Endpoint, type PeerInfo, ReplicationChannel } from '../channel.js';
import type { PathSilence } from '../failure-detector.js';
import { LanHeartbeatReceiver } from '../lan-heartbeat.js';
import type { HandoverMessage } from '../framing.js';
import type { LogRecord } from '../log-records.js';
import { MessageFaults } from '../message-faults.js';
import type { OutputGate } from '../output-gate.js';
import { PrimaryTap } from '../primary-tap.js';
import { type PrimaryWatch, watchPrimary } from '../primary-watch.js';
import type { CommitLatency } from '../commit-latency.js';
import { ReplicaLog, ReplicationLog } from '../replication-log.js';
import { type ReplicaSocket, ServiceReplica } from '../service-replica.js';
import { clientWaits, type PromoteContext, promote, type Shadow, ShadowTable } from '../shadow.js';
import { HoldLink } from './hold-link.js';
import { PendingTuples } from './pending-tuples.js';
import { interfaceIpv4, LanBeacon, type LanTarget } from './lan-beacon.js';
import { LoopDelayWatch } from './loop-delay.js';
import { SlicedApply } from './sliced-apply.js';
import { forEachInSlices, type TimeSlicing } from './time-slices.js';
import { awaitHandoverReply, DEFAULT_SWITCHOVER_TIMEOUT_MS, drainLog, handoverLsnRefusal, type SwitchoverInfo, type SwitchoverResult } from './switchover.js';

export type ReplicationRole = 'primary' | 'backup';

/** The logger the CLI hands in (structurally src/cli/log.ts's Logger; replication does not import the CLI). */
export interface ReplicationLogger {
  debug(event: string, fields?: Readonly<Record<string, string | number | boolean | null | undefined>>): void;
  info(event: string, fields?: Readonly<Record<string, string | number | boolean | null | undefined>>): void;
  warn(event: string, fields?: Readonly<Record<string, string | number | boolean | null | undefined>>): void;
  error(event: string, fields?: Readonly<Record<string, string | number | boolean | null | undefined>>): void;
  /** False when lines of this level are dropped (the takeover then builds no per-connection lines); absent: all are kept. */
  enabled?(level: 'debug' | 'info' | 'warn' | 'error'): boolean;
}

export interface ReplicationConfig {
  role: ReplicationRole;
  /** Own replication address: the primary listens here (TCP), every node takes LAN heartbeats here (UDP). */
  listen: Endpoint;
  /** The other node's replication address: a backup dials it; its port is where LAN heartbeats go. */
  peer: Endpoint;
  key: ReplicationKey;
  heartbeatMs: number;
  deadAfterMs: number;
  /** The client-facing interface: LAN heartbeats go to its broadcast address. */
  lan?: string | undefined;
  /** Run at takeover (routed setups), with UNDERSTUDY_VIP and UNDERSTUDY_EPOCH in its environment. */
  onTakeover?: string | undefined;
  vip: string;
  /**
   * How the service's output goes into the log: 'auto' (default) as digests of large writes for a
   * deterministic service (Service.deterministic), bytes otherwise; 'bytes' always as bytes.
   */
  outputLog?: 'auto' | 'bytes';
  nodeId?: string;
}

/** What the node runner does for the takeover: the host-side steps it also undoes at stop. */
export interface VipControl {
  addRoute(): Promise<void>;
  /** Resolves false when there is no LAN interface to announce on. */
  enableProxyArp(): Promise<boolean>;
  gratuitousArp(count: number): Promise<void>;
  /** Withdraws the route and proxy ARP (a fenced node). */
  releaseVip(): Promise<void>;
  /**
   * A promoted connection's socket, for the node's connection counts and its close line. No open
   * line: the takeover logs a summary at info and each connection at debug, after the output left.
   */
  adopted(socket: Socket): void;
}

export interface ReplicationStatus {
  role: ReplicationRole;
  epoch: number;
  protected: boolean;
  protectedReason: string | null;
  fenced: boolean;
  peer: { state: 'connected' | 'disconnected'; nodeId: string | null; address: string | null; role: string | null; epoch: number | null };
  /**
   * Primary: records and bytes the backup has not acknowledged, and for how long the oldest of them
   * has waited without the acknowledged LSN moving (0 when none is outstanding). Null on a backup.
   */
  lag: {
    records: number;
    bytes: number;
    lastLsn: number;
    ackedLsn: number;
    messagesInFlight: number;
    waitingMs: number;
    /** Output commit: packets waiting for the backup now, and since start those that waited and those that went at once. */
    packets?: { waiting: number; waited: number; passed: number };
    /** Sent-to-acknowledged times of the last replication messages (null before the first). */
    commit?: CommitLatency | null;
  } | null;
  /** Backup: what it applied; replicaFailed counts connections its copy of the service could not serve (unprotected). */
  applied: { lastLsn: number; shadows: number; divergences: number; replicaFailed: number } | null;
  /** Milliseconds since the peer was last heard on the replication channel / on the LAN. */
  heartbeatAgeMs: number | null;
  lanHeartbeatAgeMs: number | null;
  heartbeatMs: number;
  deadAfterMs: number;
  connections: { replicated: number; unreplicated: number; logged: number };
  /** Connections brought to backups by snapshot, those still waiting for a boundary, client bytes kept for that. */
  reintegration: { snapshots: number; pending: number; retainedBytes: number };
  takeover: { at: string; ms: number; promoted: number } | null;
  /** The last planned switchover this node took part in (either side), or tried. */
  switchover: SwitchoverInfo | null;
  channel: { authFailures: number; protocolErrors: number; sessions: number };
  /** The last time the session with the peer was lost, and why (null while it never was). */
  lastPeerLoss: { at: string; reason: string } | null;
}

/** The replication link as `status` shows it beside the client link. */
export interface ReplicationLinkView {
  /** e.g. "tcp 198.19.0.1:7070 <-> 198.19.0.2:7070". */
  device: string;
  faults: MessageFaults;
  frames: { sent: number; received: number; bytesSent: number; bytesReceived: number; refused: number };
}

/** What both nodes of a pair give their stacks alike (the StackOptions of the same names). */
export interface SharedStackOptions {
  isnKey: Uint8Array;
  synCookieKey: Uint8Array;
  synCookieClockOffsetUs: number;
  tsOffset: number;
}

const LOG_WINDOW = 64;
/**
 * Messages in flight at which the end-of-turn flush keeps a part-filled batch open and waits for an acknowledgement
 * (ReplicationLog.holdWhileInFlight): fewer, larger messages and acks on a CPU-bound pair.
 */
const LOG_HOLD_WHILE_IN_FLIGHT = 2;
/**
 * The longest turn of bulk work (the primary's snapshots at attach, the backup's applying):
 * well inside a heartbeat interval, so the channel's heartbeats leave between two slices.
 */
function sliceMs(heartbeatMs: number): number {
  return Math.max(5, Math.min(20, heartbeatMs / 2));
}

/** Gratuitous ARP after the first: Linux neighbours may ignore updates younger than locktime (1 s). */
const GARP_REPEATS = 5;
const GARP_SPACING_MS = 300;

export class ReplicatedNode {
  readonly nodeId: string;
  private role: ReplicationRole;
  private epoch = 1;
  private seenEpoch = 0;
  private fenced = false;
  private stack: Stack | null = null;
  private service: Service | null = null;
  private vipControl: VipControl | null = null;

  // primary side
  private log: ReplicationLog;
  private readonly tap: PrimaryTap;
  private gate: OutputGate | null = null;
  private hold: HoldLink | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private beacon: LanBeacon | null = null;
  /**
   * When this primary was last possibly unheard by its backup (Date.now()): its LAN link down, or
   * its own heartbeats late by half of dead-after (a stalled process). Null: never.
   */
  private unheardAt: number | null = null;
  private lastTickAt: number | null = null;
  private holdingIsolated = false;
  /** From the takeover's new epoch on: the LAN beacon speaks as primary before the role switches. */
  private announcing = false;

  // both
  private channel: ReplicationChannel | null = null;
  private lanReceiver: LanHeartbeatReceiver | null = null;
  private lastChannelHeard: number | null = null;
  private lastLanHeard: number | null = null;

  // backup side
  private replica: ReplicaLog | null = null;
  /** Received records waiting for their slice of the event loop (sliced-apply.ts). */
  private applier: SlicedApply | null = null;
  private shadows: ShadowTable | null = null;
  private serviceReplica: ServiceReplica | null = null;
  private watch: PrimaryWatch | null = null;
  private takeoverInfo: ReplicationStatus['takeover'] = null;
  private takingOver = false;
  private closed = false;
  // planned switchover (primary side)
  private switching = false;
  /** A higher epoch was heard while switching: the backup took over even if its reply is lost. */
  private supersededWhileSwitching = false;
  private switchoverInfo: SwitchoverInfo | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Operator faults on the replication link: one set for the node, whichever channel is current. */
  readonly linkFaults = new MessageFaults(process.pid);
  private lastPeerLoss: { at: number; reason: string } | null = null;
  /** When the acknowledged LSN last moved (or a backup attached): the age of the lag. */
  private lastAckProgress = Date.now();
  private loopDelay: LoopDelayWatch | null = null;

  constructor(
    private readonly cfg: ReplicationConfig,
    private readonly logger: ReplicationLogger,
  ) {
    this.role = cfg.role;
    this.nodeId = cfg.nodeId ?? `${hostname()}:${process.pid}`;
    this.log = this.newLog();
    this.tap = new PrimaryTap({
      log: this.log,
      // The stack's driver clock: the tap's TSval offset and heartbeat clock must be on it.
      clock: realClock,
      epoch: () => this.epoch,
      say: (line) => this.logger.info('replication.protection', { detail: line }),
      onReintegration: (p) => this.logger.info('replication.reintegration', { snapshots: p.snapshots, pending: p.pending, bytes: p.bytes, done: p.done }),
      // Like the backup's applying: the heartbeats leave between two slices of snapshots.
      attachSlices: { sliceMs: sliceMs(cfg.heartbeatMs), schedule: (run) => setImmediate(run) },
      kick: () => this.stack?.kick(),
    });
  }

  get currentRole(): ReplicationRole {
    return this.role;
  }

  /** For createStack: every connection the host creates is observed by the tap. */
  wrapEnv(env: TcpEnv): TcpEnv {
    return this.tap.wrapEnv(env);
  }

  /**
   * For createStack: the secrets and clock anchors both nodes share. ARCHITECTURE.md 3: ISNs use
   * "a keyed hash of the 4-tuple plus a clock ..., the key shared by primary and backup". So does
   * the SYN-cookie secret: a cookie the primary handed out just before it died comes back, as the
   * client's ACK, to the node that took over, which must accept it rather than answer with a RST.
   * The connection it then builds continues the TSvals of the cookie's SYN-ACK only if both nodes
   * stamp TSvals from one clock (RFC 7323 5: the client's PAWS check drops a segment whose TSval
   * went back). Cookie slots and TSvals are therefore anchored to wall-clock time, the one clock
   * both nodes have (their driver clocks count from their own process start); the nodes' clocks
   * must agree to well within dead-after, which NTP gives.
   */
  sharedStackOptions(): SharedStackOptions {
    const wallOffsetUs = Math.round(performance.timeOrigin * 1000);
    const tsBase = Buffer.from(this.cfg.key.derive('tsval offset', 4)).readUInt32BE(0);
    return {
      isnKey: this.cfg.key.derive('isn'),
      synCookieKey: this.cfg.key.derive('syn cookie'),
      synCookieClockOffsetUs: wallOffsetUs,
      tsOffset: (tsBase + Math.floor(wallOffsetUs / 1000)) >>> 0,
    };
  }

  /** For createStack: stack -> output gate -> hold (takeover) -> the client link. */
  wrapLink(link: Link): Link {
    this.hold = new HoldLink(link);
    this.gate = this.tap.wrapLink(this.hold);
    return this.gate;
  }

  /** Starts the role once the stack and the service exist. */
  async start(stack: Stack, service: Service, vip: VipControl): Promise<void> {
    this.stack = stack;
    this.service = service;
    this.tap.setOutputDigests(service.deterministic === true && this.cfg.outputLog !== 'bytes');
    this.logger.info('replication.output-log', { mode: this.tap.outputDigests ? 'digests of large writes' : 'bytes', service: service.name });
    this.vipControl = vip;
    // A loop blocked for a heartbeat interval delays this node's heartbeats: the peer counts dead-after from there.
    this.loopDelay = new LoopDelayWatch(this.cfg.heartbeatMs, (r) => this.logger.debug('node.loop-delay', { role: this.role, maxMs: r.maxMs, p99Ms: r.p99Ms, deadAfterMs: this.cfg.deadAfterMs }));
    await this.startLanReceiver();
    if (this.role === 'primary') await this.startPrimary();
    else await this.startBackup();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.stopPrimaryTimers();
    this.watch?.stop();
    this.loopDelay?.stop();
    this.lanReceiver?.close();
    await this.channel?.close();
  }

  // ---- primary ---------------------------------------------------------------------------------

  private newLog(): ReplicationLog {
    return new ReplicationLog({ window: LOG_WINDOW, holdWhileInFlight: LOG_HOLD_WHILE_IN_FLIGHT, scheduleFlush: (run) => setImmediate(run), clockUs: () => performance.now() * 1000 });
  }

  private async startPrimary(): Promise<void> {
    this.role = 'primary';
    const ch = new ReplicationChannel({
      role: 'primary',
      nodeId: this.nodeId,
      key: this.cfg.key,
      listen: this.cfg.listen,
      epoch: () => this.epoch,
      lastLsn: () => this.log.lastLsn,
      heartbeatIntervalMs: this.cfg.heartbeatMs,
      silenceTimeoutMs: this.silenceMs(),
      log: (line) => this.logger.info('replication.channel', { detail: line }),
      faults: this.linkFaults,
    });
    this.channel = ch;
    ch.on('peer-up', (peer) => this.onBackupUp(peer));
    ch.on('peer-down', ({ reason }) => this.onBackupDown(reason));
    ch.on('ack', (lsn) => {
      this.lastChannelHeard = Date.now();
      if (lsn > this.log.ackedLsn) this.lastAckProgress = this.lastChannelHeard;
      const r = this.log.onAck(lsn);
      if (!r.ok) ch.dropPeer(r.error);
    });
    ch.on('heartbeat', () => (this.lastChannelHeard = Date.now()));
    ch.on('higher-epoch', (epoch, peer) => this.fence(`peer ${peer.nodeId} announced epoch ${epoch}`));
    await ch.start();
    this.logger.warn('replication.unprotected', { reason: 'no backup attached yet', listen: `${this.cfg.listen.host}:${this.cfg.listen.port}` });
    // Heartbeat records carry the clock (for TSvals after a takeover) and congestion state.
    this.lastTickAt = null;
    this.heartbeatTimer = setInterval(() => {
      this.noteUnheard();
      // Not while switching over: the drain waits for a tail that stays put.
      if (!this.fenced && !this.switching) this.tap.heartbeat();
    }, this.cfg.heartbeatMs);
    if (this.beacon === null) await this.startBeacon();
  }

  private onBackupUp(peer: PeerInfo): void {
    this.lastChannelHeard = Date.now();
    this.seenEpoch = Math.max(this.seenEpoch, peer.epoch);
    if (this.fenced) {
      this.channel?.dropPeer('this node is fenced');
      return;
    }
    // A fresh log per backup session: the log ran unprotected before (nothing logged), so a backup
    // resuming elsewhere in it lacks connections; it then resets itself and dials again from 0.
    // protect() then brings the open connections over, in slices from this turn on (reintegration, 5.5).
    const r = this.log.attach((b) => this.channel?.sendRecords(b), peer.lastLsn);
    if (!r.ok) {
      this.logger.warn('replication.backup-refused', { backup: peer.nodeId, reason: r.error });
      this.channel?.dropPeer(r.error);
      return;
    }
    this.tap.protect();
    this.gate?.holdAll(false);
    this.lastAckProgress = Date.now();
    this.logger.info('replication.protected', { backup: peer.nodeId, address: peer.address, lsn: this.log.lastLsn, snapshots: this.tap.stats.snapshots, notYetBroughtOver: this.tap.pendingCount });
  }

  private onBackupDown(reason: string): void {
    this.lastPeerLoss = { at: Date.now(), reason };
    this.log.detach();
    if (!this.tap.isProtected || this.fenced) return;
    // Until decided, nothing leaves, not even what the backup had acknowledged (a retransmission,
    // an ACK): if it took over, the client must hear nothing more from this node.
    this.gate?.holdAll(true);
    // Deferred by two heartbeats: a node that was itself stalled (SIGSTOP, a long pause) finds the
    // channel silent the moment it resumes, before it has read the LAN heartbeats of a node that
    // took over meanwhile. Releasing the held packets first would put on the wire bytes and ACKs
    // the new primary never had; waiting lets fencing win. A backup that is back by then resumes
    // the same log.
    const later = (): void => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        // A switchover in progress decides for itself (it aborts, then unprotects).
        if (this.fenced || this.closed || this.switching || this.channel?.peer != null || !this.tap.isProtected) return;
        if (this.lanRecentlyDown()) {
          later();
          return;
        }
        this.holdingIsolated = false;
        this.unprotect(reason);
      }, 2 * this.cfg.heartbeatMs);
      this.timers.add(t);
    };
    later();
  }

  /** Called each heartbeat tick (and before deciding): was this node possibly unheard just now? */
  private noteUnheard(): string | null {
    const now = Date.now();
    let why: string | null = null;
    // Without an IPv4 address up on it (libuv lists only interfaces that are up and running).
    if (this.cfg.lan !== undefined && interfaceIpv4(this.cfg.lan) === null) why = `the LAN link ${this.cfg.lan} is down`;
    else if (this.lastTickAt !== null && now - this.lastTickAt - this.cfg.heartbeatMs >= this.cfg.deadAfterMs / 2) {
      why = `its heartbeats stalled for ${now - this.lastTickAt} ms`;
    }
    this.lastTickAt = now;
    if (why !== null) this.unheardAt = now;
    return why;
  }

  /**
   * A primary that lost its backup while the backup may not have heard it either -- its LAN link
   * down (links cut), or its own heartbeats stalled (an overloaded or paused process) -- cannot
   * tell a dead backup from a backup that found it dead and took over. So it keeps holding its
   * output until it has been heard for as long as the backup waits before deciding, time enough
   * to hear the new primary's epoch (announced on the LAN as soon as it is chosen) and fence
   * (ARCHITECTURE.md 5.4) instead of putting bytes and ACKs the new primary never had on the wire.
   */
  private lanRecentlyDown(): boolean {
    const why = this.noteUnheard();
    const down = this.unheardAt !== null && Date.now() - this.unheardAt < this.silenceMs();
    if (down && !this.holdingIsolated) {
      this.holdingIsolated = true;
      this.logger.warn('replication.isolated', { reason: why ?? 'the backup may not have heard this node', note: `output held until this node has been heard for ${this.silenceMs()} ms, in case the backup took over` });
    }
    return down;
  }

  private unprotect(reason: string): void {
    this.gate?.holdAll(false);
    this.tap.unprotect(reason);
    // Serve on without a backup; a backup that joins later starts from a fresh log.
    this.log = this.newLog();
    this.tap.setLog(this.log);
    this.logger.warn('replication.unprotected', { reason: `backup lost: ${reason}` });
  }

  private async startBeacon(): Promise<void> {
    const target = this.lanTarget();
    if (target === null) {
      this.logger.warn('replication.lan-heartbeat-off', { reason: 'no --lan interface with an IPv4 address: a cut replication link will look like a dead primary' });
      return;
    }
    const b = new LanBeacon({ key: this.cfg.key, nodeId: this.nodeId, role: () => (this.announcing ? 'primary' : this.role), epoch: () => this.epoch, target, intervalMs: this.cfg.heartbeatMs });
    this.beacon = b;
    await b.start();
    this.logger.info('replication.lan-heartbeat', { to: `${target.host}:${target.port}`, from: target.bindAddress ?? null, everyMs: this.cfg.heartbeatMs });
  }

  private lanTarget(): LanTarget | null {
    if (this.cfg.lan === undefined) return null;
    const ip = interfaceIpv4(this.cfg.lan);
    if (ip === null) return null;
    return { host: ip.broadcast, port: this.cfg.peer.port, bindAddress: ip.address, broadcast: true };
  }

  private stopPrimaryTimers(): void {
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    this.beacon?.close();
    this.beacon = null;
  }

  /** ARCHITECTURE.md 5.4: a node that learns of a higher epoch stops speaking for the VIP at once. */
  private fence(why: string): void {
    if (this.fenced || this.role !== 'primary') return;
    if (this.switching) {
      // Expected once the handover went out: the new primary's epoch arrives on the channel and
      // the LAN, maybe before its reply. The switchover steps down (or fences, if it aborts).
      this.supersededWhileSwitching = true;
      this.logger.info('switchover.higher-epoch', { detail: why });
      return;
    }
    this.fenced = true;
    this.gate?.fence();
    this.stopPrimaryTimers();
    this.logger.error('replication.fenced', { reason: why, epoch: this.epoch, note: 'another node serves the VIP now; this node sends nothing more' });
    void this.channel?.close();
    // Nor may it answer ARP for the VIP: a neighbour's next probe would otherwise flip back here.
    void this.vipControl
      ?.releaseVip()
      .then(() => this.logger.info('replication.fenced-vip-released', { vip: this.cfg.vip }))
      .catch((e: unknown) => this.logger.error('replication.fenced-vip-release-failed', { error: e instanceof Error ? e.message : String(e) }));
  }

  // ---- both: LAN heartbeats heard ----------------------------------------------------------------

  private async startLanReceiver(): Promise<void> {
    // Bound to every address: broadcasts arrive addressed to the subnet's broadcast address.
    const r = new LanHeartbeatReceiver(this.cfg.key, { host: '0.0.0.0', port: this.cfg.listen.port });
    r.on('heartbeat', (h) => {
      if (h.nodeId === this.nodeId) return;
      if (h.role === 'primary') {
        this.lastLanHeard = Date.now();
        this.seenEpoch = Math.max(this.seenEpoch, h.epoch);
        if (this.role === 'primary' && h.epoch > this.epoch) this.fence(`primary ${h.nodeId} heard on the LAN with epoch ${h.epoch}`);
      }
    });
    r.on('refused', (error, from) => this.logger.debug('replication.lan-heartbeat-refused', { from, error }));
    try {
      await r.start();
      this.lanReceiver = r;
    } catch (e) {
      r.close();
      throw new Error(`cannot take LAN heartbeats on udp 0.0.0.0:${this.cfg.listen.port}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private gatePackets(): { waiting: number; waited: number; passed: number } {
    const g = this.gate;
    return g === null ? { waiting: 0, waited: 0, passed: 0 } : { waiting: g.heldPackets, waited: g.gateStats.held, passed: g.gateStats.passed };
  }

  // ---- backup ----------------------------------------------------------------------------------

  private silenceMs(): number {
    return Math.max(this.cfg.deadAfterMs, 3 * this.cfg.heartbeatMs);
  }

  private freshReplica(): void {
    for (const s of this.shadows?.all() ?? []) this.serviceReplica?.onGone(s, 'close');
    this.shadows?.clear();
    const service = this.service as Service;
    const sr = new ServiceReplica(service, {
      say: (line) => this.logger.warn('replication.divergence', { detail: line }),
      sayFailed: (line) => this.logger.warn('replication.replica-failed', { detail: line }),
      onDigestReady: () => this.applier?.resume(),
    });
    this.serviceReplica = sr;
    this.shadows = new ShadowTable(realClock, sr);
    const shadows = this.shadows;
    this.replica = new ReplicaLog({
      apply: (r: LogRecord) => shadows.apply(r),
      sendAck: (lsn) => this.channel?.sendAck(lsn),
      scheduleAck: (run) => setImmediate(run),
    });
    this.applier?.clear();
    this.applier = new SlicedApply(this.replica, {
      sliceMs: sliceMs(this.cfg.heartbeatMs),
      schedule: (run) => setImmediate(run),
      onFailure: (r) => {
        this.logger.error('replication.apply-failed', { error: r.error });
        this.channel?.dropPeer(r.error);
      },
    });
  }

  private async startBackup(): Promise<void> {
    this.role = 'backup';
    this.takingOver = false;
    this.announcing = false;
    this.freshReplica();
    const ch = new ReplicationChannel({
      role: 'backup',
      nodeId: this.nodeId,
      key: this.cfg.key,
      connect: this.cfg.peer,
      epoch: () => this.epoch,
      lastLsn: () => this.replica?.lastApplied ?? 0,
      heartbeatIntervalMs: this.cfg.heartbeatMs,
      silenceTimeoutMs: this.silenceMs(),
      reconnect: { initialMs: 50, maxMs: 500 },
      log: (line) => this.logger.info('replication.channel', { detail: line }),
      faults: this.linkFaults,
    });
    this.channel = ch;
    ch.on('peer-up', (peer) => {
      this.lastChannelHeard = Date.now();
      this.seenEpoch = Math.max(this.seenEpoch, peer.epoch);
      // A backup serves under its primary's epoch (a node rejoining after a failover catches up).
      this.epoch = Math.max(this.epoch, peer.epoch);
      const replica = this.replica as ReplicaLog;
      if (peer.lastLsn < replica.lastApplied) {
        // The primary started a new log (it ran unprotected meanwhile): what this backup holds is
        // of another history. Start over empty and let the channel redial from LSN 0.
        this.logger.warn('replication.resync', { reason: `primary's log ends at LSN ${peer.lastLsn}, this backup applied ${replica.lastApplied}`, dropped: this.shadows?.size ?? 0 });
        this.freshReplica();
        ch.dropPeer('starting over from a fresh log');
        return;
      }
      replica.resetAck();
      this.armWatch();
      this.logger.info('replication.attached', { primary: peer.nodeId, address: peer.address, epoch: peer.epoch, lsn: peer.lastLsn });
    });
    ch.on('peer-down', ({ reason }) => {
      // Received in order and authenticated: applied before the next hello names the position,
      // or the primary would resend them behind themselves.
      this.applier?.flush();
      this.lastPeerLoss = { at: Date.now(), reason };
      this.logger.warn('replication.primary-unreachable', { reason, note: 'the LAN heartbeats decide whether it is dead' });
    });
    ch.on('message', (records, _peer, receivedAt) => {
      this.lastChannelHeard = Date.now();
      this.applier?.push(records, receivedAt);
    });
    ch.on('heartbeat', (hb) => {
      this.lastChannelHeard = Date.now();
      this.seenEpoch = Math.max(this.seenEpoch, hb.epoch);
    });
    ch.on('handover', (m) => this.onHandover(m, ch));
    await ch.start();
    this.logger.info('replication.backup-ready', { peer: `${this.cfg.peer.host}:${this.cfg.peer.port}`, deadAfterMs: this.cfg.deadAfterMs, heartbeatMs: this.cfg.heartbeatMs });
  }

  /**
   * The failure detector runs only once a primary was heard: a backup that has never been attached
   * holds nothing to take over with, and a primary that is merely slow to start is not dead.
   */
  private armWatch(): void {
    const ch = this.channel;
    if (this.watch !== null || ch === null || this.role !== 'backup') return;
    this.watch = watchPrimary({
      channel: ch,
      lan: this.lanReceiver ?? undefined,
      deadAfterMs: this.cfg.deadAfterMs,
      checkEveryMs: Math.max(5, Math.floor(Math.min(this.cfg.deadAfterMs, this.cfg.heartbeatMs) / 2)),
      onDead: (silences) => void this.takeover(silences),
    });
    this.logger.info('replication.watching', { deadAfterMs: this.cfg.deadAfterMs, paths: this.lanReceiver === null ? 'replication' : 'replication+lan' });
  }

  /**
   * ARCHITECTURE.md 5.4, the takeover sequence. Each step is logged as takeover.<step> with its
   * time. `handover`: the channel a planned switchover came on; the primary is alive and waits
   * for the reply there, so it stays open (only deaf) until the reply went.
   */
  private async takeover(silences: PathSilence[], handover?: { channel: ReplicationChannel; from: string }): Promise<void> {
    if (this.takingOver || this.closed) return;
    this.takingOver = true;
    const t0 = performance.now();
    const at = (): number => Math.round((performance.now() - t0) * 10) / 10;
    const silent: Record<string, number> = {};
    for (const s of silences) silent[`${s.path}SilentMs`] = Math.round(s.silentMs);
    if (handover === undefined) this.logger.warn('takeover.detected', { ...silent, deadAfterMs: this.cfg.deadAfterMs, shadows: this.shadows?.size ?? 0, ms: 0 });
    else this.logger.warn('takeover.handover', { from: handover.from, shadows: this.shadows?.size ?? 0, ms: 0 });
    const stack = this.stack as Stack;
    const vip = this.vipControl as VipControl;
    try {
      // Stop accepting replication input: the shadows must not move while they are promoted.
      this.watch?.stop();
      const ch = this.channel;
      this.channel = null;
      if (handover === undefined) await ch?.close();
      else deafen(handover.channel, 2 * this.silenceMs());
      // What arrived goes into the shadows before they are promoted. Records from an output digest
      // still waiting for the service replica on were never acknowledged: nothing the client saw
      // depends on them, and the promoted connections resend from what the replica writes.
      this.applier?.flush();
      const unapplied = this.applier?.queued ?? 0;
      this.applier?.clear();
      if (unapplied > 0) this.logger.info('takeover.unapplied', { records: unapplied });
      this.replica?.flushAck();
      this.logger.info('takeover.replication-stopped', { lsn: this.replica?.lastApplied ?? 0, ms: at() });

      this.epoch = Math.max(this.epoch, this.seenEpoch) + 1;
      this.logger.info('takeover.epoch', { epoch: this.epoch, ms: at() });
      // Announced on the LAN at once, not when the takeover is done: an old primary that was only
      // stalled hears it before it would give up on its backup and release what it held.
      this.announcing = true;
      if (this.beacon === null) await this.startBeacon();

      // Hold the output: promotion queues retransmissions that must leave only once the VIP is
      // ours. The VIP's steps then run while the shadows are promoted in slices, and the input of
      // a connection not yet promoted is held: a client segment reaching it would find no
      // connection and get a RST. A promoted connection's segments go up between slices.
      const shadows = this.shadows as ShadowTable;
      const pending = new PendingTuples([...shadows.all()].map((s) => s.tuple));
      const total = pending.size;
      // The primary may have been answering SYNs with cookies (its half-open queue full); their
      // ACKs come here now, under the same key (sharedStackOptions).
      stack.host.honourSynCookies?.(stack.now());
      this.hold?.hold();
      this.hold?.holdInput((p) => pending.ready(p));
      // ARCHITECTURE.md 5.4: "then immediately retransmit unacknowledged data and send an ACK
      // with the current window": as soon as the VIP is ours, for every connection promoted by
      // then; those promoted later send theirs as they come.
      const vipTaken = this.takeVip(vip, at).then((arp) => {
        if (this.hold?.holding === true) this.logger.info('takeover.retransmit', { packets: this.hold.release(), promotedBefore: total - pending.size, ms: at() });
        return arp;
      });
      // Awaited once every connection is promoted; a failure meanwhile is not unhandled.
      vipTaken.catch(() => undefined);
      const cpu0 = process.cpuUsage();
      const promotion = await this.promoteAll(stack, vip, pending);
      const cpu = process.cpuUsage(cpu0);
      this.hold?.releaseInput();
      const sr = this.serviceReplica as ServiceReplica;
      const promoted = promotion.sockets.length;
      this.logger.info('takeover.promoted', { connections: promoted, finished: promotion.finished, failed: promotion.failed, clientsWaiting: promotion.waiting, slices: promotion.slices, cpuMs: Math.round((cpu.user + cpu.system) / 1000), heldInput: this.hold?.inputHeld ?? 0, inputDropped: this.hold?.inputDropped ?? 0, ms: at() });
      this.logger.info('takeover.attached', { sockets: promoted, divergences: sr.stats.divergences, replicaFailed: sr.stats.failed, ms: at() });

      const arp = await vipTaken;
      const ms = at();
      this.takeoverInfo = { at: new Date().toISOString(), ms, promoted };
      this.logger.warn('takeover.done', { epoch: this.epoch, connections: promoted, ms });
      if (handover !== undefined) {
        handover.channel.sendHandoverDone(this.epoch, ms);
        this.switchoverInfo = { at: new Date().toISOString(), outcome: 'took-over', stallMs: null, takeoverMs: ms, epoch: this.epoch, peer: handover.from, reason: null };
        this.logger.warn('switchover.done', { role: 'primary', from: handover.from, epoch: this.epoch, takeoverMs: ms, connections: promoted });
      }
      if (arp) this.repeatGratuitousArp(vip);
      // Only now, and in slices: a line per connection (debug) was a third of a takeover's time.
      await forEachInSlices(promotion.details, (d) => this.logger.debug('takeover.connection', d), this.slicing());

      // A primary now: listen for a new backup on our own replication address.
      this.watch = null;
      this.replica = null;
      this.applier = null;
      await this.startPrimary();
    } catch (e) {
      this.hold?.release();
      this.hold?.releaseInput();
      this.logger.error('takeover.failed', { error: e instanceof Error ? e.message : String(e), ms: at() });
      throw e;
    }
  }

  private slicing(onSlice?: () => void): TimeSlicing {
    return { sliceMs: sliceMs(this.cfg.heartbeatMs), nextTurn: () => new Promise<void>((r) => setImmediate(r)), ...(onSlice === undefined ? {} : { onSlice }) };
  }

  /**
   * The VIP's steps of the takeover (ARCHITECTURE.md 5.4: "add the route for the VIP to tun;
   * answer ARP for the VIP; announce with a burst of gratuitous ARPs"), run while the shadows are
   * promoted: they wait on other processes and the kernel, the promotion on this one's CPU.
   * Resolves whether ARP is answered on a LAN.
   */
  private async takeVip(vip: VipControl, at: () => number): Promise<boolean> {
    await vip.addRoute();
    this.logger.info('takeover.route', { vip: this.cfg.vip, ms: at() });
    const arp = await vip.enableProxyArp();
    if (arp) {
      this.logger.info('takeover.proxy-arp', { lan: this.cfg.lan ?? null, ms: at() });
      await vip.gratuitousArp(1).catch((e: unknown) => this.logger.warn('takeover.gratuitous-arp-failed', { error: e instanceof Error ? e.message : String(e) }));
      this.logger.info('takeover.gratuitous-arp', { count: 1, repeats: GARP_REPEATS, spacingMs: GARP_SPACING_MS, ms: at() });
    }
    if (this.cfg.onTakeover !== undefined) {
      const code = await runCommand(this.cfg.onTakeover, { UNDERSTUDY_VIP: this.cfg.vip, UNDERSTUDY_EPOCH: String(this.epoch) });
      this.logger.info('takeover.command', { command: this.cfg.onTakeover, exit: code, ms: at() });
    }
    return arp;
  }

  /**
   * Promotes every shadow (restore the TCB, queue its retransmission and window update), joins it
   * to the tap, adopts it into the stack and attaches its service replica socket, in slices of
   * the event loop (time-slices.ts): at 4000 connections one turn held the loop for 260-815 ms.
   * The input is held meanwhile (HoldLink.holdInput), so no client segment meets a connection
   * whose turn has not come. Per-connection log lines wait until the output has left.
   */
  private async promoteAll(stack: Stack, vip: VipControl, pending: PendingTuples): Promise<{ sockets: Socket[]; details: TakeoverDetail[]; finished: number; failed: number; slices: number; waiting: number }> {
    const shadows = this.shadows as ShadowTable;
    const sr = this.serviceReplica as ServiceReplica;
    const hold = this.hold;
    const detailed = this.logger.enabled?.('debug') ?? true;
    const sockets: Socket[] = [];
    const details: TakeoverDetail[] = [];
    let finished = 0;
    let failed = 0;
    // The clock the slice's connections share, read again for each slice.
    let ctx: PromoteContext = { now: stack.now(), primaryClockUs: shadows.primaryClockNow() };
    const onSlice = (): void => void (ctx = { now: stack.now(), primaryClockUs: shadows.primaryClockNow() });
    // Connections whose clients wait for something first: their retransmissions then leave with
    // the first ones, once the VIP is ours.
    const waiting: Shadow[] = [];
    const idle: Shadow[] = [];
    for (const s of shadows.all()) (clientWaits(s, sr.socketOf(s.id)?.matcher.aheadBytes ?? 0) ? waiting : idle).push(s);
    const slices = await forEachInSlices(waiting.concat(idle), (s) => {
      // Whatever becomes of it, its segments need not wait after this slice.
      pending.done(s.tuple);
      let conn;
      try {
        // A connection whose replica lost sync with an output digest holds stand-in bytes, not
        // the primary's: nothing of it may be resent; attach() resets it.
        const quiet = sr.socketOf(s.id)?.lostSyncReason != null;
        conn = promote(s, stack.tcpConfig, stack.env, quiet ? { ...ctx, quiet } : ctx);
      } catch (e) {
        failed++;
        this.logger.error('takeover.promote-failed', { conn: s.id, error: e instanceof Error ? e.message : String(e) });
        sr.onGone(s, 'reset');
        return;
      }
      if (conn === null) {
        finished++;
        sr.onGone(s, 'close');
        return;
      }
      const rs = sr.release(s.id);
      // The next backup must be able to have this connection too (reintegration).
      this.tap.adopt(conn, { inputEnd: s.inputEnd, outputEnd: s.outputEnd, sinceBoundary: rs?.sinceBoundary() ?? null });
      // Half-open allowed: the replica socket on top carries the service's own allowHalfOpen and
      // ends our side (through attach/_final) once the service has written everything. Left to
      // itself, the stack socket would end as soon as the client's FIN was read, before the
      // replica's service had echoed the bytes ahead of that FIN.
      const socket = stack.adoptConnection(conn, { allowHalfOpen: true, quiet: true });
      if (detailed) details.push(takeoverDetail(s, conn.state, socket, rs));
      vip.adopted(socket);
      rs?.attach(socket);
      sockets.push(socket);
    }, {
      ...this.slicing(onSlice),
      // Between slices, what the clients sent to the connections promoted so far goes up.
      nextTurn: () => {
        hold?.flushReadyInput();
        return new Promise<void>((r) => setImmediate(r));
      },
    });
    shadows.clear();
    return { sockets, details, finished, failed, slices, waiting: waiting.length };
  }

  private repeatGratuitousArp(vip: VipControl): void {
    let left = GARP_REPEATS;
    const next = (): void => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        // Only while this node still speaks for the VIP: a switchover back within the repeats
        // (or a fence) must not pull the clients' neighbour entries to a node without the route.
        if (this.closed || this.role !== 'primary' || this.fenced || this.switching || left-- <= 0) return;
        vip.gratuitousArp(1).catch(() => undefined);
        next();
      }, GARP_SPACING_MS);
      this.timers.add(t);
    };
    next();
  }

  // ---- planned switchover ------------------------------------------------------------------------

  /**
   * Why this node cannot hand over now, or null: whatever keeps status from saying "protected"
   * (no backup, not in step, fenced, connections the backup does not hold) would be lost by it.
   */
  private switchoverRefusal(): string | null {
    if (this.closed) return 'the node is stopping';
    if (this.role !== 'primary') return 'this node is the backup; ask the primary';
    if (this.switching) return 'a switchover is already under way';
    const st = this.status();
    if (!st.protected || st.protectedReason !== null) return st.protectedReason ?? 'not protected';
    if (this.channel?.peer == null) return 'no backup attached';
    return null;
  }

  /**
   * Planned switchover, the primary's half (ARCHITECTURE.md 5.4). Hold all output (nothing the
   * backup has not got may leave), drain the log until the backup acknowledged its tail, withdraw
   * the VIP, send `handover`; the backup takes over at once and replies. Then drop every
   * connection without a word (the new primary owns them and retransmits what was held) and
   * restart as its backup. A refusal touches nothing; a drain or reply that does not come within
   * `timeoutMs` aborts: the VIP comes back, the held packets go, and this node serves on.
   */
  async switchover(timeoutMs = DEFAULT_SWITCHOVER_TIMEOUT_MS): Promise<SwitchoverResult> {
    const refusal = this.switchoverRefusal();
    if (refusal !== null) {
      this.logger.warn('switchover.refused', { reason: refusal });
      this.recordSwitchover('refused', null, null, null, refusal);
      return { ok: false, outcome: 'refused', reason: refusal };
    }
    const ch = this.channel as ReplicationChannel;
    const peer = ch.peer as PeerInfo;
    const vip = this.vipControl as VipControl;
    this.switching = true;
    this.supersededWhileSwitching = false;
    const t0 = performance.now();
    const at = (): number => Math.round((performance.now() - t0) * 10) / 10;
    // From here the clients hear nothing: held packets go only if this aborts.
    this.hold?.hold();
    // The connections stop moving so that the log can drain; the clients retransmit what is dropped.
    this.gate?.muteInput();
    // The new primary continues TSvals and congestion state from the last heartbeat: a fresh one.
    this.tap.heartbeat();
    this.logger.info('switchover.hold', { backup: peer.nodeId, lsn: this.log.lastLsn, timeoutMs, ms: 0 });
    let vipReleased = false;
    try {
      const notDrained = await drainLog(() => this.log, t0 + timeoutMs, () => this.channel?.peer === peer);
      if (notDrained !== null) return await this.abortSwitchover(notDrained, vipReleased, at);
      const lastLsn = this.log.lastLsn;
      const drainMs = at();
      this.logger.info('switchover.drained', { lsn: lastLsn, ms: drainMs });
      vipReleased = true;
      await vip.releaseVip();
      this.logger.info('switchover.vip-released', { vip: this.cfg.vip, ms: at() });
      const replied = awaitHandoverReply(ch, timeoutMs, () => this.supersededWhileSwitching);
      if (!ch.sendHandover(this.epoch, lastLsn)) return await this.abortSwitchover('the backup went away before the handover', vipReleased, at);
      this.logger.info('switchover.handover-sent', { epoch: this.epoch, lsn: lastLsn, ms: at() });
      const r = await replied;
      if ('refused' in r) return await this.abortSwitchover(`the backup refused: ${r.refused}`, vipReleased, at);
      if ('timeout' in r) return await this.abortSwitchover(`no reply to the handover within ${timeoutMs} ms`, vipReleased, at);
      const stallMs = at();
      const epoch = 'done' in r ? r.done.epoch : Math.max(this.seenEpoch, this.epoch + 1);
      const takeoverMs = 'done' in r ? r.done.takeoverMs : null;
      const newPrimary = { nodeId: 'done' in r ? r.nodeId : peer.nodeId, address: `${this.cfg.peer.host}:${this.cfg.peer.port}` };
      this.logger.warn('switchover.handed-over', { to: newPrimary.nodeId, epoch, stallMs, takeoverMs, replyLost: 'superseded' in r, ms: stallMs });
      this.recordSwitchover('handed-over', stallMs, takeoverMs, newPrimary.nodeId, null, epoch);
      await this.stepDown(at);
      return { ok: true, stallMs, drainMs, takeoverMs, epoch, newPrimary };
    } catch (e) {
      return await this.abortSwitchover(e instanceof Error ? e.message : String(e), vipReleased, at);
    } finally {
      this.switching = false;
    }
  }

  private recordSwitchover(outcome: SwitchoverInfo['outcome'], stallMs: number | null, takeoverMs: number | null, peer: string | null, reason: string | null, epoch = this.epoch): void {
    this.switchoverInfo = { at: new Date().toISOString(), outcome, stallMs, takeoverMs, epoch, peer, reason };
  }

  /** Back to serving as the primary: the VIP again, the held packets out (all acknowledged by the backup). */
  private async abortSwitchover(reason: string, vipReleased: boolean, at: () => number): Promise<SwitchoverResult> {
    const vip = this.vipControl as VipControl;
    try {
      if (vipReleased) {
        await vip.addRoute();
        if (await vip.enableProxyArp()) await vip.gratuitousArp(1).catch(() => undefined);
      }
    } catch (e) {
      this.logger.error('switchover.vip-restore-failed', { error: e instanceof Error ? e.message : String(e) });
    }
    this.gate?.unmuteInput();
    const released = this.hold?.release() ?? 0;
    this.switching = false;
    this.logger.warn('switchover.aborted', { reason, released, ms: at() });
    this.recordSwitchover('aborted', null, null, this.channel?.peer?.nodeId ?? null, reason);
    if (this.supersededWhileSwitching) this.fence('a higher epoch was heard during an aborted switchover');
    else if (this.channel?.peer == null && this.tap.isProtected) this.unprotect(`lost during the switchover: ${reason}`);
    return { ok: false, outcome: 'aborted', reason };
  }

  /**
   * The old primary after the handover: its connections belong to the new primary, which
   * retransmits whatever was held here. They go without a FIN or RST (the gate is fenced while
   * they are aborted, so the resets die in it), the gate steps down to ungated, and the node
   * restarts as a backup dialling its peer, where reintegration brings it up to date.
   */
  private async stepDown(at: () => number): Promise<void> {
    const gate = this.gate as OutputGate;
    gate.fence();
    const discarded = this.hold?.discard() ?? 0;
    this.tap.stop();
    this.stopPrimaryTimers();
    const ch = this.channel;
    this.channel = null;
    await ch?.close();
    const dropped = await this.dropConnectionsSilently();
    this.log.close();
    this.log = this.newLog();
    this.tap.setLog(this.log);
    gate.rearm();
    this.logger.info('switchover.stepped-down', { discardedPackets: discarded, droppedConnections: dropped, ms: at() });
    await this.startBackup();
    this.logger.info('switchover.backup', { peer: `${this.cfg.peer.host}:${this.cfg.peer.port}`, ms: at() });
  }

  /** Aborts every connection of the stack behind the fenced gate; resolves with how many there were. */
  private async dropConnectionsSilently(): Promise<number> {
    const stack = this.stack as Stack;
    const conns = [...stack.host.connections.values()];
    for (const c of conns) c.abort(stack.now());
    stack.kick();
    // The driver's next pass removes them and tells their sockets; wait for it (bounded).
    const deadline = performance.now() + 2000;
    while (stack.host.connections.size > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    if (stack.host.connections.size > 0) this.logger.warn('switchover.connections-left', { count: stack.host.connections.size });
    return conns.length;
  }

  /** The backup's half: in step with the handover's LSN, it takes over at once (no failure detection). */
  private onHandover(m: HandoverMessage, ch: ReplicationChannel): void {
    this.applier?.flush();
    const replica = this.replica;
    const from = ch.peer?.nodeId ?? 'the primary';
    let why: string | null = null;
    if (this.role !== 'backup' || this.takingOver || replica === null) why = 'this node is not a backup ready to take over';
    else if (m.epoch < this.epoch) why = `the handover is for epoch ${m.epoch}, this backup serves epoch ${this.epoch}`;
    else why = handoverLsnRefusal(replica.lastApplied, m.lastLsn);
    if (why !== null) {
      this.logger.warn('switchover.handover-refused', { from, reason: why });
      ch.sendHandoverRefused(why);
      return;
    }
    this.logger.info('switchover.handover-received', { from, epoch: m.epoch, lsn: m.lastLsn });
    this.seenEpoch = Math.max(this.seenEpoch, m.epoch);
    void this.takeover([], { channel: ch, from }).catch(() => undefined);
  }

  // ---- status ----------------------------------------------------------------------------------

  status(): ReplicationStatus {
    const now = Date.now();
    const peer = this.channel?.peer ?? null;
    const primary = this.role === 'primary';
    let protectedReason: string | null = null;
    // Protected only once the backup has every open connection (5.5): while connections wait
    // for their service's next boundary, a takeover would lose them.
    const waiting = primary && this.tap.isProtected ? this.tap.pendingCount : 0;
    // ... and once it acknowledged the snapshots: until then a takeover would find them missing.
    const unacked = primary && this.tap.isProtected && this.log.ackedLsn < this.tap.reintegrationLsn;
    const isProtected = primary && this.tap.isProtected && !this.fenced && waiting === 0 && !unacked;
    if (this.fenced) protectedReason = 'fenced: a node with a higher epoch serves the VIP';
    else if (!primary) protectedReason = 'this node is the backup';
    else if (!this.tap.isProtected) protectedReason = peer === null ? `no backup attached${this.describeLoss(now)}` : 'backup attached but not in step';
    else if (waiting > 0) protectedReason = `reintegrating: ${waiting} connection(s) wait for their snapshot or a service boundary before the backup can have them`;
    else if (unacked) protectedReason = `reintegrating: the backup has not yet acknowledged the snapshots (LSN ${this.log.ackedLsn} of ${this.tap.reintegrationLsn})`;
    const lag = primary ? this.log.lag() : null;
    const st = this.channel?.stats;
    return {
      role: this.role,
      epoch: this.epoch,
      protected: isProtected,
      protectedReason,
      fenced: this.fenced,
      peer: {
        state: peer === null ? 'disconnected' : 'connected',
        nodeId: peer?.nodeId ?? null,
        address: peer?.address ?? null,
        role: peer?.role ?? null,
        epoch: peer?.epoch ?? null,
      },
      lag:
        lag === null
          ? null
          : { records: lag.records, bytes: lag.bytes, lastLsn: lag.lastLsn, ackedLsn: lag.ackedLsn, messagesInFlight: lag.messagesInFlight, waitingMs: lag.records > 0 ? now - this.lastAckProgress : 0, packets: this.gatePackets(), commit: lag.commit },
      applied:
        this.replica === null
          ? null
          : { lastLsn: this.replica.lastApplied, shadows: this.shadows?.size ?? 0, divergences: this.serviceReplica?.stats.divergences ?? 0, replicaFailed: this.serviceReplica?.stats.failed ?? 0 },
      heartbeatAgeMs: this.lastChannelHeard === null ? null : now - this.lastChannelHeard,
      lanHeartbeatAgeMs: this.lastLanHeard === null ? null : now - this.lastLanHeard,
      heartbeatMs: this.cfg.heartbeatMs,
      deadAfterMs: this.cfg.deadAfterMs,
      connections: { replicated: this.tap.stats.replicated, unreplicated: this.tap.stats.unreplicated, logged: this.tap.connectionCount },
      reintegration: { snapshots: this.tap.stats.snapshots, pending: waiting, retainedBytes: this.tap.retainedBytes },
      takeover: this.takeoverInfo,
      switchover: this.switchoverInfo,
      channel: { authFailures: st?.authFailures ?? 0, protocolErrors: st?.protocolErrors ?? 0, sessions: st?.sessions ?? 0 },
      lastPeerLoss: this.lastPeerLoss === null ? null : { at: new Date(this.lastPeerLoss.at).toISOString(), reason: this.lastPeerLoss.reason },
    };
  }

  /** ' (lost 2.1 s ago: silent for 312 ms (limit 300 ms))', or '' when no session was ever lost. */
  private describeLoss(now: number): string {
    const l = this.lastPeerLoss;
    return l === null ? '' : ` (lost ${((now - l.at) / 1000).toFixed(1)} s ago: ${l.reason})`;
  }

  /** The replication link for status: where it runs, its faults and what crossed it. */
  linkView(): ReplicationLinkView {
    const st = this.channel?.stats;
    const own = `${this.cfg.listen.host}:${this.cfg.listen.port}`;
    const peer = `${this.cfg.peer.host}:${this.cfg.peer.port}`;
    return {
      device: `tcp ${own} <-> ${peer}`,
      faults: this.linkFaults,
      frames: {
        sent: st?.framesSent ?? 0,
        received: st?.framesReceived ?? 0,
        bytesSent: st?.bytesSent ?? 0,
        bytesReceived: st?.bytesReceived ?? 0,
        refused: (st?.authFailures ?? 0) + (st?.protocolErrors ?? 0),
      },
    };
  }
}

/** A takeover.connection debug line: one connection as it was promoted (a type, not an interface, to be a log record). */
type TakeoverDetail = {
  conn: number;
  remote: string;
  state: string;
  inputEnd: number;
  peerFin: boolean;
  outputEnd: number;
  ourFin: boolean;
  ackedOutput: number;
  replicaWritten: number | null;
  replicaCompared: number | null;
  replicaAhead: number | null;
  replicaBehind: number | null;
};

function takeoverDetail(s: Shadow, state: string, socket: Socket, rs: ReplicaSocket | undefined): TakeoverDetail {
  return {
    conn: s.id,
    remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`,
    state,
    inputEnd: s.inputEnd,
    peerFin: s.peerFin,
    outputEnd: s.outputEnd,
    ourFin: s.ourFin,
    ackedOutput: s.ackedOutput,
    replicaWritten: rs?.bytesWritten ?? null,
    replicaCompared: rs?.matcher.compared ?? null,
    replicaAhead: rs?.matcher.aheadBytes ?? null,
    replicaBehind: rs?.matcher.behindBytes ?? null,
  };
}

/**
 * A backup's channel after a handover: its primary waits on it for the reply, so it stays open,
 * but nothing it brings is applied any more. Closed once the old primary hangs up, or at the latest
 * after `maxMs`.
 */
function deafen(ch: ReplicationChannel, maxMs: number): void {
  ch.removeAllListeners();
  const t = setTimeout(() => void ch.close(), maxMs);
  ch.once('peer-down', () => {
    clearTimeout(t);
    void ch.close();
  });
}

function runCommand(cmd: string, env: Record<string, string>): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', cmd], { stdio: 'ignore', env: { ...process.env, ...env } });
    child.once('error', () => resolve(null));
    child.once('exit', (code) => resolve(code));
  });
}
