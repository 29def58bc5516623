// `understudy node`: serve one service on a VIP until SIGINT/SIGTERM. Replication options
// (--role, --replication, --peer, --key-file) slot in beside these with their own validators.

import { existsSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { ServiceSpec } from '../services/spec.js';
import { createLogger, type Logger, type LogLevel } from './log.js';
import type { NodeConfig, NodeDeps, NodeHandle } from './node-runner.js';
import { parseInterfaceName, parseIpv4, parseLogLevel, parseMtu, parsePort, parseService, parseTunName } from './options.js';
import type { CommandContext } from './program.js';
import { EXIT_FAILURE, UsageError } from './usage-error.js';

export interface NodeCommandOptions {
  vip: string;
  port: number;
  service: ServiceSpec;
  tun: string;
  lan?: string;
  mtu: number;
  logLevel: LogLevel;
}

export const DEFAULT_TUN_NAME = 'understudy%d';

export function registerNodeCommand(program: Command, ctx: CommandContext): void {
  program
    .command('node')
    .description('serve a service on a virtual IP routed into a TUN device (runs until SIGINT/SIGTERM)')
    .requiredOption('--vip <ipv4>', 'virtual IPv4 address to serve', parseIpv4)
    .requiredOption('--port <n>', 'TCP port to listen on (1-65535)', parsePort)
    .requiredOption('--service <spec>', 'echo | discard | http-static:<dir>', parseService)
    .option('--tun <name>', 'TUN device name (%d: kernel picks a number)', parseTunName, DEFAULT_TUN_NAME)
    .option('--lan <iface>', 'answer ARP for the VIP on this LAN interface (proxy ARP + gratuitous ARP)', parseInterfaceName)
    .option('--mtu <n>', 'TUN MTU (576-65535)', parseMtu, 1500)
    .addOption(new Option('--log-level <level>', 'debug | info | warn | error').default('info').argParser(parseLogLevel))
    .action(async (opts: NodeCommandOptions) => {
      ctx.exitCode = await runNodeCommand(opts, ctx);
    });
}

export async function runNodeCommand(opts: NodeCommandOptions, ctx: CommandContext, deps?: NodeDeps): Promise<number> {
  if (opts.lan !== undefined && !interfaceExists(opts.lan)) throw new UsageError(`--lan: no network interface named "${opts.lan}"`);
  const config: NodeConfig = { vip: opts.vip, port: opts.port, service: opts.service, tun: opts.tun, lan: opts.lan, mtu: opts.mtu };
  const log = deps?.log ?? createLogger({ level: opts.logLevel, write: (line) => ctx.io.stderr(line + '\n') });
  // Loaded here, not at the top, so that --help and argument errors never load the FFI layer.
  const { createNode, NodeStartError } = await import('./node-runner.js');
  const realDeps = deps ?? (await import('./node-deps.js')).createNodeDeps(log);

  // Signals are caught from the start: one that arrives mid-startup must still lead to teardown
  // rather than kill the process with the route and proxy ARP entry in place.
  const node: NodeHandle = createNode(config, realDeps);
  const removeSignals = onStopSignals(log, (signal) => node.stop(signal));
  // A bug anywhere must not leave the route and proxy ARP entry pointing at a dead process.
  const onFatal = (err: unknown) => {
    log.error('node.fatal', { reason: 'uncaught error', message: err instanceof Error ? err.message : String(err) });
    if (err instanceof Error && err.stack !== undefined) log.debug('node.fatal-stack', { stack: err.stack });
    void node.stop('uncaught error', true);
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  try {
    try {
      await node.start();
    } catch (err) {
      if (!(err instanceof NodeStartError)) throw err;
      // Startup cut short by a signal is a requested stop: its exit code is the teardown's.
      if (!err.interrupted) {
        ctx.io.stderr(`understudy: ${err.message}\n`);
        return EXIT_FAILURE;
      }
    }
    return await node.stopped;
  } finally {
    removeSignals();
    process.off('uncaughtException', onFatal);
    process.off('unhandledRejection', onFatal);
  }
}

/** /proc/sys/net follows the caller's network namespace, unlike /sys/class/net. */
function interfaceExists(name: string): boolean {
  return existsSync(`/proc/sys/net/ipv4/conf/${name}`);
}

function onStopSignals(log: Logger, stop: (signal: string) => unknown): () => void {
  let received = 0;
  const handler = (signal: NodeJS.Signals) => {
    received++;
    if (received === 1) {
      void stop(signal);
      return;
    }
    // A second signal means the operator is done waiting for a clean teardown.
    log.error('node.fatal', { reason: `second ${signal} during shutdown, exiting without cleanup` });
    process.exit(EXIT_FAILURE);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
