// The descriptors of the runner's socket layer: what each socket holds (listener or connection,
// options, so_error) and the descriptor numbers FreeBSD would hand out (lowest free, from 3).

import type { TcpListener } from '../stack/host-api.js';
import type { TcpConnection, TcpErrorCode } from '../stack/tcp/api.js';

export interface SocketFd {
  fd: number;
  nonblocking: boolean;
  bound: boolean;
  /** TCP_NOOPT */
  noOptions: boolean;
  /** TCP_KEEPINIT in microseconds, overriding net.inet.tcp.keepinit. */
  keepinitUs?: number;
  listener?: TcpListener;
  conn?: TcpConnection;
  /** When connect() was called, for the keep-init limit. */
  connectAt?: number;
  /** so_error: set by the stack's error events, cleared by getsockopt(SO_ERROR). */
  error?: TcpErrorCode;
  /** The error stays visible to read/write after SO_ERROR consumed it. */
  failed?: TcpErrorCode;
  shutWr: boolean;
}

/** What a system call returned: a value, or -1 with an errno name. */
export type CallOutcome = { result: number; errno?: string; value?: SyscallValue };

/** Values returned through pointer arguments, e.g. getsockopt's `[65536]`. */
export type SyscallValue = number | string;

/** A call that cannot complete yet; the runner retries it as time passes (a blocking call). */
export const WOULD_BLOCK = Symbol('would-block');
export type Attempt = CallOutcome | typeof WOULD_BLOCK;

export class FdTable {
  private fds = new Map<number, SocketFd>();

  open(): SocketFd {
    let n = 3;
    while (this.fds.has(n)) n++;
    const s: SocketFd = { fd: n, nonblocking: false, bound: false, noOptions: false, shutWr: false };
    this.fds.set(n, s);
    return s;
  }

  adopt(conn: TcpConnection): SocketFd {
    const s = this.open();
    s.conn = conn;
    s.bound = true;
    return s;
  }

  get(fd: number): SocketFd | undefined {
    return this.fds.get(fd);
  }

  close(fd: number): void {
    this.fds.delete(fd);
  }

  all(): SocketFd[] {
    return [...this.fds.values()];
  }

  ownerOf(conn: TcpConnection): SocketFd | undefined {
    for (const s of this.fds.values()) if (s.conn === conn) return s;
    return undefined;
  }
}

/** FreeBSD's sockstat/TCPI state names for our states. */
export function bsdStateName(state: string): string {
  if (state === 'SYN-RECEIVED') return 'SYN_RCVD';
  return state.replace(/-/g, '_');
}
