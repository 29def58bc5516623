// `understudy node`: serve one service on a VIP until SIGINT/SIGTERM. Options come from the
// command line and from --config; the command line wins. Replication options (--role,
// --replication, --peer, --key-file) slot in beside these with their own validators.

import { existsSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { ServiceSpec } from '../services/spec.js';
import { ConfigFileError, readConfigFile, type NodeFileConfig } from './config-file.js';
import { defaultControlPath } from './control-path.js';
import { tuneHeapGrowth } from './heap-tuning.js';
import { createLogger, type LogFormat, type Logger, type LogLevel } from './log.js';
import type { NodeConfig, NodeDeps, NodeHandle } from './node-runner.js';
import {
  parseHostPort,
  parseInterfaceName,
  parseIpv4,
  parseLogFormat,
  parseMillis,
  parseLogLevel,
  parseMtu,
  parsePort,
  parseService,
  parseSynBacklog,
  parseTunName,
  type HostPort,
} from './options.js';
import type { CommandContext } from './program.js';
import { EXIT_FAILURE, UsageError } from './usage-error.js';

export interface NodeCommandOptions {
  vip: string;
  port: number;
  service: ServiceSpec;
  tun: string;
  lan?: string | undefined;
  mtu: number;
  logLevel: LogLevel;
  /** Default json. */
  logFormat?: LogFormat | undefined;
  /** Default /run/understudy/<tun name>.sock. */
  control?: string | undefined;
  metrics?: HostPort | undefined;
  /** Half-open connections per listener before SYN cookies; the stack's default when absent. */
  synBacklog?: number | undefined;
  /** Replication (ARCHITECTURE.md 5): all of role, replication, peer and key file, or none. */
  role?: 'primary' | 'backup' | undefined;
  replication?: HostPort | undefined;
  peer?: HostPort | undefined;
  keyFile?: string | undefined;
  heartbeat?: number | undefined;
  deadAfter?: number | undefined;
  onTakeover?: string | undefined;
  /** How the service's output is logged: auto (digests of large writes for deterministic services) or bytes. */
  outputLog?: 'auto' | 'bytes' | undefined;
}

export const DEFAULT_HEARTBEAT_MS = 50;
export const DEFAULT_DEAD_AFTER_MS = 300;

function parseRole(text: string): 'primary' | 'backup' {
  if (text !== 'primary' && text !== 'backup') throw new InvalidArgumentError('Expected primary or backup.');
  return text;
}

export const DEFAULT_TUN_NAME = 'understudy%d';
const DEFAULTS = { tun: DEFAULT_TUN_NAME, mtu: 1500, logLevel: 'info' as LogLevel, logFormat: 'json' as LogFormat };

/** What commander hands the action: anything may be missing until the config file is merged in. */
interface RawNodeOptions extends Partial<NodeCommandOptions> {
  config?: string;
}

/** Option attribute name (commander's camelCase) for each config file key. */
const FILE_KEY: Record<keyof NodeFileConfig, keyof NodeCommandOptions> = {
  vip: 'vip',
  port: 'port',
  service: 'service',
  tun: 'tun',
  lan: 'lan',
  mtu: 'mtu',
  'log-level': 'logLevel',
  'log-format': 'logFormat',
  control: 'control',
  metrics: 'metrics',
};

export function registerNodeCommand(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('node')
    .description('serve a service on a virtual IP routed into a TUN device (runs until SIGINT/SIGTERM)')
    .option('--config <path>', 'read options from a YAML or JSON file (command-line options override it)')
    .option('--vip <ipv4>', 'virtual IPv4 address to serve (required)', parseIpv4)
    .option('--port <n>', 'TCP port to listen on (1-65535, required)', parsePort)
    .option('--service <spec>', 'echo | discard | http-static:<dir> | proxy:<host:port> | module:<path> (required)', parseService)
    .option('--tun <name>', `TUN device name (%d: kernel picks a number; default ${DEFAULT_TUN_NAME})`, parseTunName)
    .option('--lan <iface>', 'answer ARP for the VIP on this LAN interface (proxy ARP + gratuitous ARP)', parseInterfaceName)
    .option('--mtu <n>', 'TUN MTU (576-65535, default 1500)', parseMtu)
    .option('--control <path>', 'control socket (default /run/understudy/<tun name>.sock)')
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://<host:port>/metrics', parseHostPort)
    .option('--syn-backlog <n>', 'half-open connections per listener before SYN cookies answer (default 256)', parseSynBacklog)
    .addOption(new Option('--log-level <level>', 'debug | info | warn | error (default info)').argParser(parseLogLevel))
    .addOption(new Option('--log-format <format>', 'json (structured, default) | pretty (one readable line)').argParser(parseLogFormat))
    .addOption(new Option('--role <role>', 'replication role: primary | backup (with --replication, --peer, --key-file)').argParser(parseRole))
    .option('--replication <host:port>', "this node's replication address (the primary listens here; LAN heartbeats arrive on its UDP port)", parseHostPort)
    .option('--peer <host:port>', "the other node's replication address (the backup dials it)", parseHostPort)
    .option('--key-file <path>', 'shared replication key (at least 32 bytes, e.g. `openssl rand -hex 32`)')
    .option('--heartbeat <ms>', `heartbeat interval (default ${DEFAULT_HEARTBEAT_MS})`, parseMillis(5, 10_000))
    .option('--dead-after <ms>', `silence on every path after which the backup takes over (default ${DEFAULT_DEAD_AFTER_MS})`, parseMillis(20, 60_000))
    .addOption(
      new Option('--output-log <mode>', 'auto: large writes of echo/discard/http-static go into the log as digests the backup checks; bytes: every byte (default auto)').choices(['auto', 'bytes']),
    )
    .option('--on-takeover <cmd>', 'shell command run at takeover (routed setups), with UNDERSTUDY_VIP and UNDERSTUDY_EPOCH set');
  cmd.action(async (raw: RawNodeOptions) => {
    ctx.exitCode = await runNodeCommand(mergeNodeOptions(raw), ctx);
  });
}

/**
 * Command line over config file over defaults. Commander sets only what was given (no defaults
 * are declared there), so every set value came from the command line.
 */
export function mergeNodeOptions(raw: RawNodeOptions, readFile: (path: string) => NodeFileConfig = readConfigFile): NodeCommandOptions {
  let file: NodeFileConfig = {};
  if (raw.config !== undefined) {
    try {
      file = readFile(raw.config);
    } catch (err) {
      if (err instanceof ConfigFileError) throw new UsageError(err.message);
      throw err;
    }
  }
  const merged: Record<string, unknown> = { ...DEFAULTS };
  for (const [key, attr] of Object.entries(FILE_KEY)) {
    const v = file[key as keyof NodeFileConfig];
    if (v !== undefined) merged[attr] = v;
  }
  for (const [attr, v] of Object.entries(raw)) if (v !== undefined && attr !== 'config') merged[attr] = v;
  for (const [attr, flag] of [['vip', '--vip <ipv4>'], ['port', '--port <n>'], ['service', '--service <spec>']] as const) {
    if (merged[attr] === undefined) throw new UsageError(`required option '${flag}' not specified (on the command line or in --config)`);
  }
  return merged as unknown as NodeCommandOptions;
}

export async function runNodeCommand(opts: NodeCommandOptions, ctx: CommandContext, deps?: NodeDeps): Promise<number> {
  if (opts.lan !== undefined && !interfaceExists(opts.lan)) throw new UsageError(`--lan: no network interface named "${opts.lan}"`);
  const replicationGiven = [opts.role, opts.replication, opts.peer, opts.keyFile].filter((v) => v !== undefined).length;
  if (replicationGiven > 0 && replicationGiven < 4) throw new UsageError('replication needs all of --role, --replication, --peer and --key-file');
  for (const [v, flag] of [[opts.heartbeat, '--heartbeat'], [opts.deadAfter, '--dead-after'], [opts.onTakeover, '--on-takeover'], [opts.outputLog, '--output-log']] as const) {
    if (v !== undefined && replicationGiven === 0) throw new UsageError(`${flag} needs --role (replication)`);
  }
  const heartbeatMs = opts.heartbeat ?? DEFAULT_HEARTBEAT_MS;
  const deadAfterMs = opts.deadAfter ?? DEFAULT_DEAD_AFTER_MS;
  if (replicationGiven > 0 && deadAfterMs < 2 * heartbeatMs) throw new UsageError(`--dead-after (${deadAfterMs} ms) must be at least twice --heartbeat (${heartbeatMs} ms)`);
  let replication: NodeConfig['replication'];
  if (replicationGiven === 4) {
    const { loadKeyFile } = await import('../replication/auth.js');
    let key;
    try {
      key = await loadKeyFile(opts.keyFile as string);
    } catch (err) {
      ctx.io.stderr(`understudy: ${err instanceof Error ? err.message : String(err)}\n`);
      return EXIT_FAILURE;
    }
    replication = {
      role: opts.role as 'primary' | 'backup',
      listen: opts.replication as HostPort,
      peer: opts.peer as HostPort,
      key,
      heartbeatMs,
      deadAfterMs,
      lan: opts.lan,
      onTakeover: opts.onTakeover,
      vip: opts.vip,
      outputLog: opts.outputLog ?? 'auto',
    };
  }
  const config: NodeConfig = {
    vip: opts.vip,
    port: opts.port,
    service: opts.service,
    tun: opts.tun,
    lan: opts.lan,
    mtu: opts.mtu,
    control: opts.control ?? ((tunName: string) => defaultControlPath(tunName)),
    metrics: opts.metrics,
    synBacklog: opts.synBacklog,
    replication,
  };
  const log = deps?.log ?? createLogger({ level: opts.logLevel, format: opts.logFormat, write: (line) => ctx.io.stderr(line + '\n') });
  // Loaded here, not at the top, so that --help and argument errors never load the FFI layer.
  const { createNode, NodeStartError } = await import('./node-runner.js');
  const realDeps = deps ?? (await import('./node-deps.js')).createNodeDeps(log);
  // A real node process (not a test driving the command with its own deps): see heap-tuning.ts.
  if (deps === undefined) tuneHeapGrowth();

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
