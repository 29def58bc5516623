// `understudy demo`: the failover demonstration (src/demo/run-demo.ts) on a lab it builds itself.
// Exit 0 only if the client did not notice the primary's death.

import { InvalidArgumentError, type Command } from 'commander';
import type { CommandContext } from './program.js';

export const MAX_DEMO_MIB = 4096;

export function parseSizeMiB(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > MAX_DEMO_MIB) {
    throw new InvalidArgumentError(`Expected MiB as an integer in 1..${MAX_DEMO_MIB}.`);
  }
  return Number(text);
}

export function registerDemoCommand(program: Command, ctx: CommandContext): void {
  program
    .command('demo')
    .description('show a failover: a lab, a primary and a backup, curl downloading while the primary is SIGKILLed; report, capture and timeline (needs root)')
    .option('--size <MiB>', 'size of the file curl downloads (default 256)', parseSizeMiB)
    .option('--keep', 'leave the lab, its processes and the served file in place afterwards')
    .option('--out <dir>', 'where to write the report, capture, timeline and logs (default ./understudy-demo-<time>)')
    .action(async (o: { size?: number; keep?: boolean; out?: string }) => {
      // Loaded on use: the demo pulls in the lab, which --help and the other commands never need.
      const { runDemo, DEFAULT_SIZE_MIB } = await import('../demo/run-demo.js');
      ctx.exitCode = await runDemo({ sizeMiB: o.size ?? DEFAULT_SIZE_MIB, keep: o.keep === true, outDir: o.out }, ctx.io);
    });
}
