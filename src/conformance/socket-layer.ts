// The runner's stand-in for FreeBSD's socket layer: what each system call in a script does to the
// sans-IO Host and its connections, and what it returns. Calls that would block return
// WOULD_BLOCK; the runner retries them as virtual time passes (packetdrill's blocking calls).

import type { Host } from '../stack/host-api.js';
import type { TcpConnection, TcpErrorCode } from '../stack/tcp/api.js';
import { NO_OPTIONS, roundUpToMss, type ConformanceProfile } from './profile.js';
import type { SyscallSpec } from './script.js';
import { bsdStateName, FdTable, WOULD_BLOCK, type Attempt, type CallOutcome, type SocketFd } from './sockets.js';
import { argName, argNames, listNumber, pollMask, pollNames, POLL_BITS } from './syscall-args.js';

/** What the socket layer needs from the run that owns it. */
export interface SocketContext {
  /** The virtual clock, in microseconds. */
  readonly now: number;
  /** The Host, built on first use from the script's sysctls; `noOptions` for a TCP_NOOPT listener. */
  host(noOptions: boolean): Host;
  existingHost(): Host | undefined;
  /** Collects what the host produced since the last call. */
  drain(): void;
  sysctl(name: string): string;
  /** listen() or connect() started a conversation between these ports. */
  opened(localPort: number, remotePort: number): void;
  /** packetdrill's "socket under test", which %{ }% blocks inspect. */
  setUnderTest(fd: SocketFd, conn?: TcpConnection): void;
  /** The MSS option of the script peer's SYN, if any. */
  peerMss(): number | undefined;
  fail(line: number, message: string): never;
}

export class SocketLayer {
  private readonly fds = new FdTable();
  /** Errors for connections no descriptor owns yet (not accepted): handed over on accept. */
  private readonly orphanErrors = new Map<TcpConnection, TcpErrorCode>();
  /** When a blocked poll() gives up and returns 0. */
  private pollDeadline: number | undefined;

  constructor(
    private readonly ctx: SocketContext,
    private readonly profile: ConformanceProfile,
    private readonly mtu: number,
  ) {}

  /** A connection reported an error: it becomes the owning socket's so_error. */
  onError(conn: TcpConnection, code: TcpErrorCode): void {
    const owner = this.fds.ownerOf(conn);
    if (owner) {
      owner.error = code;
      owner.failed = code;
    } else this.orphanErrors.set(conn, code);
  }

  ownerOf(conn: TcpConnection): SocketFd | undefined {
    return this.fds.ownerOf(conn);
  }

  /** The next time the socket layer acts by itself: TCP_KEEPINIT, a poll() timeout. */
  nextDeadline(): number | null {
    let best: number | null = this.pollDeadline ?? null;
    for (const s of this.fds.all()) {
      if (s.conn?.state !== 'SYN-SENT' || s.connectAt === undefined) continue;
      const t = s.connectAt + this.keepinitUs(s);
      if (best === null || t < best) best = t;
    }
    return best;
  }

  /** TCP_KEEPINIT: a connection still in SYN-SENT when the limit passes is dropped with ETIMEDOUT. */
  onTimer(now: number): void {
    for (const s of this.fds.all()) {
      if (s.conn?.state === 'SYN-SENT' && s.connectAt !== undefined && now >= s.connectAt + this.keepinitUs(s)) {
        s.conn.abort(now);
        s.error = 'ETIMEDOUT';
        s.failed = 'ETIMEDOUT';
      }
    }
  }

  private keepinitUs(s: SocketFd): number {
    return s.keepinitUs ?? Number(this.ctx.sysctl('net.inet.tcp.keepinit')) * 1000;
  }

  /** Every connection the scripts can see: the host's, and closed ones a descriptor still holds. */
  allConnections(): TcpConnection[] {
    const set = new Set<TcpConnection>(this.ctx.existingHost()?.connections.values() ?? []);
    for (const s of this.fds.all()) if (s.conn) set.add(s.conn);
    return [...set];
  }

  /** What `sockstat -s` would list: every descriptor's socket, plus connections without one. */
  socketStates(): string[] {
    const states: string[] = [];
    const owned = new Set<TcpConnection>();
    for (const s of this.fds.all()) {
      if (s.conn) {
        owned.add(s.conn);
        states.push(bsdStateName(s.conn.state));
      } else states.push(s.listener ? 'LISTEN' : 'CLOSED');
    }
    for (const conn of this.ctx.existingHost()?.connections.values() ?? [])
      if (!owned.has(conn)) states.push(bsdStateName(conn.state));
    return states;
  }

  private sock(line: number, call: SyscallSpec): SocketFd {
    const fdArg = call.args[0];
    const fd = fdArg?.kind === 'number' ? fdArg.value : NaN;
    const s = this.fds.get(fd);
    if (!s) this.ctx.fail(line, `${call.name}() on unknown descriptor ${fd}`);
    return s;
  }

  /** Turns a call into a function the runner can retry until it stops blocking. */
  prepare(line: number, call: SyscallSpec): () => Attempt {
    const ok = (result = 0, value?: number | string): CallOutcome =>
      value === undefined ? { result } : { result, value };
    const err = (errno: string): CallOutcome => ({ result: -1, errno });
    switch (call.name) {
      case 'socket':
        return () => {
          const s = this.fds.open();
          this.ctx.setUnderTest(s);
          return ok(s.fd);
        };
      case 'fcntl': {
        const s = this.sock(line, call);
        const cmd = argName(call.args[1]);
        return () => {
          if (cmd === 'F_GETFL') return ok(0x02 | (s.nonblocking ? 0x04 : 0));
          if (cmd === 'F_SETFL') {
            s.nonblocking = argNames(call.args[2]).includes('O_NONBLOCK');
            return ok();
          }
          return err('EINVAL');
        };
      }
      case 'setsockopt': {
        const s = this.sock(line, call);
        const opt = argName(call.args[2]);
        const value = listNumber(call.args[3]);
        return () => {
          if (opt === 'TCP_NOOPT') s.noOptions = value !== 0;
          else if (opt === 'TCP_KEEPINIT') s.keepinitUs = (value ?? 0) * 1_000_000;
          else if (opt === 'TCP_NODELAY') s.conn?.setNoDelay(value !== 0);
          return ok();
        };
      }
      case 'getsockopt': {
        const s = this.sock(line, call);
        const opt = argName(call.args[2]);
        return () => {
          if (opt === 'SO_ERROR') {
            const e = s.error;
            s.error = undefined;
            return ok(0, e ?? 0);
          }
          if (opt === 'SO_RCVBUF') return ok(0, this.receiveBufferOf(s));
          if (opt === 'SO_SNDBUF') return ok(0, Number(this.ctx.sysctl('net.inet.tcp.sendspace')));
          return err('ENOPROTOOPT');
        };
      }
      case 'bind': {
        const s = this.sock(line, call);
        return () => {
          s.bound = true;
          return ok();
        };
      }
      case 'listen': {
        const s = this.sock(line, call);
        const backlog = call.args[1]?.kind === 'number' ? call.args[1].value : 1;
        return () => {
          const host = this.ctx.host(s.noOptions);
          s.listener = host.listen(this.profile.localAddr, this.profile.bindPort, backlog);
          this.ctx.opened(this.profile.bindPort, this.profile.remotePort);
          this.ctx.setUnderTest(s);
          return ok();
        };
      }
      case 'connect':
        return this.prepareConnect(line, call);
      case 'accept': {
        const s = this.sock(line, call);
        return () => {
          if (!s.listener) return err('EINVAL');
          const conn = s.listener.accept();
          if (!conn) return s.nonblocking ? err('EAGAIN') : WOULD_BLOCK;
          const child = this.fds.adopt(conn);
          const e = this.orphanErrors.get(conn);
          if (e) {
            child.error = e;
            child.failed = e;
          }
          this.ctx.setUnderTest(child, conn);
          return ok(child.fd);
        };
      }
      case 'read':
      case 'recv': {
        const s = this.sock(line, call);
        const max = call.args[2]?.kind === 'number' ? call.args[2].value : Infinity;
        const peek = call.name === 'recv' && argNames(call.args[3]).includes('MSG_PEEK');
        return () => this.receive(s, max, peek);
      }
      case 'write':
      case 'send': {
        const s = this.sock(line, call);
        const len = call.args[2]?.kind === 'number' ? call.args[2].value : 0;
        return () => this.send(s, len);
      }
      case 'poll':
        return this.preparePoll(line, call);
      case 'shutdown': {
        const s = this.sock(line, call);
        const how = argName(call.args[1]);
        return () => {
          if (!s.conn) return err('ENOTCONN');
          if (how === 'SHUT_WR' || how === 'SHUT_RDWR') {
            s.shutWr = true;
            s.conn.shutdown(this.ctx.now);
            this.ctx.drain();
          }
          return ok();
        };
      }
      case 'close': {
        const s = this.sock(line, call);
        return () => {
          this.fds.close(s.fd);
          if (s.listener) s.listener.close(this.ctx.now);
          if (s.conn) s.conn.close(this.ctx.now);
          this.ctx.drain();
          return ok();
        };
      }
      default:
        this.ctx.fail(line, `unsupported system call ${call.name}()`);
    }
  }

  private prepareConnect(line: number, call: SyscallSpec): () => Attempt {
    const s = this.sock(line, call);
    let started = false;
    return () => {
      if (!started) {
        started = true;
        const host = this.ctx.host(false);
        const overrides = s.noOptions ? NO_OPTIONS : {};
        const conn = host.connect(
          this.ctx.now,
          {
            localAddr: this.profile.localAddr,
            localPort: s.bound ? this.profile.bindPort : 0,
            remoteAddr: this.profile.remoteAddr,
            remotePort: this.profile.connectPort,
          },
          overrides,
        );
        s.conn = conn;
        s.connectAt = this.ctx.now;
        this.ctx.opened(conn.tuple.localPort, conn.tuple.remotePort);
        this.ctx.setUnderTest(s, conn);
        this.ctx.drain();
        if (s.nonblocking) return { result: -1, errno: 'EINPROGRESS' };
      }
      const failed = s.error;
      if (failed) {
        s.error = undefined;
        return { result: -1, errno: failed };
      }
      const state = s.conn!.state;
      if (state === 'SYN-SENT' || state === 'SYN-RECEIVED') return WOULD_BLOCK;
      return { result: 0 };
    };
  }

  /** poll([{fd=N, events=..., revents=...}, ...], nfds, timeout_ms): the revents are checked. */
  private preparePoll(line: number, call: SyscallSpec): () => Attempt {
    const list = call.args[0];
    const entries = list?.kind === 'list' ? list.items : [];
    const timeoutMs = call.args[2]?.kind === 'number' ? call.args[2].value : 0;
    const polls = entries.map((e) => {
      if (e.kind !== 'struct') this.ctx.fail(line, 'poll() expects a list of {fd=..., events=...}');
      const fd = e.fields['fd'];
      return {
        fd: fd?.kind === 'number' ? fd.value : -1,
        events: pollMask(e.fields['events']),
        revents: e.fields['revents'] ? pollMask(e.fields['revents']) : undefined,
      };
    });
    let deadline: number | undefined;
    return () => {
      deadline ??= timeoutMs < 0 ? Infinity : this.ctx.now + timeoutMs * 1000;
      // POLLERR, POLLHUP and POLLNVAL are reported whether asked for or not.
      const always = POLL_BITS.POLLERR! | POLL_BITS.POLLHUP! | POLL_BITS.POLLNVAL!;
      const got = polls.map((p) => this.readiness(p.fd) & (p.events | always));
      const ready = got.filter((r) => r !== 0).length;
      if (ready === 0 && this.ctx.now < deadline) {
        this.pollDeadline = deadline === Infinity ? undefined : deadline;
        return WOULD_BLOCK;
      }
      this.pollDeadline = undefined;
      polls.forEach((p, i) => {
        if (p.revents !== undefined && p.revents !== got[i])
          this.ctx.fail(line, `poll() revents for fd ${p.fd}: ${pollNames(got[i]!)}, expected ${pollNames(p.revents)}`);
      });
      return { result: ready };
    };
  }

  private readiness(fd: number): number {
    const s = this.fds.get(fd);
    if (!s) return POLL_BITS.POLLNVAL!;
    let r = 0;
    if (s.listener) return s.listener.pendingCount > 0 ? POLL_BITS.POLLIN! | POLL_BITS.POLLRDNORM! : 0;
    const conn = s.conn;
    if (!conn) return POLL_BITS.POLLHUP!;
    if (s.error) r |= POLL_BITS.POLLERR!;
    if (conn.readableLength > 0 || conn.readEnded || s.failed) r |= POLL_BITS.POLLIN! | POLL_BITS.POLLRDNORM!;
    const open = conn.state === 'ESTABLISHED' || conn.state === 'CLOSE-WAIT';
    if (open && !s.shutWr && conn.writableSpace > 0) r |= POLL_BITS.POLLOUT!;
    if (conn.state === 'CLOSED' || s.failed || (conn.readEnded && s.shutWr)) r |= POLL_BITS.POLLHUP!;
    return r;
  }

  private receive(s: SocketFd, max: number, peek: boolean): Attempt {
    const conn = s.conn;
    if (!conn) return { result: -1, errno: 'ENOTCONN' };
    const available = conn.readableLength;
    if (available > 0) {
      if (peek) return { result: Math.min(available, max) };
      const data = conn.read(this.ctx.now, max === Infinity ? undefined : max);
      this.ctx.drain();
      return { result: data?.length ?? 0 };
    }
    if (s.error) {
      const e = s.error;
      s.error = undefined;
      return { result: -1, errno: e };
    }
    if (conn.readEnded || s.failed) return { result: 0 };
    if (conn.state === 'CLOSED') return { result: 0 };
    return s.nonblocking ? { result: -1, errno: 'EAGAIN' } : WOULD_BLOCK;
  }

  private send(s: SocketFd, len: number): Attempt {
    const conn = s.conn;
    if (!conn) return { result: -1, errno: 'ENOTCONN' };
    if (s.error) {
      const e = s.error;
      s.error = undefined;
      return { result: -1, errno: e };
    }
    if (s.shutWr || s.failed) return { result: -1, errno: 'EPIPE' };
    const taken = conn.write(this.ctx.now, new Uint8Array(len));
    this.ctx.drain();
    if (taken > 0) return { result: taken };
    return s.nonblocking ? { result: -1, errno: 'EAGAIN' } : WOULD_BLOCK;
  }

  /**
   * SO_RCVBUF as FreeBSD reports it: net.inet.tcp.recvspace until the handshake fixes the MSS,
   * then rounded up to a whole number of segments.
   */
  private receiveBufferOf(s: SocketFd): number {
    const space = Number(this.ctx.sysctl('net.inet.tcp.recvspace'));
    const conn = s.conn;
    if (!conn || conn.state === 'SYN-SENT' || conn.state === 'CLOSED') return space;
    // RFC 9293 3.7.1: without an MSS option the peer's MSS is 536.
    const mss = Math.min(this.mtu - 40, this.ctx.peerMss() ?? 536);
    return roundUpToMss(space, mss);
  }
}
