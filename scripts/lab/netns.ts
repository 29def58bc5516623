// Thin wrappers over `ip netns` and `ip -n`, synchronous and asynchronous. The synchronous forms
// exist for process-exit cleanup, where nothing asynchronous runs any more.

import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export class CommandError extends Error {
  constructor(
    readonly cmd: readonly string[],
    readonly code: number | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`${cmd.join(' ')} failed (${code === null ? 'killed or not started' : `exit ${code}`}): ${(stderr.trim() || stdout.trim()).slice(-2000)}`);
    this.name = 'CommandError';
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function runCommand(cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, signal: null, stdout, stderr });
        const e = err as NodeJS.ErrnoException & { code?: number | string; signal?: NodeJS.Signals | null };
        const spawnFailed = typeof e.code === 'string'; // e.g. ENOENT: the command does not exist
        resolve({
          code: typeof e.code === 'number' ? e.code : null,
          signal: e.signal ?? null,
          stdout,
          stderr: spawnFailed ? `${stderr}${e.message}` : stderr,
        });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export async function ip(args: readonly string[]): Promise<string> {
  const r = await runCommand('ip', args);
  if (r.code !== 0) throw new CommandError(['ip', ...args], r.code, r.stdout, r.stderr);
  return r.stdout;
}

export function listNamespaces(): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

/** Pids of processes whose network namespace is `ns` (empty when it is gone). */
export function namespacePids(ns: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .map((l) => Number(l.trim()))
      .filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return [];
  }
}

/**
 * Kills every process living in `ns` (all were started inside the lab), then deletes it.
 * Missing namespaces are fine: deletion is idempotent.
 */
export function deleteNamespaceSync(ns: string): void {
  for (let round = 0; round < 20; round++) {
    const pids = namespacePids(ns).filter((p) => p !== process.pid);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // Give the kernel a moment to reap before asking again.
    execFileSync('sleep', ['0.05']);
  }
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const stderr = String((e as { stderr?: Buffer | string }).stderr ?? '');
    if (!/No such file|does not exist|Cannot remove namespace file/.test(stderr) || namespaceExists(ns)) throw e;
  }
}

export function namespaceExists(ns: string): boolean {
  return listNamespaces().includes(ns);
}

/** True while `pid` runs; a zombie waiting to be reaped counts as gone. */
export function pidAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/PID/stat: "pid (comm) S ..."; comm may contain spaces or parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
