// A lab of network namespaces (ARCHITECTURE.md section 7): a switch namespace with a bridge, and
// client, primary and (optionally) backup namespaces attached to it by veth pairs, plus an optional
// direct veth between primary and backup for replication. Nothing is connected to the host's own
// namespace. Every lab is torn down by destroy(), and also when the process exits or is
// interrupted, killing every process it started.

import { spawn as spawnChild, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { withNetns } from '../../src/tun/libc.js';
import { CommandError, deleteNamespaceSync, ip, runCommand, type RunResult } from './netns.js';
import { BRIDGE, LAB_ADDR, LAN_IFACE, newLabId, nsName, REPL_IFACE, type LabNode } from './names.js';

export { LAB_ADDR, LAN_IFACE, REPL_IFACE, type LabNode } from './names.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface LabOptions {
  /** Add the backup namespace on the LAN. Default false (client and primary only). */
  withBackup?: boolean;
  /** Add a direct primary-backup veth (198.19.0.1/30 - .2/30). Implies withBackup. */
  replicationLink?: boolean;
  /**
   * Keep the lab after this process exits (the `lab up` command). Such labs carry owner pid 0 and
   * are removed by `lab down <id>` or `lab down --all`.
   */
  persistent?: boolean;
}

export interface LabExecOptions {
  /** Default 60 s; the command is killed after it. */
  timeoutMs?: number;
  /** Resolve with the result instead of rejecting when the exit code is not 0. */
  allowFailure?: boolean;
  input?: string;
}

export interface LabSpawnOptions {
  stdio?: StdioOptions;
  env?: NodeJS.ProcessEnv;
  /** Default: the repository root. */
  cwd?: string;
}

export interface Lab {
  readonly id: string;
  /** Namespace names; backup is undefined without one. */
  readonly ns: { readonly switch: string; readonly client: string; readonly primary: string; readonly backup?: string };
  readonly addr: typeof LAB_ADDR;
  /** The LAN interface inside client, primary and backup. */
  readonly lanIface: string;
  /** The replication interface inside primary and backup, when there is a replication link. */
  readonly replIface: string | undefined;
  /** Namespace name of a node; throws if the lab has no such node. */
  netns(node: LabNode): string;
  /** Runs a command inside a node's namespace (`ip netns exec`). Rejects on a non-zero exit. */
  exec(node: LabNode, cmd: string, args?: readonly string[], opts?: LabExecOptions): Promise<RunResult>;
  /**
   * Starts a process inside a node's namespace, in its own process group. destroy() kills it (and
   * all its descendants) if it is still running.
   */
  spawn(node: LabNode, cmd: string, args?: readonly string[], opts?: LabSpawnOptions): ChildProcess;
  /**
   * Starts a TypeScript file with this Node and tsx inside a node's namespace; the returned
   * child's pid is the Node process itself, so SIGKILL on it kills that process (failover tests).
   */
  spawnNode(node: LabNode, script: string, args?: readonly string[], opts?: LabSpawnOptions): ChildProcess;
  /** MAC address of an interface inside a node (default the LAN interface). */
  macOf(node: LabNode, iface?: string): Promise<string>;
  /** Removes every namespace and process of the lab. Idempotent. */
  destroy(): Promise<void>;
}

/** Throws an explanatory Error unless this process can build labs. */
export function assertLabPrerequisites(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error(
      'lab: needs root (it creates network namespaces, veth pairs and tun devices). ' +
        'Run the lab tests as root, e.g. `sudo npx vitest run test/lab`; CI runs as root.',
    );
  }
  if (!existsSync('/usr/sbin/ip') && !existsSync('/sbin/ip') && !existsSync('/usr/bin/ip') && !existsSync('/bin/ip')) {
    throw new Error('lab: the `ip` command (iproute2) is missing; install it with `apt-get install -y iproute2`.');
  }
}

// Labs of this process that must disappear with it.
const liveLabs = new Set<LabImpl>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', destroyAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      destroyAllSync();
      // Keep the signal's default effect (termination) unless someone else also listens and so
      // has taken charge of shutting down.
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, handler);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, handler);
  }
}

function destroyAllSync(): void {
  for (const lab of [...liveLabs]) {
    try {
      lab.destroySync();
    } catch (e) {
      // Exiting anyway: report, so that `lab down --all` gets run.
      process.stderr.write(`${String(e)}\n`);
    }
  }
}

export async function createLab(opts: LabOptions = {}): Promise<Lab> {
  assertLabPrerequisites();
  const withRepl = opts.replicationLink === true;
  const withBackup = opts.withBackup === true || withRepl;
  const id = newLabId(opts.persistent ? 0 : process.pid);
  const lab = new LabImpl(id, withBackup, withRepl);
  if (!opts.persistent) {
    installExitHooks();
    liveLabs.add(lab);
  }
  try {
    await lab.build();
  } catch (e) {
    lab.destroySync();
    throw e;
  }
  return lab;
}

class LabImpl implements Lab {
  readonly ns: { switch: string; client: string; primary: string; backup?: string };
  readonly addr = LAB_ADDR;
  readonly lanIface = LAN_IFACE;
  readonly replIface: string | undefined;
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;
  private destroying: Promise<void> | undefined;

  constructor(
    readonly id: string,
    private readonly withBackup: boolean,
    private readonly withRepl: boolean,
  ) {
    this.ns = { switch: nsName(id, 'switch'), client: nsName(id, 'client'), primary: nsName(id, 'primary') };
    if (withBackup) this.ns.backup = nsName(id, 'backup');
    this.replIface = withRepl ? REPL_IFACE : undefined;
  }

  private hosts(): LabNode[] {
    return this.withBackup ? ['client', 'primary', 'backup'] : ['client', 'primary'];
  }

  private allNamespaces(): string[] {
    return [this.ns.client, this.ns.primary, ...(this.ns.backup ? [this.ns.backup] : []), this.ns.switch];
  }

  netns(node: LabNode): string {
    const n = this.ns[node];
    if (n === undefined) throw new Error(`lab ${this.id} has no ${node} (create it with withBackup: true)`);
    return n;
  }

  async build(): Promise<void> {
    for (const ns of this.allNamespaces()) {
      await ip(['netns', 'add', ns]);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      // IPv6 would only add router solicitations and MLD chatter to every capture.
      quietIpv6(ns);
    }
    const sw = this.ns.switch;
    await ip(['-n', sw, 'link', 'add', BRIDGE, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    await ip(['-n', sw, 'link', 'set', BRIDGE, 'up']);
    for (const node of this.hosts()) {
      const ns = this.netns(node);
      // Created inside the switch namespace with the peer placed directly in the node's, so not
      // even a transient interface appears in the host namespace.
      await ip(['-n', sw, 'link', 'add', node, 'type', 'veth', 'peer', 'name', LAN_IFACE, 'netns', ns]);
      await ip(['-n', sw, 'link', 'set', node, 'master', BRIDGE, 'up']);
      const a = LAB_ADDR[node as 'client' | 'primary' | 'backup'];
      await ip(['-n', ns, 'addr', 'add', `${a}/${LAB_ADDR.lanPrefixLen}`, 'dev', LAN_IFACE]);
      await ip(['-n', ns, 'link', 'set', LAN_IFACE, 'up']);
    }
    if (this.withRepl) {
      const p = this.ns.primary;
      const b = this.netns('backup');
      await ip(['-n', p, 'link', 'add', REPL_IFACE, 'type', 'veth', 'peer', 'name', REPL_IFACE, 'netns', b]);
      await ip(['-n', p, 'addr', 'add', `${LAB_ADDR.replPrimary}/${LAB_ADDR.replPrefixLen}`, 'dev', REPL_IFACE]);
      await ip(['-n', b, 'addr', 'add', `${LAB_ADDR.replBackup}/${LAB_ADDR.replPrefixLen}`, 'dev', REPL_IFACE]);
      await ip(['-n', p, 'link', 'set', REPL_IFACE, 'up']);
      await ip(['-n', b, 'link', 'set', REPL_IFACE, 'up']);
    }
  }

  async exec(node: LabNode, cmd: string, args: readonly string[] = [], opts: LabExecOptions = {}): Promise<RunResult> {
    const full = ['netns', 'exec', this.netns(node), cmd, ...args];
    const r = await runCommand('ip', full, opts);
    if (r.code !== 0 && !opts.allowFailure) throw new CommandError([`[${node}]`, cmd, ...args], r.code, r.stdout, r.stderr);
    return r;
  }

  spawn(node: LabNode, cmd: string, args: readonly string[] = [], opts: LabSpawnOptions = {}): ChildProcess {
    if (this.destroyed) throw new Error(`lab ${this.id} is destroyed`);
    // `ip netns exec` execs the command in place, so the child's pid is the command's pid.
    const child = spawnChild('ip', ['netns', 'exec', this.netns(node), cmd, ...args], {
      detached: true, // own process group: destroy() can kill descendants too
      stdio: opts.stdio ?? 'pipe',
      env: opts.env ?? process.env,
      cwd: opts.cwd ?? REPO_ROOT,
    });
    this.children.add(child);
    // No 'error' listener here: a failed spawn must stay visible to the caller.
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  spawnNode(node: LabNode, script: string, args: readonly string[] = [], opts: LabSpawnOptions = {}): ChildProcess {
    return this.spawn(node, process.execPath, ['--import', 'tsx', script, ...args], opts);
  }

  async macOf(node: LabNode, iface: string = LAN_IFACE): Promise<string> {
    const out = await ip(['-n', this.netns(node), '-j', 'link', 'show', 'dev', iface]);
    const parsed = JSON.parse(out) as Array<{ address?: string }>;
    const mac = parsed[0]?.address;
    if (!mac) throw new Error(`no MAC for ${iface} in ${node}`);
    return mac;
  }

  destroy(): Promise<void> {
    if (this.destroying === undefined) {
      // The work is synchronous anyway (it must also run inside process.on('exit')); the promise
      // keeps the API uniform and lets callers await it.
      this.destroying = Promise.resolve().then(() => this.destroySync());
    }
    return this.destroying;
  }

  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    liveLabs.delete(this);
    for (const child of this.children) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // group already gone
        }
      }
    }
    this.children.clear();
    const errors: unknown[] = [];
    // Processes left in a namespace (grandchildren that changed group, servers started by other
    // helpers) are killed by deleteNamespaceSync before the namespace goes.
    for (const ns of this.allNamespaces()) {
      try {
        deleteNamespaceSync(ns);
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, `lab ${this.id}: could not remove everything`);
  }
}

function quietIpv6(ns: string): void {
  withNetns(ns, () => {
    for (const which of ['all', 'default']) {
      try {
        writeFileSync(`/proc/sys/net/ipv6/conf/${which}/disable_ipv6`, '1');
      } catch {
        // no IPv6 in this kernel: already quiet
      }
    }
  });
}
