// The life of one node: bring the VIP up (tun, stack, listener, route, proxy ARP, gratuitous ARP),
// serve until told to stop, then take it all down in an order that lets open connections be torn
// down while their packets still have a path. Everything with a side effect on the host comes in
// through NodeDeps, so this runs in unit tests over an in-memory link with no root. The tun is
// wrapped in a FaultLink (no faults until an operator asks for some) and the node answers on its
// control socket and, when asked, a Prometheus endpoint.

import type { EventEmitter } from 'node:events';
import type { Host } from '../stack/host-api.js';
import { FaultLink } from '../tun/fault-link.js';
import type { Link } from '../tun/link.js';
import { startControlServer, type ControlServer } from '../control/server.js';
import type { FaultLogEntry } from '../control/status.js';
import { createNodeMetrics } from '../metrics/registry.js';
import { startMetricsServer, type MetricsServer } from '../metrics/server.js';
import { createService, type ServiceSpec } from '../services/spec.js';
import type { Service, ServiceSocket } from '../services/service.js';
import { trackConnection, type ConnectionStats } from './connection-log.js';
import type { Logger } from './log.js';
import { createControlHandlers, type ProcessFaults } from './node-control.js';
import { buildStatus, type NodeView } from './node-status.js';
import type { Stack } from '../stack/stack.js';
import type { TcpEnv } from '../stack/tcp/api.js';
import { ReplicatedNode, type ReplicationConfig, type SharedStackOptions, type VipControl } from '../replication/node/replicated-node.js';

export interface NodeConfig {
  vip: string;
  port: number;
  service: ServiceSpec;
  /** Tun interface name; may contain %d. */
  tun: string;
  /** LAN interface to answer ARP for the VIP on; none when the VIP is routed some other way. */
  lan?: string | undefined;
  mtu: number;
  /**
   * Control socket path, or a function of the tun's real name (known only once it is open).
   * None: no control socket (unit tests that do not need one).
   */
  control?: string | ((tunName: string) => string) | undefined;
  /** Serve Prometheus metrics here. */
  metrics?: { host: string; port: number } | undefined;
  /** Half-open connections per listener before SYN cookies; the stack's default when absent. */
  synBacklog?: number | undefined;
  /** Primary or backup of a replicated pair; none: a standalone node. */
  replication?: ReplicationConfig | undefined;
}

export interface NodeTun extends Link {
  readonly name: string;
  onError?(handler: (err: Error) => void): void;
  readonly closed?: Promise<void>;
  readonly stats: Link['stats'] & { rxNonIpv4?: number; txErrors?: number };
}

export interface NodeServer extends EventEmitter {
  listen(port: number, host: string, backlog: number, cb: () => void): unknown;
  close(cb?: (err?: Error) => void): unknown;
}

export interface NodeStack {
  createServer(onConnection: (socket: ServiceSocket) => void): NodeServer;
  close(): unknown;
  /** The sans-IO host, for status (counters, connections); fakes may leave it out. */
  readonly host?: Host;
}

export interface NodeNetwork {
  openTun(opts: { name: string; mtu: number }): Promise<NodeTun>;
  addRoute(vip: string, dev: string): Promise<void>;
  removeRoute(vip: string, dev: string): Promise<void>;
  enableProxyArp(vip: string, lan: string): Promise<void>;
  disableProxyArp(vip: string, lan: string): Promise<void>;
  sendGratuitousArp(vip: string, lan: string, count: number): Promise<void>;
}

export interface NodeDeps {
  network: NodeNetwork;
  createStack(opts: { link: Link; addresses: string[]; synBacklog?: number; wrapEnv?: (env: TcpEnv) => TcpEnv } & Partial<SharedStackOptions>): NodeStack;
  log: Logger;
  /** Defaults to createService; tests pass instrumented services. */
  createService?: (spec: ServiceSpec) => Service;
  /** What the crash and hang faults do; tests replace the real SIGKILL and busy loop. */
  processFaults?: ProcessFaults;
}

export interface NodeHandle {
  /** Brings the node up; rejects with NodeStartError after undoing what it had set up. */
  start(): Promise<RunningNode>;
  /** The tun's real name once it is open. */
  readonly tunName: string | undefined;
  readonly connections: Readonly<ConnectionStats>;
  /** The control socket path once it listens. */
  readonly controlPath: string | undefined;
  /** host:port of the metrics endpoint once it listens. */
  readonly metricsAddress: string | undefined;
  /** The fault-injecting wrapper of the tun, once it is open. */
  readonly clientLink: FaultLink | undefined;
  /** True once stop() was called (by anyone, at any point, also during start()). */
  readonly stopRequested: boolean;
  /** Stops the node (idempotent); resolves with the exit code: 0 when teardown was clean. */
  stop(reason: string, fatal?: boolean): Promise<number>;
  /** Resolves with the exit code once the node has stopped for any reason. */
  readonly stopped: Promise<number>;
}

/** A node that has come up: its tun is open, so the name is known. */
export interface RunningNode extends NodeHandle {
  readonly tunName: string;
}

/** Thrown for startup failures, with a message fit for one line on the terminal. */
export class NodeStartError extends Error {
  override readonly name = 'NodeStartError';
  constructor(
    message: string,
    /** Startup ended because stop() was called meanwhile (e.g. a signal), not because a step failed. */
    readonly interrupted = false,
  ) {
    super(message);
  }
}

const LISTEN_BACKLOG = 511;
const GRATUITOUS_ARP_COUNT = 3;

/** createNode(...).start(), for callers that need no handle before the node is up. */
export function startNode(config: NodeConfig, deps: NodeDeps): Promise<RunningNode> {
  return createNode(config, deps).start();
}

/**
 * A node that can be stopped at any moment, including while start() is still awaiting a step:
 * signal handlers get the handle before anything touches the host.
 */
export function createNode(config: NodeConfig, deps: NodeDeps): NodeHandle {
  const { network, log } = deps;
  const stats: ConnectionStats = { open: 0, total: 0 };
  // What has been set up so far: stop() undoes exactly these, also after a failed startup.
  let service: Service | undefined;
  let tun: NodeTun | undefined;
  let stack: NodeStack | undefined;
  let server: NodeServer | undefined;
  let routed = false;
  let proxyArp = false;
  let clientLink: FaultLink | undefined;
  let control: ControlServer | undefined;
  let metrics: MetricsServer | undefined;
  let replicated: ReplicatedNode | undefined;
  const faultLog: FaultLogEntry[] = [];
  let startedAt = new Date();

  let stopping: Promise<number> | undefined;
  let resolveStopped!: (code: number) => void;
  const stopped = new Promise<number>((r) => (resolveStopped = r));

  const step = async (what: string, fn: () => unknown): Promise<boolean> => {
    try {
      await fn();
      return true;
    } catch (err) {
      log.error('node.teardown-failed', { step: what, message: errorMessage(err) });
      return false;
    }
  };

  // The startup step being awaited: stop() lets it finish first, so that what it sets up (a route
  // added a moment after the signal) is seen and undone instead of leaked.
  let inFlight: Promise<unknown> = Promise.resolve();
  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight = p.catch(() => undefined);
    return p;
  };

  const stop = (reason: string, fatal = false): Promise<number> => {
    stopping ??= (async () => {
      await inFlight;
      log.info('node.stopping', { reason, open: stats.open });
      let ok = true;
      // First, so that no takeover starts while the node comes down.
      if (replicated !== undefined) ok = (await step('stop replication', () => replicated?.close())) && ok;
      const s = server;
      // Only the listener: net-like close() would wait for open connections, which the service
      // tears down next.
      if (s !== undefined) ok = (await step('close listener', () => void s.close())) && ok;
      if (service !== undefined) ok = (await step('close connections', () => service?.close())) && ok;
      if (proxyArp && config.lan !== undefined) {
        const lan = config.lan;
        ok = (await step('remove proxy ARP', () => network.disableProxyArp(config.vip, lan))) && ok;
      }
      if (routed && tun !== undefined) {
        const dev = tun.name;
        ok = (await step('remove route', () => network.removeRoute(config.vip, dev))) && ok;
      }
      if (stack !== undefined) ok = (await step('close stack', () => stack?.close())) && ok;
      if (tun !== undefined) {
        const t = tun;
        ok = (await step('close tun', async () => {
          t.close();
          await t.closed;
        })) && ok;
      }
      // Last, so that status answers while the node winds down.
      if (metrics !== undefined) ok = (await step('close metrics endpoint', () => metrics?.close())) && ok;
      if (control !== undefined) ok = (await step('remove control socket', () => control?.close())) && ok;
      const code = ok && !fatal ? 0 : 1;
      log.info('node.stopped', { reason, exit: code, served: stats.total });
      resolveStopped(code);
      return code;
    })();
    return stopping;
  };

  const fail = async (what: string, err: unknown): Promise<never> => {
    // A step that fails because a concurrent stop() tore things down is part of that stop.
    const interrupted = stopping !== undefined;
    await stop(`startup failed: ${what === '' ? errorMessage(err) : what}`, true);
    // An empty `what`: the error's own message already says what failed.
    throw new NodeStartError(what === '' ? errorMessage(err) : `${what}: ${errorMessage(err)}`, interrupted);
  };
  // A fatal tun error can stop the node while startup awaits; adding state after the teardown ran
  // would leak it, so each step first checks.
  const stillStarting = async (): Promise<void> => {
    if (stopping !== undefined) throw new NodeStartError(`stopped during startup (exit ${await stopping})`, true);
  };

  const handle: NodeHandle = {
    start,
    get tunName() {
      return tun?.name;
    },
    connections: stats,
    get controlPath() {
      return control?.path;
    },
    get metricsAddress() {
      return metrics?.address;
    },
    get clientLink() {
      return clientLink;
    },
    get stopRequested() {
      return stopping !== undefined;
    },
    stop,
    stopped,
  };
  return handle;

  async function start(): Promise<RunningNode> {
    startedAt = new Date();
    log.info('node.starting', { vip: config.vip, port: config.port, service: describeSpec(config.service), tun: config.tun, lan: config.lan, mtu: config.mtu });
    try {
      service = (deps.createService ?? createService)(config.service);
    } catch (err) {
      return fail('cannot start the service', err);
    }
    try {
      // Assigned inside the tracked promise so a concurrent stop() sees the open tun.
      await track(network.openTun({ name: config.tun, mtu: config.mtu }).then((t) => (tun = t)));
    } catch (err) {
      return fail(`cannot open tun device "${config.tun}"`, err);
    }
    const openTun = tun as NodeTun | undefined;
    if (openTun === undefined) return fail(`cannot open tun device "${config.tun}"`, new Error('no device'));
    const tunName = openTun.name;
    openTun.onError?.((err) => {
      log.error('node.fatal', { reason: `tun device ${tunName} failed`, message: err.message });
      void stop(`tun device failed: ${err.message}`, true);
    });
    const link = new FaultLink(openTun, { seed: process.pid });
    clientLink = link;
    // Replication sits between the stack and the fault link: its output gate holds packets until
    // the backup has what they depend on, and its tap observes every connection the stack creates.
    let stackLink: Link = link;
    if (config.replication !== undefined) {
      replicated = new ReplicatedNode(config.replication, log);
      stackLink = replicated.wrapLink(link);
    }
    const rn = replicated;
    const view = (): NodeView => ({
      vip: config.vip,
      port: config.port,
      service: describeSpec(config.service),
      tun: tunName,
      lan: config.lan ?? null,
      control: control?.path ?? '',
      metrics: metrics?.address ?? null,
      startedAt,
      host: stack?.host,
      clientLink: link,
      deviceStats: openTun.stats,
      connections: stats,
      faultLog,
      replication: replicated === undefined ? undefined : () => (replicated as ReplicatedNode).status(),
      switchover: replicated === undefined ? undefined : (ms: number) => (replicated as ReplicatedNode).switchover(ms),
      replicationLink: replicated === undefined ? undefined : () => (replicated as ReplicatedNode).linkView(),
    });
    if (config.control !== undefined) {
      const path = typeof config.control === 'string' ? config.control : config.control(tunName);
      await stillStarting();
      try {
        await track(
          startControlServer({
            path,
            handlers: createControlHandlers(view, faultLog, log, deps.processFaults),
            onProblem: (what, detail) => log.warn(what, { detail }),
          }).then((c) => {
            control = c;
            if (c.replacedStale) log.warn('control.stale-replaced', { path, note: 'a previous node died without removing its control socket' });
          }),
        );
      } catch (err) {
        return fail('', err);
      }
    }
    await stillStarting();
    try {
      stack = deps.createStack({
        link: stackLink,
        addresses: [config.vip],
        ...(config.synBacklog === undefined ? {} : { synBacklog: config.synBacklog }),
        ...(rn === undefined ? {} : { wrapEnv: (env: TcpEnv) => rn.wrapEnv(env), ...rn.sharedStackOptions() }),
      });
      const svc = service;
      server = stack.createServer((socket) => {
        trackConnection(socket, log, stats);
        svc.onConnection(socket);
      });
      await track(listen(server, config.port, config.vip));
    } catch (err) {
      return fail(`cannot listen on ${config.vip}:${config.port}`, err);
    }
    server.on('error', (err: Error) => log.error('server.error', { message: err.message }));
    if (rn !== undefined) {
      const real = stack as Partial<Stack>;
      if (typeof real.adoptConnection !== 'function') return fail('replication needs the real stack', new Error('no adoptConnection'));
      const vip: VipControl = {
        addRoute: () => network.addRoute(config.vip, tunName).then(() => void (routed = true)),
        enableProxyArp: async () => {
          if (config.lan === undefined) return false;
          await network.enableProxyArp(config.vip, config.lan);
          proxyArp = true;
          return true;
        },
        gratuitousArp: (count) => (config.lan === undefined ? Promise.resolve() : network.sendGratuitousArp(config.vip, config.lan, count)),
        releaseVip: async () => {
          if (proxyArp && config.lan !== undefined) await network.disableProxyArp(config.vip, config.lan);
          proxyArp = false;
          if (routed) await network.removeRoute(config.vip, tunName);
          routed = false;
        },
        adopted: (socket) => trackConnection(socket, log, stats, undefined, { openLine: false }),
      };
      await stillStarting();
      try {
        await track(rn.start(real as Stack, service, vip));
      } catch (err) {
        return fail('cannot start replication', err);
      }
    }
    // A backup holds no route and answers no ARP for the VIP until it takes over.
    const passive = config.replication?.role === 'backup';
    if (passive && config.lan !== undefined) {
      // A node that crashed here while it served the VIP (SIGKILL: no cleanup) left its proxy ARP
      // entry behind; restarted as a backup it must not keep answering for the VIP, or the
      // clients' next ARP probe may pull their packets away from the node that serves it.
      try {
        await track(network.disableProxyArp(config.vip, config.lan));
      } catch (err) {
        log.warn('arp.stale-proxy-not-removed', { lan: config.lan, message: errorMessage(err) });
      }
    }
    // The route goes in only once the listener exists, so the first SYN finds it.
    await stillStarting();
    if (!passive) {
      try {
        await track(network.addRoute(config.vip, tunName).then(() => (routed = true)));
      } catch (err) {
        return fail(`cannot route ${config.vip} into ${tunName}`, err);
      }
      if (config.lan !== undefined) {
        await stillStarting();
        try {
          await track(network.enableProxyArp(config.vip, config.lan).then(() => (proxyArp = true)));
        } catch (err) {
          return fail(`cannot answer ARP for ${config.vip} on ${config.lan}`, err);
        }
        try {
          await track(network.sendGratuitousArp(config.vip, config.lan, GRATUITOUS_ARP_COUNT));
        } catch (err) {
          // Neighbours will still learn the VIP from proxy ARP replies; only their stale entries linger.
          log.warn('arp.gratuitous-failed', { lan: config.lan, message: errorMessage(err) });
        }
      }
    }
    if (config.metrics !== undefined) {
      const { host, port } = config.metrics;
      await stillStarting();
      try {
        const m = createNodeMetrics(() => buildStatus(view()));
        await track(startMetricsServer(m, host, port).then((s) => (metrics = s)));
      } catch (err) {
        return fail('', err);
      }
    }
    await stillStarting();
    log.info('node.ready', { vip: config.vip, port: config.port, tun: tunName, lan: config.lan, control: control?.path, metrics: metrics?.address, role: config.replication?.role ?? 'standalone' });

    // tunName is known from here on: the getter reads the open tun.
    return handle as RunningNode;
  }
}

function listen(server: NodeServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, LISTEN_BACKLOG, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

export function describeSpec(spec: ServiceSpec): string {
  return spec.kind === 'http-static' ? `http-static:${spec.dir}` : spec.kind;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
