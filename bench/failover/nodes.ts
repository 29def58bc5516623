// Starting and stopping `understudy node` processes inside the failover bench's lab: a replicated
// primary/backup pair (with the options test/lab/helpers/replicated-pair.ts starts its nodes with
// too) or a lone unreplicated node on the primary, each with its JSON log in a file (the log must
// survive a SIGKILL) and its own control socket.

import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Lab } from '../../scripts/lab.js';
import { controlRequest } from '../../src/control/client.js';
import { REPO_ROOT } from '../proc.js';

export const TUN = 'usfbench0';
export const REPL_PORT = 7070;

export type Role = 'primary' | 'backup' | 'solo';

export interface Timing {
  heartbeatMs: number;
  deadAfterMs: number;
}

export interface NodeHandle {
  role: Role;
  child: ChildProcess;
  exited: Promise<unknown>;
  logFile: string;
  control: string;
}

export interface Status {
  role?: string;
  epoch?: number;
  protected?: boolean;
  protectedReason?: string | null;
  /** The client link, and on a replicated node the replication link (stats counted in frames). */
  links?: { name: string; stats: { txPackets: number; rxPackets: number } }[];
  /** A replicated primary's output commit: packets that waited for the backup and that went at once. */
  replication?: { lag?: { packets?: { waited: number; passed: number }; commit?: { p50Us: number; p99Us: number; maxUs: number; samples: number } | null } | null };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The replication options of a node started in the lab's `ns` namespace in `role` (a node
 * restarted as the backup of the one that took over runs in the primary namespace): its own
 * address on the replication link, its peer's, the shared key, and optionally the timing.
 */
export function replicationOptions(l: Lab, ns: 'primary' | 'backup', role: 'primary' | 'backup', keyFile: string, timing?: Timing): string[] {
  const own = ns === 'primary' ? l.addr.replPrimary : l.addr.replBackup;
  const peer = ns === 'primary' ? l.addr.replBackup : l.addr.replPrimary;
  return [
    '--role', role,
    '--replication', `${own}:${REPL_PORT}`,
    '--peer', `${peer}:${REPL_PORT}`,
    '--key-file', keyFile,
    ...(timing === undefined ? [] : ['--heartbeat', String(timing.heartbeatMs), '--dead-after', String(timing.deadAfterMs)]),
  ];
}

/** What every lab node is told: the VIP and port, its service, the LAN and tun, JSON logs to read back, its control socket. */
export function servingOptions(l: Lab, o: { service: string; port: number; tun: string; control: string }): string[] {
  return ['--vip', l.addr.vip, '--port', String(o.port), '--service', o.service, '--lan', l.lanIface, '--tun', o.tun, '--log-format', 'json', '--control', o.control];
}

export class Nodes {
  private readonly live = new Set<NodeHandle>();
  private seq = 0;

  constructor(
    private readonly lab: Lab,
    private readonly dir: string,
    private readonly keyFile: string,
    /** V8 CPU profiles of every node go here, a directory per process (<role>-<n>/). */
    private readonly profileDir?: string,
    /** Node options for every node process (bench:failover --node-flags). */
    private readonly nodeFlags: readonly string[] = [],
  ) {}

  /**
   * Starts one node; `solo` is the same binary without --role (no replication at all). `extra`:
   * further `understudy node` options (e.g. --syn-backlog).
   */
  start(role: Role, service: string, port: number, timing?: Timing, extra: readonly string[] = []): NodeHandle {
    const l = this.lab;
    const n = ++this.seq;
    const logFile = path.join(this.dir, `${role}-${n}.log`);
    const control = path.join(this.dir, `${role}-${n}.sock`);
    const replication = role === 'solo' ? [] : replicationOptions(l, role, role, this.keyFile, timing);
    const fd = openSync(logFile, 'w');
    let child: ChildProcess;
    try {
      child = l.spawn(role === 'backup' ? 'backup' : 'primary', process.execPath, [
        // A directory per node: tsx's loader thread writes a profile of its own next to the main one.
        ...(this.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${path.join(this.profileDir, `${role}-${n}`)}`]),
        ...this.nodeFlags,
        path.join(REPO_ROOT, 'bin', 'understudy.js'), 'node',
        ...replication,
        ...servingOptions(l, { service, port, tun: TUN, control }),
        ...extra,
      ], { stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    const h: NodeHandle = { role, child, exited: once(child, 'exit'), logFile, control };
    this.live.add(h);
    return h;
  }

  log(h: NodeHandle): string {
    return existsSync(h.logFile) ? readFileSync(h.logFile, 'utf8') : '';
  }

  async status(h: NodeHandle): Promise<Status | null> {
    try {
      return (await controlRequest(h.control, 'status', {}, 2000)) as Status;
    } catch {
      return null;
    }
  }

  alive(h: NodeHandle): boolean {
    return h.child.exitCode === null && h.child.signalCode === null;
  }

  /** Polls until ok() holds; throws with the log tail when the node exits or time runs out. */
  async waitUntil(what: string, h: NodeHandle, ok: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await ok())) {
      if (!this.alive(h)) throw new Error(`the ${h.role} exited while waiting for ${what}: ${this.log(h).slice(-1500)}`);
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s; ${h.role} log: ${this.log(h).slice(-1500)}`);
      await sleep(50);
    }
  }

  /** Backup first, then the primary; ready once the primary says it is protected. */
  async startPair(service: string, port: number, timing: Timing, extra: readonly string[] = []): Promise<{ primary: NodeHandle; backup: NodeHandle }> {
    const backup = this.start('backup', service, port, timing, extra);
    // A backup holds no route and may log no node.ready: its control socket answering will do.
    await this.waitUntil('backup control socket', backup, async () => (await this.status(backup)) !== null, 30_000);
    const primary = this.start('primary', service, port, timing, extra);
    await this.waitUntil('primary protected', primary, async () => (await this.status(primary))?.protected === true, 45_000);
    await this.forgetNeighbours();
    return { primary, backup };
  }

  async startSolo(service: string, port: number): Promise<NodeHandle> {
    const h = this.start('solo', service, port);
    // The control socket answers before the VIP is routed; node.ready says it is.
    await this.waitUntil('node.ready', h, async () => this.log(h).includes('"node.ready"'), 30_000);
    await this.forgetNeighbours();
    return h;
  }

  /**
   * The client's neighbour entry for the VIP may still name the MAC of a node from the previous
   * round (the backup that took over); flushing makes the next packet ask ARP afresh, which only
   * the running node answers.
   */
  private async forgetNeighbours(): Promise<void> {
    await this.lab.exec('client', 'ip', ['neigh', 'flush', 'all'], { allowFailure: true });
  }

  kill(h: NodeHandle): void {
    if (this.alive(h) && h.child.pid !== undefined) process.kill(h.child.pid, 'SIGKILL');
  }

  /** SIGTERM every node still running (SIGKILL after 5 s); resolves when all are gone. */
  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.live].map(async (h) => {
        if (this.alive(h)) {
          h.child.kill('SIGTERM');
          const done = await Promise.race([h.exited.then(() => true), sleep(5000).then(() => false)]);
          if (!done) {
            h.child.kill('SIGKILL');
            await h.exited;
          }
        }
        this.live.delete(h);
      }),
    );
  }
}
