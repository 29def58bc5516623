// Running programs inside a lab namespace: one-shot commands with a hard timeout, long-lived
// servers that announce readiness on stdout, and Node/TypeScript scripts run through tsx. Used by
// the bench orchestrator and the lab tests.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** argv that runs a TypeScript file of this repo with Node and the tsx loader. */
export function tsNode(script: string, args: string[] = [], nodeFlags: string[] = []): string[] {
  return [process.execPath, ...nodeFlags, '--import', 'tsx', path.resolve(REPO_ROOT, script), ...args];
}

/** argv prefix that runs a command inside a network namespace (or here, when ns is undefined). */
export function inNs(ns: string | undefined, argv: string[]): string[] {
  return ns === undefined ? argv : ['ip', 'netns', 'exec', ns, ...argv];
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  timeoutMs: number;
  input?: string | Buffer;
  /** Keep only the last this many characters of each stream (big outputs stay bounded). */
  maxOutput?: number;
}

/** Runs argv to completion; kills it (and its process group) when the timeout passes. */
export function run(argv: string[], opts: RunOptions): Promise<RunResult> {
  const max = opts.maxOutput ?? 1_000_000;
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout = (stdout + d).slice(-max);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-max);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      killTree(child, 'SIGKILL');
    }, opts.timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Signals the child's whole process group (ip netns exec, shells and their children). */
export function killTree(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** A long-running process whose output is kept for diagnostics. */
export class Service {
  readonly child: ChildProcess;
  private out = '';
  private err = '';
  private exited: Promise<void>;

  constructor(
    readonly name: string,
    argv: string[],
  ) {
    this.child = spawn(argv[0]!, argv.slice(1), { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.out = (this.out + d).slice(-200_000);
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.err = (this.err + d).slice(-200_000);
    });
    this.exited = new Promise((resolve) => this.child.once('close', () => resolve()));
    this.child.once('error', (e) => {
      this.err += `\nspawn error: ${e.message}`;
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get stdout(): string {
    return this.out;
  }

  get stderr(): string {
    return this.err;
  }

  /** The last lines of both streams, for error messages. */
  tail(lines = 20): string {
    const cut = (s: string): string => s.trimEnd().split('\n').slice(-lines).join('\n');
    return `--- ${this.name} stdout ---\n${cut(this.out)}\n--- ${this.name} stderr ---\n${cut(this.err)}`;
  }

  /** Resolves when a stdout or stderr line matches; rejects if the process exits or time runs out. */
  async waitFor(match: RegExp, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = `${this.out}\n${this.err}`.split('\n').find((l) => match.test(l));
      if (line !== undefined) return line;
      if (!this.running) throw new Error(`${this.name} exited (code ${this.child.exitCode}, signal ${this.child.signalCode}) before printing ${match}\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not print ${match} within ${timeoutMs} ms\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    killTree(this.child, 'SIGTERM');
    const timer = setTimeout(() => killTree(this.child, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
