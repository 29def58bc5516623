// `understudy fault <kind>`: injects a fault into a running node through its control socket, and
// `fault clear` / `fault list`. Arguments are checked here (usage error, exit 2) and again by the
// node; a node that cannot apply a fault (no replication link) answers with an error (exit 1).

import { Option, type Command } from 'commander';
import { controlRequest } from '../control/client.js';
import { describeFault, FAULT_DIRECTIONS, FAULT_LINKS, MAX_DELAY_MS, MAX_HANG_MS, parseFaultRequest, PERCENT_FAULTS, type FaultRequest } from '../control/fault.js';
import type { FaultListResult, FaultReply } from './node-control.js';
import { addControlOptions, type ControlOptions } from './control-options.js';
import { resolveControlPath } from './control-path.js';
import { parseMillis, parsePercent } from './options.js';
import type { CommandContext } from './program.js';
import { formatFaultLog, formatLink } from './status-format.js';
import { EXIT_OK, UsageError } from './usage-error.js';

interface LinkFaultOptions extends ControlOptions {
  link?: string;
  direction?: string;
  jitter?: number;
}

// On the replication link (a TCP stream) the unit is a replication message, and loss stalls the
// stream for a retransmission timeout instead of dropping (src/replication/message-faults.ts).
const PERCENT_HELP: Record<(typeof PERCENT_FAULTS)[number], string> = {
  loss: 'drop pct% of packets (replication link: stall the stream 200 ms per lost message)',
  duplicate: 'send pct% of packets (or replication messages) twice',
  reorder: 'hold pct% of packets (or replication messages) back behind the next one',
  corrupt: 'flip one byte in pct% of packets (or replication messages)',
};

export function registerFaultCommand(program: Command, ctx: CommandContext): void {
  const fault = program
    .command('fault')
    .description('inject a fault into a running node (see `fault --help`)')
    .argument('[kind]')
    // Reached only without a known kind: one usage line instead of the help text.
    .action((kind: string | undefined) => {
      const kinds = fault.commands.map((c) => c.name()).filter((n) => n !== 'help');
      throw new UsageError(kind === undefined ? `fault: missing kind (${kinds.join(', ')})` : `fault: unknown kind '${kind}' (${kinds.join(', ')})`);
    });

  const send = async (opts: ControlOptions, request: Record<string, unknown>): Promise<void> => {
    const parsed = parseFaultRequest(request);
    if (!parsed.ok) throw new UsageError(parsed.message);
    const reply = (await controlRequest(resolveControlPath(opts), 'fault', { ...parsed.request })) as FaultReply;
    ctx.io.stdout(`applied: ${reply.applied}${explain(parsed.request)}\n`);
    if (reply.note !== undefined) ctx.io.stdout(`note: ${reply.note}\n`);
    ctx.exitCode = EXIT_OK;
  };

  const linkOptions = (cmd: Command): Command =>
    addControlOptions(cmd)
      .addOption(new Option('--link <link>', 'which link').choices([...FAULT_LINKS]).default('client'))
      .addOption(new Option('--direction <dir>', 'packets arriving (in), leaving (out), or both').choices([...FAULT_DIRECTIONS]).default('both'));

  addControlOptions(fault.command('crash').description('the node exits at once with no cleanup, as with SIGKILL')).action(async (o: ControlOptions) => {
    await send(o, { kind: 'crash' });
  });
  addControlOptions(fault.command('hang').description('the node stops processing anything for ms milliseconds').argument('<ms>', `1..${MAX_HANG_MS}`, parseMillis(1, MAX_HANG_MS))).action(
    async (ms: number, o: ControlOptions) => {
      await send(o, { kind: 'hang', ms });
    },
  );
  for (const kind of PERCENT_FAULTS) {
    linkOptions(fault.command(kind).description(PERCENT_HELP[kind]).argument('<pct>', 'percentage 0..100', parsePercent)).action(async (pct: number, o: LinkFaultOptions) => {
      await send(o, { kind, pct, link: o.link, direction: o.direction });
    });
  }
  linkOptions(
    fault
      .command('delay')
      .description('delay packets by ms milliseconds, each plus or minus up to --jitter')
      .argument('<ms>', `0..${MAX_DELAY_MS}`, parseMillis(0, MAX_DELAY_MS))
      .option('--jitter <ms>', 'uniform jitter around the delay', parseMillis(0, MAX_DELAY_MS)),
  ).action(async (ms: number, o: LinkFaultOptions) => {
    await send(o, { kind: 'delay', ms, jitterMs: o.jitter ?? 0, link: o.link, direction: o.direction });
  });
  addControlOptions(fault.command('partition').description('nothing passes either way until `fault clear` (client packets are dropped, replication messages wait)'))
    .addOption(new Option('--link <link>', 'which link').choices([...FAULT_LINKS, 'both']).default('client'))
    .action(async (o: LinkFaultOptions) => {
      await send(o, { kind: 'partition', link: o.link });
    });
  addControlOptions(fault.command('clear').description('remove the faults of one link, or of both (default)'))
    .addOption(new Option('--link <link>', 'which link').choices([...FAULT_LINKS, 'both']).default('both'))
    .action(async (o: LinkFaultOptions) => {
      const reply = (await controlRequest(resolveControlPath(o), 'fault.clear', { link: o.link })) as FaultReply;
      ctx.io.stdout(`applied: ${reply.applied}\n`);
      ctx.exitCode = EXIT_OK;
    });
  addControlOptions(fault.command('list').description('show the faults in force and what they did'))
    .option('--json', 'print stable machine-readable JSON')
    .action(async (o: ControlOptions & { json?: boolean }) => {
      const result = (await controlRequest(resolveControlPath(o), 'fault.list')) as FaultListResult;
      if (o.json) ctx.io.stdout(JSON.stringify(result, null, 2) + '\n');
      else ctx.io.stdout(formatFaultList(result));
      ctx.exitCode = EXIT_OK;
    });
}

function explain(f: FaultRequest): string {
  if (f.kind === 'crash') return ' (the node exits now, without cleanup)';
  if (f.kind === 'hang') return ` (the node stops processing for ${f.ms} ms)`;
  return '';
}

export function formatFaultList(r: FaultListResult): string {
  const lines = ['links', ...r.links.flatMap(formatLink)];
  lines.push('', 'faults applied');
  lines.push(...(r.faultLog.length === 0 ? ['  none'] : formatFaultLog(r.faultLog)));
  return lines.join('\n') + '\n';
}

export { describeFault };
