// A scripted stand-in for the Host: it records what the runner injects and sends packets a test
// schedules, so the runner's own semantics (time, tolerance, ISN mapping, blocking calls) can be
// tested without depending on the TCP core.

import type { Counters, Host, HostConfig, HostEvent, TcpListener } from '../../src/stack/host-api.js';
import type { Micros, TcpConfig, TcpConnection, TcpEvent, TcpState } from '../../src/stack/tcp/api.js';
import type { FourTuple, Ipv4Addr, TcpSegment } from '../../src/stack/wire/types.js';

export class FakeConnection implements TcpConnection {
  state: TcpState = 'ESTABLISHED';
  readableLength = 0;
  writableSpace = 65536;
  sendBufferSize = 65536;
  readEnded = false;
  closedAt: number | undefined;
  /** Runs on close(), e.g. to send a FIN through the host. */
  onClose: () => void = () => {};
  constructor(readonly tuple: FourTuple) {}
  onSegment(_now: Micros, _seg: TcpSegment): void {}
  onTimer(_now: Micros): void {}
  onIcmpError(): void {}
  write(_now: Micros, data: Uint8Array): number {
    return data.length;
  }
  read(_now: Micros, max?: number): Uint8Array | null {
    if (this.readableLength === 0) return null;
    const n = Math.min(this.readableLength, max ?? Infinity);
    this.readableLength -= n;
    return new Uint8Array(n);
  }
  shutdown(): void {}
  close(now: Micros): void {
    this.closedAt = now;
    this.onClose();
  }
  abort(): void {
    this.state = 'CLOSED';
  }
  setNoDelay(): void {}
  setKeepAlive(): void {}
  takeOutput(): TcpSegment[] {
    return [];
  }
  takeEvents(): TcpEvent[] {
    return [];
  }
  nextDeadline(): Micros | null {
    return null;
  }
}

class FakeListener implements TcpListener {
  readonly ready: TcpConnection[] = [];
  constructor(
    readonly addr: Ipv4Addr,
    readonly port: number,
  ) {}
  accept(): TcpConnection | undefined {
    return this.ready.shift();
  }
  get pendingCount(): number {
    return this.ready.length;
  }
  close(): void {}
}

export class FakeHost implements Host {
  readonly injected: Array<{ time: Micros; bytes: Uint8Array }> = [];
  readonly connections = new Map<string, TcpConnection>();
  readonly counters: Counters = {};
  readonly listeners: FakeListener[] = [];
  /** Called for every injected packet; may schedule replies. */
  onInject: (host: FakeHost, now: Micros, bytes: Uint8Array) => void = () => {};
  private scheduled: Array<{ at: Micros; bytes: Uint8Array | null; then?: () => void }> = [];
  private out: Uint8Array[] = [];
  private events: HostEvent[] = [];
  connectTuple: FourTuple | undefined;
  lastConn: FakeConnection | undefined;

  constructor(readonly config: HostConfig) {}

  /** Sends `bytes` (if any) and runs `then` when the clock reaches `at`. */
  sendAt(at: Micros, bytes: Uint8Array | null, then?: () => void): void {
    this.scheduled.push(then ? { at, bytes, then } : { at, bytes });
    this.scheduled.sort((a, b) => a.at - b.at);
  }

  sendNow(bytes: Uint8Array): void {
    this.out.push(bytes);
  }

  onPacket(now: Micros, packet: Uint8Array): void {
    this.injected.push({ time: now, bytes: packet });
    this.onInject(this, now, packet);
  }

  onTimer(now: Micros): void {
    while (this.scheduled.length > 0 && this.scheduled[0]!.at <= now) {
      const s = this.scheduled.shift()!;
      if (s.bytes) this.out.push(s.bytes);
      s.then?.();
    }
  }

  takePackets(): Uint8Array[] {
    const o = this.out;
    this.out = [];
    return o;
  }

  takeEvents(): HostEvent[] {
    const e = this.events;
    this.events = [];
    return e;
  }

  nextDeadline(): Micros | null {
    return this.scheduled[0]?.at ?? null;
  }

  listen(addr: Ipv4Addr, port: number): TcpListener {
    const l = new FakeListener(addr, port);
    this.listeners.push(l);
    return l;
  }

  /** Makes an established connection available to accept(). */
  completeHandshake(tuple: FourTuple): FakeConnection {
    const c = new FakeConnection(tuple);
    this.lastConn = c;
    this.listeners[0]?.ready.push(c);
    return c;
  }

  connect(_now: Micros, tuple: FourTuple, _config?: Partial<TcpConfig>): TcpConnection {
    const t = { ...tuple, localPort: tuple.localPort || 50000 };
    this.connectTuple = t;
    const c = new FakeConnection(t);
    c.state = 'SYN-SENT';
    this.lastConn = c;
    return c;
  }
}
