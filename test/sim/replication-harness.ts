// A primary, a backup and a client stack on one in-memory LAN, with the replication link between
// the nodes in memory: what test/sim/replication*.test.ts build on. The client sees the VIP only;
// the primary owns it until `failover()` kills the primary abruptly and the backup takes over.

import { createStack, type Stack } from '../../src/stack/stack.js';
import type { TcpConfig } from '../../src/stack/tcp/api.js';
import type { Service } from '../../src/services/service.js';
import { parseIpv4 } from '../../src/stack/wire/ipv4.js';
import { parseTcp } from '../../src/stack/wire/tcp.js';
import { ipv4FromString, TCP_RST, TCP_SYN, type TcpSegment } from '../../src/stack/wire/types.js';
import { seqAdd, seqLt } from '../../src/stack/wire/seq.js';
import { createPrng, type Prng } from '../../src/tun/prng.js';
import { FaultLink, type FaultSettings } from '../../src/tun/fault-link.js';
import { MemoryLan } from '../../src/replication/memory-lan.js';
import { MemoryReplication } from '../../src/replication/memory-replication.js';
import { PrimaryNode } from '../../src/replication/primary-node.js';
import { BackupNode, type TakeoverReport } from '../../src/replication/backup-node.js';
import { FAST_TCP } from './sim-tcp.js';

export { FAST_TCP };

export const VIP = '198.18.0.100';
/** The RFC 6528 secret every node of a simulation shares. */
export const ISN_KEY = new Uint8Array(16).fill(7);
export const CLIENT = '198.18.0.2';

/**
 * The nodes keep Linux's 200 ms RTO floor: with the sim's sub-millisecond RTTs a 10 ms floor
 * makes a busy event loop retransmit spuriously, and a FIN retransmitted after the client's last
 * ACK draws that ACK again onto a closed connection, whose RST would hide the ones that matter.
 */
export const NODE_TCP: Partial<TcpConfig> = { ...FAST_TCP, minRtoUs: 200_000 };

export interface WireSegment {
  from: string;
  src: number;
  dst: number;
  seg: TcpSegment;
}

export interface SimOptions {
  seed: number;
  port: number;
  /** Each node's own service instance (the backup's runs as the replica). */
  service: () => Service;
  /** One-way replication delay in ms, drawn per message. Default 0 to 2 ms. */
  replicationDelayMs?: (prng: Prng) => number;
  /** Start without a backup (unprotected). */
  noBackup?: boolean;
  /** Replicate, but let packets leave without waiting (the control case of the output-commit check). */
  ungated?: boolean;
  /** The primary's half-open queue; 0 answers every SYN with a cookie. */
  synBacklog?: number;
  /** Faults on the client's link, both directions (seeded from `seed`). */
  clientFaults?: Partial<FaultSettings>;
  say?: (line: string) => void;
}

export class ReplicationSim {
  readonly lan = new MemoryLan(1500);
  readonly client: Stack;
  readonly primary: PrimaryNode;
  readonly backup: BackupNode | null;
  readonly replication: MemoryReplication | null;
  readonly prng: Prng;
  /** Every TCP segment on the LAN, parsed, in wire order. */
  readonly wire: WireSegment[] = [];
  readonly lines: string[] = [];
  private readonly watchers: ((w: WireSegment) => void)[] = [];

  constructor(readonly opts: SimOptions) {
    this.prng = createPrng(opts.seed);
    const isnKey = ISN_KEY;
    const say = (line: string): void => {
      this.lines.push(line);
      opts.say?.(line);
    };
    const rand = (seed: number): (() => number) => {
      const p = createPrng(seed);
      return () => p.next();
    };
    this.lan.watch((from, packet) => {
      const ip = parseIpv4(packet);
      if ('error' in ip) return;
      const seg = parseTcp(ip.payload, ip.header.src, ip.header.dst, false);
      if ('error' in seg) return;
      const w: WireSegment = { from, src: ip.header.src, dst: ip.header.dst, seg };
      this.wire.push(w);
      for (const f of this.watchers) f(w);
    });
    const clientLink = opts.clientFaults === undefined ? this.lan.client : new FaultLink(this.lan.client, { seed: opts.seed + 4, in: opts.clientFaults, out: opts.clientFaults });
    this.client = createStack({ link: clientLink, addresses: [CLIENT], tcp: FAST_TCP, random: rand(opts.seed + 1) });
    this.primary = new PrimaryNode({
      link: this.lan.node('primary'),
      addresses: [VIP],
      port: opts.port,
      service: opts.service(),
      tcp: NODE_TCP,
      synBacklog: opts.synBacklog,
      isnKey,
      random: rand(opts.seed + 2),
      heartbeatMs: 20,
      say,
    });
    this.lan.setOwner('primary');
    if (opts.noBackup) {
      this.backup = null;
      this.replication = null;
      return;
    }
    const delay = opts.replicationDelayMs ?? ((p: Prng) => p.int(3));
    let replication: MemoryReplication | null = null;
    this.backup = new BackupNode({
      link: this.lan.node('backup'),
      addresses: [VIP],
      port: opts.port,
      service: opts.service(),
      tcp: NODE_TCP,
      isnKey,
      random: rand(opts.seed + 3),
      sendAck: (lsn) => replication?.ack(lsn),
      scheduleAck: (run) => setImmediate(run),
      say,
    });
    replication = new MemoryReplication(this.primary.log, this.backup, { delayMs: () => delay(this.prng) });
    this.replication = replication;
    replication.connect();
    this.primary.backupAttached();
    if (opts.ungated) this.primary.gate.setGating(false);
  }

  /** Calls f with every TCP segment put on the LAN from now on. */
  onWire(f: (w: WireSegment) => void): void {
    this.watchers.push(f);
  }

  /** RSTs seen on the LAN coming from the VIP. */
  resetsFromVip(): WireSegment[] {
    const vip = ipv4FromString(VIP);
    return this.wire.filter((w) => w.src === vip && (w.seg.flags & TCP_RST) !== 0);
  }

  /**
   * RSTs from the VIP that reached a client connection still open: sent before the client had
   * read the server's end of stream on that port (`ends`: client port -> wire length then). One
   * sent later meets TIME-WAIT, which ignores it (RFC 1337); a duplicated final ACK draws such
   * RSTs from any TCP.
   */
  liveResets(ends: ReadonlyMap<number, number>): WireSegment[] {
    const vip = ipv4FromString(VIP);
    return this.wire.filter((w, i) => {
      if (w.src !== vip || (w.seg.flags & TCP_RST) === 0) return false;
      const end = ends.get(w.seg.dstPort);
      return end === undefined || i < end;
    });
  }

  /**
   * 5.1 rule 2 on the wire, per connection: no segment of the backup carries a TSval below one the
   * primary sent, nor advertises a right edge (ACK + scaled window) left of the primary's. Each
   * node against itself is the core's business (and the core may round a scaled window down by
   * less than one unit, or stamp a segment with the clock of the batch it answers).
   */
  continuityViolations(): string[] {
    const vip = ipv4FromString(VIP);
    const out: string[] = [];
    const conns = new Map<number, { shift: number; ts: number | null; edge: number | null }>();
    for (const w of this.wire) {
      if (w.src !== vip) continue;
      const seg = w.seg;
      if ((seg.flags & TCP_RST) !== 0) continue;
      const key = seg.dstPort;
      if ((seg.flags & TCP_SYN) !== 0) {
        if (!conns.has(key)) conns.set(key, { shift: seg.options.wscale ?? 0, ts: null, edge: null });
        continue;
      }
      const c = conns.get(key);
      if (c === undefined) continue;
      const tsval = seg.options.timestamp?.tsval;
      const edge = seqAdd(seg.ack, seg.window << c.shift);
      if (w.from === 'primary') {
        if (tsval !== undefined && (c.ts === null || seqLt(c.ts, tsval))) c.ts = tsval;
        if (c.edge === null || seqLt(c.edge, edge)) c.edge = edge;
        continue;
      }
      if (tsval !== undefined && c.ts !== null && seqLt(tsval, c.ts)) out.push(`port ${key}: backup TSval ${tsval} below the primary's ${c.ts}`);
      if (c.edge !== null && seqLt(edge, c.edge)) out.push(`port ${key}: backup right edge ${edge} left of the primary's ${c.edge}`);
    }
    return out;
  }

  /**
   * The primary dies (cable and replication link cut, process gone), then the backup takes over
   * and the LAN delivers the VIP's packets to it.
   */
  async failover(): Promise<TakeoverReport> {
    const backup = this.backup;
    if (backup === null) throw new Error('no backup to fail over to');
    this.replication?.cut();
    this.lan.cut('primary');
    await this.primary.kill();
    const report = backup.takeover();
    this.lan.setOwner('backup');
    return report;
  }

  /**
   * Planned switchover: the LAN holds the client's packets from nobody (they are lost and
   * retransmitted), the primary drains its log and stops, the backup takes over and the VIP moves.
   */
  async switchover(): Promise<TakeoverReport> {
    const backup = this.backup;
    if (backup === null) throw new Error('no backup to switch over to');
    this.lan.setOwner('nobody');
    if (!(await this.primary.handOver())) throw new Error('the primary did not drain its log');
    this.replication?.cut();
    const report = backup.takeover();
    this.lan.setOwner('backup');
    return report;
  }

  /**
   * The primary hangs (a SIGSTOP, a partition): it is cut off but keeps running, and the backup
   * takes over. `resumePrimary()` brings its cable back.
   */
  failoverHung(): TakeoverReport {
    const backup = this.backup;
    if (backup === null) throw new Error('no backup to fail over to');
    this.replication?.cut();
    this.lan.cut('primary');
    const report = backup.takeover();
    this.lan.setOwner('backup');
    return report;
  }

  resumePrimary(): void {
    this.lan.reconnect('primary');
  }

  async close(): Promise<void> {
    await this.client.close();
    // A primary that was failed over from may still run (hung, fenced): stop it without a word.
    if (this.lan.vipOwner === 'primary') await this.primary.close();
    else await this.primary.kill();
    await this.backup?.close();
  }
}

/** Deterministic bytes for a seed. */
export function randomBytes(prng: Prng, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4) {
    const x = prng.next();
    b[i] = x & 0xff;
    if (i + 1 < n) b[i + 1] = (x >>> 8) & 0xff;
    if (i + 2 < n) b[i + 2] = (x >>> 16) & 0xff;
    if (i + 3 < n) b[i + 3] = x >>> 24;
  }
  return b;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves once cond() holds, polling; rejects after timeoutMs with the message. */
export async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}
