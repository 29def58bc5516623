// One network stack on one link: the sans-IO host, the driver that owns time and I/O for it, and
// the net-like socket API on top (createServer, connect). This is what services and the CLI use.

import { createTcpEnv } from './env.js';
import { Driver, type Clock } from './driver.js';
import { createHost } from './host.js';
import type { Counters, Host, HostEvent, TcpListener } from './host-api.js';
import { Server, type ServerContext, type ServerOptions } from './server.js';
import { Socket, type SocketContext } from './socket.js';
import { defaultTcpConfig } from './tcp/config.js';
import type { Micros, TcpConfig, TcpConnection, TcpEnv } from './tcp/api.js';
import { ipv4FromString, ipv4ToString, type Ipv4Addr } from './wire/types.js';
import type { Link } from '../tun/link.js';

export type StackLogEvent =
  | { type: 'listen'; address: string; port: number }
  | { type: 'unlisten'; address: string; port: number }
  | { type: 'accept'; local: string; remote: string }
  | { type: 'connect'; local: string; remote: string }
  | { type: 'closed'; local: string; remote: string; error?: string };

export interface StackOptions {
  link: Link;
  /** Dotted-quad addresses the stack answers for (the VIPs). */
  addresses: string[];
  tcp?: Partial<TcpConfig>;
  /** Half-open connections per listener before SYN cookies; default 256. */
  synBacklog?: number;
  /** RFC 6528 ISN secret, shared by primary and backup. */
  isnKey?: Uint8Array;
  /** SYN-cookie secret and the offset from the clock to cookie time (HostConfig). */
  synCookieKey?: Uint8Array;
  synCookieClockOffsetUs?: Micros;
  /** Added to the millisecond clock for TSvals (TcpEnvOptions.tsOffset); random when omitted. */
  tsOffset?: number;
  /** Answer pings; default true. */
  icmpEcho?: boolean;
  log?: (event: StackLogEvent) => void;
  /** Microsecond clock; the monotonic real clock by default. */
  clock?: Clock;
  /** Random source for the TCP env (tests make it deterministic). */
  random?: () => number;
  /**
   * Wraps the TCP env every connection gets, e.g. replication's tap, which observes each new
   * connection through `onConnectionCreated`.
   */
  wrapEnv?: (env: TcpEnv) => TcpEnv;
}

export interface ConnectOptions {
  host: string;
  port: number;
  localAddress?: string;
  localPort?: number;
  allowHalfOpen?: boolean;
  /** Per-connection TCP settings (e.g. a smaller buffer). */
  tcp?: Partial<TcpConfig>;
}

export interface Stack {
  createServer(onConnection?: (s: Socket) => void): Server;
  createServer(opts: ServerOptions, onConnection?: (s: Socket) => void): Server;
  connect(opts: ConnectOptions, onConnect?: () => void): Socket;
  readonly counters: Counters;
  readonly connectionCount: number;
  /** The sans-IO host, for status and replication. */
  readonly host: Host;
  /** Closes servers and sockets, sends the last packets, stops the timer and closes the link. */
  close(): Promise<void>;
  /** The driver's clock (microseconds). */
  now(): Micros;
  /** The TCP settings connections of this host get (MSS already bounded by the MTU). */
  readonly tcpConfig: TcpConfig;
  /** The (wrapped) env connections of this host get. */
  readonly env: TcpEnv;
  /**
   * Takes over a connection built outside the listeners (a promoted shadow on a backup) and
   * returns its socket, open as if just accepted. Its pending output leaves on the next pass.
   * `quiet`: no `accept` log event (a takeover logs its connections itself, once their output left).
   */
  adoptConnection(conn: TcpConnection, opts?: { allowHalfOpen?: boolean; quiet?: boolean }): Socket;
  /** Schedules a driver pass soon: after calls made on the host's connections directly. */
  kick(): void;
}

const DEFAULT_SYN_BACKLOG = 256;

function parseAddress(s: string): Ipv4Addr {
  const a = ipv4FromString(s);
  if (a === undefined) throw new TypeError(`not an IPv4 address: ${s}`);
  return a;
}

class StackImpl implements Stack, SocketContext, ServerContext {
  readonly host: Host;
  private readonly driver: Driver;
  private readonly sockets = new Map<TcpConnection, Socket>();
  private readonly servers = new Map<TcpListener, Server>();
  private readonly log: ((event: StackLogEvent) => void) | undefined;
  private readonly link: Link;
  private closed = false;
  readonly env: TcpEnv;

  constructor(opts: StackOptions) {
    this.link = opts.link;
    this.log = opts.log;
    // Linux discards SYN+FIN at a listener (tcp_rcv_state_process); no real client sends one.
    const tcp: TcpConfig = { ...defaultTcpConfig(), dropSynFin: true, ...opts.tcp };
    const baseEnv = createTcpEnv({ isnKey: opts.isnKey, random: opts.random, challengeAckPerSecond: tcp.challengeAckPerSecond, tsOffset: opts.tsOffset });
    const env = opts.wrapEnv ? opts.wrapEnv(baseEnv) : baseEnv;
    this.env = env;
    // A link that completes TCP checksums (the TUN with virtio-net headers) saves us summing every
    // payload, and lets it merge our data segments into super-packets.
    const tcpChecksumOffload = opts.link.offload?.csum === true;
    this.host = createHost({
      addresses: opts.addresses.map(parseAddress),
      mtu: opts.link.mtu,
      tcp,
      env,
      synBacklog: opts.synBacklog ?? DEFAULT_SYN_BACKLOG,
      ...(opts.synCookieKey === undefined ? {} : { synCookieKey: opts.synCookieKey }),
      ...(opts.synCookieClockOffsetUs === undefined ? {} : { synCookieClockOffsetUs: opts.synCookieClockOffsetUs }),
      icmpEcho: opts.icmpEcho ?? true,
      tcpChecksumOffload,
    });
    this.driver = new Driver({
      host: this.host,
      link: opts.link,
      clock: opts.clock,
      onEvents: (evs) => this.onEvents(evs),
      tcpChecksumPartial: tcpChecksumOffload,
    });
  }

  get counters(): Counters {
    return this.host.counters;
  }

  get tcpConfig(): TcpConfig {
    return this.host.tcp ?? defaultTcpConfig();
  }

  adoptConnection(conn: TcpConnection, opts: { allowHalfOpen?: boolean; quiet?: boolean } = {}): Socket {
    if (this.closed) throw new Error('stack is closed');
    if (this.host.adoptConnection === undefined) throw new Error('this host cannot adopt connections');
    const hosted = this.host.adoptConnection(conn);
    const socket = new Socket(this, hosted, { allowHalfOpen: opts.allowHalfOpen });
    this.sockets.set(hosted, socket);
    this.updateRef();
    this.trackClose(socket);
    if (opts.quiet !== true) this.log?.({ type: 'accept', local: `${socket.localAddress}:${socket.localPort}`, remote: `${socket.remoteAddress}:${socket.remotePort}` });
    this.kick();
    return socket;
  }

  get connectionCount(): number {
    return this.host.connections.size;
  }

  // ---- SocketContext ----

  now(): number {
    return this.driver.now();
  }

  kick(): void {
    this.driver.kick();
  }

  release(conn: TcpConnection): void {
    this.sockets.delete(conn);
    this.updateRef();
  }

  /**
   * Like libuv handles: open sockets and listening servers keep the process alive (their timers
   * must fire), while an idle stack with only TIME-WAIT left does not.
   */
  private updateRef(): void {
    this.driver.setRef(this.sockets.size > 0 || this.servers.size > 0);
  }

  // ---- ServerContext ----

  listen(server: Server, addr: number, port: number, backlog: number): TcpListener {
    const l = this.host.listen(addr, port, backlog);
    this.servers.set(l, server);
    this.updateRef();
    this.log?.({ type: 'listen', address: ipv4ToString(addr), port });
    return l;
  }

  unlisten(_server: Server, l: TcpListener): void {
    this.servers.delete(l);
    this.updateRef();
    l.close(this.now());
    this.log?.({ type: 'unlisten', address: ipv4ToString(l.addr), port: l.port });
    this.kick();
  }

  freePort(addr: number): number {
    // Try the ephemeral range from a random point; listen() itself reports a clash.
    for (let i = 0; i < 1000; i++) {
      const port = 32768 + Math.floor(Math.random() * 28232);
      let taken = false;
      for (const l of this.servers.keys()) if (l.port === port && (l.addr === 0 || addr === 0 || l.addr === addr)) taken = true;
      if (!taken) return port;
    }
    const e = new Error('EADDRINUSE: no free port') as Error & { code: string };
    e.code = 'EADDRINUSE';
    throw e;
  }

  // ---- the API ----

  createServer(a?: ServerOptions | ((s: Socket) => void), b?: (s: Socket) => void): Server {
    const opts = typeof a === 'object' ? a : {};
    const onConnection = typeof a === 'function' ? a : b;
    const server = new Server(this, opts);
    if (onConnection) server.on('connection', onConnection);
    return server;
  }

  connect(opts: ConnectOptions, onConnect?: () => void): Socket {
    if (this.closed) throw new Error('stack is closed');
    const remoteAddr = parseAddress(opts.host);
    const localAddr = opts.localAddress !== undefined ? parseAddress(opts.localAddress) : 0;
    const conn = this.host.connect(
      this.now(),
      { localAddr, localPort: opts.localPort ?? 0, remoteAddr, remotePort: opts.port },
      opts.tcp,
    );
    const socket = new Socket(this, conn, { allowHalfOpen: opts.allowHalfOpen, connecting: true });
    this.sockets.set(conn, socket);
    this.updateRef();
    if (onConnect) socket.once('connect', onConnect);
    this.trackClose(socket);
    this.log?.({ type: 'connect', local: `${socket.localAddress}:${socket.localPort}`, remote: `${opts.host}:${opts.port}` });
    this.kick();
    return socket;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const server of [...this.servers.values()]) server.close();
    for (const socket of [...this.sockets.values()]) socket.destroy();
    this.driver.flush();
    // Let the link carry the last batch before it closes.
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.driver.close();
    this.link.close();
  }

  // ---- events ----

  private onEvents(events: HostEvent[]): void {
    for (const ev of events) {
      if (ev.type === 'accept-ready') {
        this.acceptAll(ev.listener);
        continue;
      }
      const socket = this.sockets.get(ev.conn);
      if (socket === undefined) continue;
      if (ev.event.type === 'closed') this.release(ev.conn);
      socket.onTcpEvent(ev.event);
    }
  }

  private acceptAll(l: TcpListener): void {
    const server = this.servers.get(l);
    if (server === undefined) return;
    for (let conn = l.accept(); conn !== undefined; conn = l.accept()) {
      const socket = new Socket(this, conn, { allowHalfOpen: server.allowHalfOpen });
      this.sockets.set(conn, socket);
      this.updateRef();
      this.trackClose(socket);
      this.log?.({ type: 'accept', local: `${socket.localAddress}:${socket.localPort}`, remote: `${socket.remoteAddress}:${socket.remotePort}` });
      server.onAccepted(socket);
    }
  }

  private trackClose(socket: Socket): void {
    if (this.log === undefined) return;
    const log = this.log;
    let error: string | undefined;
    socket.once('error', (e: Error & { code?: string }) => {
      error = e.code ?? e.message;
    });
    socket.once('close', () => {
      log({ type: 'closed', local: `${socket.localAddress}:${socket.localPort}`, remote: `${socket.remoteAddress}:${socket.remotePort}`, ...(error ? { error } : {}) });
    });
  }
}

export function createStack(opts: StackOptions): Stack {
  return new StackImpl(opts);
}
