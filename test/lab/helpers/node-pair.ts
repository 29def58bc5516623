// A primary and a backup `understudy node` in a lab with a replication link, as the operator runs
// them (the real CLI, JSON logs to a file each, a control socket each), plus the waits and status
// reads tests need around them. The caller stops them in afterAll/afterEach (stop()); the lab's
// own teardown kills whatever is left in its namespaces.

import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlRequest } from '../../../src/control/client.js';
import type { ReplicatedNodeStatus } from '../../../src/cli/node-status.js';
import type { Lab } from '../../../scripts/lab.js';

export type PairRole = 'primary' | 'backup';

export interface PairOptions {
  /** Working directory for the key, logs and control sockets. */
  dir: string;
  service: string;
  port: number;
  tun: string;
  replicationPort?: number;
}

interface RunningChild {
  child: ChildProcess;
  exited: Promise<unknown>;
  logFile: string;
  control: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class NodePair {
  private readonly nodes = new Map<PairRole, RunningChild>();
  private readonly keyFile: string;
  private run = 0;

  constructor(
    private readonly lab: () => Lab,
    private readonly opts: PairOptions,
  ) {
    this.keyFile = join(opts.dir, 'repl.key');
    writeFileSync(this.keyFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  }

  control(role: PairRole): string {
    const n = this.nodes.get(role);
    if (n === undefined) throw new Error(`no ${role} running`);
    return n.control;
  }

  logOf(role: PairRole): string {
    const n = this.nodes.get(role);
    return n === undefined || !existsSync(n.logFile) ? '' : readFileSync(n.logFile, 'utf8');
  }

  /** Both logs' tails, for failure messages. */
  logs(): string {
    return `--- primary log (tail)\n${this.logOf('primary').slice(-4000)}\n--- backup log (tail)\n${this.logOf('backup').slice(-4000)}`;
  }

  async status(role: PairRole): Promise<ReplicatedNodeStatus | null> {
    const n = this.nodes.get(role);
    if (n === undefined) return null;
    try {
      return (await controlRequest(n.control, 'status', {}, 2000)) as ReplicatedNodeStatus;
    } catch {
      return null;
    }
  }

  /** Polls until ok() holds; fails at once if a node exits, and with both logs on timeout. */
  async waitUntil(what: string, ok: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await ok())) {
      for (const [role, n] of this.nodes) {
        if (n.child.exitCode !== null || n.child.signalCode !== null) throw new Error(`the ${role} exited while waiting for ${what}\n${this.logs()}`);
      }
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s\n${this.logs()}`);
      await sleep(everyMs);
    }
  }

  /** Backup first, then the primary; resolves once the primary says it is protected. */
  async start(): Promise<void> {
    this.run++;
    this.spawn('backup');
    await this.waitUntil('backup control socket', async () => (await this.status('backup')) !== null, 30_000);
    this.spawn('primary');
    await this.waitUntil('primary protected', async () => (await this.status('primary'))?.protected === true, 45_000);
  }

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

  private spawn(role: PairRole): void {
    const l = this.lab();
    const port = this.opts.replicationPort ?? 7070;
    const logFile = join(this.opts.dir, `${role}-${this.run}.log`);
    const control = join(this.opts.dir, `${role}-${this.run}.sock`);
    const own = role === 'primary' ? l.addr.replPrimary : l.addr.replBackup;
    const peer = role === 'primary' ? l.addr.replBackup : l.addr.replPrimary;
    const fd = openSync(logFile, 'w');
    let child: ChildProcess;
    try {
      child = l.spawn(
        role,
        process.execPath,
        [
          'bin/understudy.js', 'node',
          '--role', role,
          '--replication', `${own}:${port}`,
          '--peer', `${peer}:${port}`,
          '--key-file', this.keyFile,
          '--vip', l.addr.vip, '--port', String(this.opts.port),
          '--service', this.opts.service,
          '--lan', l.lanIface, '--tun', this.opts.tun,
          '--log-format', 'json',
          '--control', control,
        ],
        { stdio: ['ignore', fd, fd] },
      );
    } finally {
      closeSync(fd);
    }
    this.nodes.set(role, { child, exited: once(child, 'exit'), logFile, control });
  }
}
