// `understudy switchover`: asks the primary, through its control socket, to hand its connections
// over to the backup and become the backup itself (ARCHITECTURE.md 5.4, planned switchover).
// Prints the stall the clients saw and the new primary. Refused or aborted: one line, exit 1.

import type { Command } from 'commander';
import { controlRequest } from '../control/client.js';
import { DEFAULT_SWITCHOVER_TIMEOUT_MS, MAX_SWITCHOVER_TIMEOUT_MS, MIN_SWITCHOVER_TIMEOUT_MS, switchoverRequestTimeoutMs } from '../control/switchover.js';
import type { SwitchoverResult } from '../replication/node/switchover.js';
import { addControlOptions, type ControlOptions } from './control-options.js';
import { resolveControlPath } from './control-path.js';
import { parseMillis } from './options.js';
import type { CommandContext } from './program.js';
import { EXIT_FAILURE, EXIT_OK } from './usage-error.js';

interface SwitchoverOptions extends ControlOptions {
  timeout: number;
  json?: boolean;
}

export function registerSwitchoverCommand(program: Command, ctx: CommandContext): void {
  const cmd = program.command('switchover').description('planned role swap: the primary hands every connection to the backup and becomes the backup');
  addControlOptions(cmd)
    .option(
      '--timeout <ms>',
      `how long the primary waits for the backup to catch up, and then for its reply, before it gives up and serves on (${MIN_SWITCHOVER_TIMEOUT_MS}..${MAX_SWITCHOVER_TIMEOUT_MS})`,
      parseMillis(MIN_SWITCHOVER_TIMEOUT_MS, MAX_SWITCHOVER_TIMEOUT_MS),
      DEFAULT_SWITCHOVER_TIMEOUT_MS,
    )
    .option('--json', 'print the result as JSON')
    .action(async (opts: SwitchoverOptions) => {
      const path = resolveControlPath(opts);
      const r = (await controlRequest(path, 'switchover', { timeoutMs: opts.timeout }, switchoverRequestTimeoutMs(opts.timeout))) as SwitchoverResult;
      if (opts.json) ctx.io.stdout(JSON.stringify(r, null, 2) + '\n');
      if (!r.ok) {
        const serving = r.outcome === 'aborted' ? '; the primary serves on' : '';
        ctx.io.stderr(`understudy: switchover ${r.outcome}: ${r.reason}${serving}\n`);
        ctx.exitCode = EXIT_FAILURE;
        return;
      }
      if (!opts.json) ctx.io.stdout(formatSwitchover(r));
      ctx.exitCode = EXIT_OK;
    });
}

export function formatSwitchover(r: Extract<SwitchoverResult, { ok: true }>): string {
  const takeover = r.takeoverMs === null ? 'its reply was lost' : `takeover ${r.takeoverMs} ms`;
  return `switched over: new primary ${r.newPrimary.nodeId} (${r.newPrimary.address}), epoch ${r.epoch}\nstall ${r.stallMs} ms (drain ${r.drainMs} ms, ${takeover})\n`;
}
