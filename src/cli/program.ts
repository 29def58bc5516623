// The `understudy` command line: commander, with every error reduced to one line and mapped to
// an exit code (2 for usage, 1 for a node that failed). Commands live in their own modules and
// register themselves here.

import { Command, CommanderError } from 'commander';
import { registerDemoCommand } from './demo-command.js';
import { registerFaultCommand } from './fault-command.js';
import { registerNodeCommand } from './node-command.js';
import { registerStatusCommand } from './status-command.js';
import { registerSwitchoverCommand } from './switchover-command.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './usage-error.js';

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

export const processIo: CliIo = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
};

/** Shared by the commands: where they report results and how they say a run ended. */
export interface CommandContext {
  io: CliIo;
  /** Set by a command's action to the process exit code. */
  exitCode: number;
}

export function buildProgram(ctx: CommandContext): Command {
  const program = new Command('understudy')
    .description('A userspace TCP/IPv4 stack serving a virtual IP through a TUN device')
    .version(process.env['npm_package_version'] ?? '0.1.0', '-V, --version')
    .showHelpAfterError(false)
    .configureOutput({
      writeOut: (s) => ctx.io.stdout(s),
      writeErr: (s) => ctx.io.stderr(s),
      outputError: (s, write) => write(oneLine(s)),
    })
    .exitOverride();
  registerNodeCommand(program, ctx);
  registerStatusCommand(program, ctx);
  registerFaultCommand(program, ctx);
  registerSwitchoverCommand(program, ctx);
  registerDemoCommand(program, ctx);
  // Subcommands (and theirs: `fault loss`) inherit neither exitOverride nor output settings.
  const configure = (parent: Command): void => {
    for (const cmd of parent.commands) {
      cmd.exitOverride().configureOutput({
        writeOut: (s) => ctx.io.stdout(s),
        writeErr: (s) => ctx.io.stderr(s),
        outputError: (s, write) => write(oneLine(s)),
      });
      configure(cmd);
    }
  };
  configure(program);
  return program;
}

/** Runs the command line (without "node" and the script) and resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const ctx: CommandContext = { io, exitCode: EXIT_OK };
  const program = buildProgram(ctx);
  if (argv.length === 0) {
    io.stderr(program.helpInformation());
    return EXIT_USAGE;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
        return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
      }
      return EXIT_USAGE;
    }
    if (err instanceof UsageError) {
      io.stderr(`understudy: ${err.message}\n`);
      return EXIT_USAGE;
    }
    io.stderr(`understudy: ${err instanceof Error ? err.message : String(err)}\n`.replace(/\n(?!$)/g, ' '));
    return EXIT_FAILURE;
  }
}

/** "error: x\n(Did you mean y?)\n" -> "understudy: x (Did you mean y?)\n". */
export function oneLine(message: string): string {
  const text = message
    .replace(/^error:\s*/i, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join(' ');
  return `understudy: ${text}\n`;
}
