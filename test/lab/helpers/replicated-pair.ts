// A primary and a backup `understudy node` in a lab built with a replication link: started with
// one service spec, watched through their control sockets and JSON logs, SIGKILLed on demand and
// stopped after each test. Waits are on conditions (control socket up, primary protected), never
// on fixed sleeps, and they fail at once when a node exits, with both nodes' log tails.

import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { replicationOptions, servingOptions } from '../../../bench/failover/nodes.js';
import type { Lab } from '../../../scripts/lab.js';
import { controlRequest } from '../../../src/control/client.js';

export type PairRole = 'primary' | 'backup';

/** The part of `understudy status --json` the pair tests read. */
export interface PairStatus {
  role: string;
  epoch: number;
  protected: boolean;
  protectedReason: string | null;
  replication?: {
    peer: { state: string };
    applied: { lastLsn: number; shadows: number; divergences: number; replicaFailed: number } | null;
    takeover: unknown;
    heartbeatAgeMs: number | null;
    lanHeartbeatAgeMs: number | null;
    switchover: { outcome: string; stallMs: number | null; takeoverMs: number | null; epoch: number } | null;
  };
}

interface RunningNode {
  child: ChildProcess;
  exited: Promise<unknown>;
  logFile: string;
  control: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ReplicatedPair {
  private readonly nodes = new Map<PairRole, RunningNode>();
  private readonly keyFile: string;
  private run = 0;
  private starts = 0;

  /** `dir` holds the key, logs and control sockets; `tun` names both nodes' tun devices. */
  constructor(
    private readonly lab: () => Lab,
    private readonly dir: string,
    private readonly tun: string,
  ) {
    this.keyFile = join(dir, 'repl.key');
    writeFileSync(this.keyFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  }

  /** The control socket of the node started in that role's namespace. */
  control(role: PairRole): string {
    const n = this.nodes.get(role);
    if (n === undefined) throw new Error(`no ${role} node running`);
    return n.control;
  }

  logOf(role: PairRole): string {
    const n = this.nodes.get(role);
    return n === undefined || !existsSync(n.logFile) ? '' : readFileSync(n.logFile, 'utf8');
  }

  /** Both nodes' log tails, for failure messages. */
  logs(): string {
    return `--- primary log (tail)\n${this.logOf('primary').slice(-4000)}\n--- backup log (tail)\n${this.logOf('backup').slice(-4000)}`;
  }

  /** The JSON log events named `event` of one node, parsed. */
  events(role: PairRole, event: string): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.logOf(role).split('\n')) {
      if (!line.includes(`"${event}"`)) continue;
      try {
        const v = JSON.parse(line) as Record<string, unknown>;
        if (v.event === event) out.push(v);
      } catch {
        // a line cut by the kill, or not JSON: not an event
      }
    }
    return out;
  }

  /** A test that reads more of the status names its shape (e.g. ReplicatedNodeStatus). */
  async status<S = PairStatus>(role: PairRole): Promise<S | null> {
    const n = this.nodes.get(role);
    if (n === undefined) return null;
    try {
      return (await controlRequest(n.control, 'status', {}, 2000)) as S;
    } catch {
      return null;
    }
  }

  /** Polls `ok` until it holds; fails on timeout or when a node that was not killed has exited. */
  async waitUntil(what: string, ok: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await ok())) {
      for (const [role, n] of this.nodes) {
        if (n.child.exitCode !== null) throw new Error(`the ${role} exited (code ${n.child.exitCode}) while waiting for ${what}\n${this.logs()}`);
      }
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s\n${this.logs()}`);
      await sleep(50);
    }
  }

  /**
   * Backup first, then the primary; resolves once the primary says it is protected. `args` adds
   * options for one role's node (e.g. `--log-level debug` for the backup's takeover details).
   */
  async start(service: string, port: number, args: Partial<Record<PairRole, string[]>> = {}): Promise<void> {
    this.run++;
    this.startNode('backup', service, port, args.backup);
    await this.waitUntil('backup control socket', async () => (await this.status('backup')) !== null, 30_000);
    this.startNode('primary', service, port, args.primary);
    await this.waitUntil('primary protected', async () => (await this.status('primary'))?.protected === true, 45_000);
  }

  /** The node process's pid (for SIGSTOP/SIGCONT); undefined when that role is not running. */
  pid(role: PairRole): number | undefined {
    return this.nodes.get(role)?.child.pid;
  }

  kill(role: PairRole): void {
    const pid = this.pid(role);
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
  }

  /** SIGTERM, then SIGKILL after 10 s, for every node still running. */
  async stop(): Promise<void> {
    for (const [, n] of this.nodes) {
      if (n.child.exitCode === null && n.child.signalCode === null) {
        n.child.kill('SIGTERM');
        const done = await Promise.race([n.exited.then(() => true), sleep(10_000).then(() => false)]);
        if (!done) n.child.kill('SIGKILL');
      }
    }
    this.nodes.clear();
  }

  /**
   * One node in the namespace named for `role`, started in that role (start() starts both) or, with
   * `opts.as`, in the other one: a node restarted as the backup of the node that took over.
   * `opts.nodeFlags` are options for node itself (e.g. --cpu-prof), before the script.
   */
  startNode(role: PairRole, service: string, port: number, extraArgs: string[] = [], opts: { as?: PairRole; env?: NodeJS.ProcessEnv; nodeFlags?: string[] } = {}): void {
    const l = this.lab();
    // A restart in the same namespace keeps the earlier node's log beside its own.
    const n = ++this.starts;
    const logFile = join(this.dir, `${role}-${this.run}-${n}.log`);
    const control = join(this.dir, `${role}-${this.run}-${n}.sock`);
    const fd = openSync(logFile, 'w');
    let child: ChildProcess;
    try {
      child = l.spawn(role, process.execPath, [
        ...(opts.nodeFlags ?? []),
        'bin/understudy.js', 'node',
        ...replicationOptions(l, role, opts.as ?? role, this.keyFile),
        ...servingOptions(l, { service, port, tun: this.tun, control }),
        ...extraArgs,
      ], { stdio: ['ignore', fd, fd], ...(opts.env !== undefined ? { env: opts.env } : {}) });
    } finally {
      closeSync(fd);
    }
    this.nodes.set(role, { child, exited: once(child, 'exit'), logFile, control });
  }
}
