// `understudy status`: what a running node is doing, for humans (aligned text) or machines
// (--json, one object; with --watch, one object per line). --watch keeps one control connection
// and redraws in place on a terminal.

import type { Command } from 'commander';
import { ControlConnection } from '../control/client.js';
import { addControlOptions, asNodeStatus, type ControlOptions } from './control-options.js';
import { resolveControlPath } from './control-path.js';
import type { CommandContext } from './program.js';
import { formatStatus } from './status-format.js';
import { EXIT_OK, UsageError } from './usage-error.js';

export interface StatusCommandOptions extends ControlOptions {
  json?: boolean;
  /** true: the default interval; a string: milliseconds as typed. */
  watch?: boolean | string;
}

export const DEFAULT_WATCH_MS = 1000;
const MIN_WATCH_MS = 100;

export function registerStatusCommand(program: Command, ctx: CommandContext, isTty: () => boolean = () => process.stdout.isTTY === true): void {
  const cmd = program.command('status').description('show a running node: role, counters, faults and one line per connection');
  addControlOptions(cmd)
    .option('--json', 'print stable machine-readable JSON')
    .option('--watch [ms]', `refresh every ms milliseconds (default ${DEFAULT_WATCH_MS}) until interrupted`)
    .action(async (opts: StatusCommandOptions) => {
      ctx.exitCode = await runStatusCommand(opts, ctx, isTty());
    });
}

export function parseWatch(watch: boolean | string | undefined): number | undefined {
  if (watch === undefined || watch === false) return undefined;
  if (watch === true) return DEFAULT_WATCH_MS;
  if (!/^\d+$/.test(watch) || Number(watch) < MIN_WATCH_MS) throw new UsageError(`--watch: expected milliseconds >= ${MIN_WATCH_MS}, got "${watch}"`);
  return Number(watch);
}

export async function runStatusCommand(opts: StatusCommandOptions, ctx: CommandContext, tty: boolean, stop?: Promise<void>): Promise<number> {
  const interval = parseWatch(opts.watch);
  const path = resolveControlPath(opts);
  const conn = await ControlConnection.open(path);
  try {
    const render = async (): Promise<string> => {
      const status = asNodeStatus(await conn.request('status'));
      return opts.json ? JSON.stringify(status) + '\n' : formatStatus(status);
    };
    if (interval === undefined) {
      const text = await render();
      ctx.io.stdout(opts.json ? JSON.stringify(JSON.parse(text), null, 2) + '\n' : text);
      return EXIT_OK;
    }
    let stopped = false;
    let wake: (() => void) | undefined;
    const onSignal = (): void => {
      stopped = true;
      wake?.();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    void stop?.then(onSignal);
    try {
      while (!stopped) {
        const text = await render();
        // On a terminal: home, clear to the end, redraw. Elsewhere: frames one after another.
        if (tty && !opts.json) ctx.io.stdout(`\x1b[H\x1b[J${new Date().toISOString()}  every ${interval} ms, ^C to stop\n\n${text}`);
        else ctx.io.stdout(opts.json ? text : `${text}\n`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, interval);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    return EXIT_OK;
  } finally {
    conn.close();
  }
}
