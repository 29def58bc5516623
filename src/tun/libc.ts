// The few libc calls the packet path needs, bound once through koffi. Only this file knows about
// koffi; everything else sees plain functions over numbers and Uint8Arrays.
//
// ioctl and fcntl are variadic in C. They are declared here with a fixed third argument, which is
// call-compatible on the Linux ABIs we run on (x86-64 SysV and AArch64 AAPCS pass the first
// variadic integer/pointer argument exactly like a fixed one), and lets koffi call them
// asynchronously-capable and without per-call type strings.

import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

// Constants from <fcntl.h>, <poll.h>, <errno.h>, <linux/if_tun.h>, <sys/eventfd.h>, <sched.h>.
export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const POLLIN = 0x001;
export const EINTR = 4;
export const EAGAIN = 11;
export const CLONE_NEWNET = 0x40000000;

type PtrArg = Uint8Array;

const c = {
  open: libc.func('int open(const char *path, int flags, int mode)') as (p: string, f: number, m: number) => number,
  close: libc.func('int close(int fd)') as (fd: number) => number,
  read: libc.func('long read(int fd, _Out_ void *buf, unsigned long count)') as (fd: number, buf: PtrArg, n: number) => number,
  write: libc.func('long write(int fd, const void *buf, unsigned long count)') as (fd: number, buf: PtrArg, n: number) => number,
  ioctl: libc.func('int ioctl(int fd, unsigned long request, _Inout_ void *arg)') as (fd: number, req: number, arg: PtrArg) => number,
  // The same call for requests whose argument is a plain integer, not a pointer (TUNSETOFFLOAD).
  ioctlValue: libc.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']) as (fd: number, req: number, arg: number) => number,
  eventfd: libc.func('int eventfd(unsigned int initval, int flags)') as (init: number, flags: number) => number,
  setns: libc.func('int setns(int fd, int nstype)') as (fd: number, nstype: number) => number,
  socket: libc.func('int socket(int domain, int type, int protocol)') as (d: number, t: number, p: number) => number,
  sendto: libc.func('long sendto(int fd, const void *buf, unsigned long len, int flags, const void *addr, unsigned int addrlen)') as (
    fd: number,
    buf: PtrArg,
    len: number,
    flags: number,
    addr: PtrArg,
    addrlen: number,
  ) => number,
  strerror: libc.func('const char *strerror(int errnum)') as (e: number) => string,
};

// poll() is the one call made asynchronously (on the libuv thread pool): it blocks until the tun fd
// or the wake-up eventfd is readable. The pollfd array lives in a Buffer, which koffi passes by
// pointer; its backing store does not move while the call runs.
const pollFn = libc.func('int poll(_Inout_ void *fds, unsigned long nfds, int timeout)');

export function errno(): number {
  return koffi.errno();
}

/** An Error carrying the errno name-ish text and number, like Node's own system errors. */
export class SysError extends Error {
  constructor(
    readonly syscall: string,
    readonly errno: number,
    detail?: string,
  ) {
    super(`${syscall}${detail ? ` ${detail}` : ''}: ${c.strerror(errno)} (errno ${errno})`);
    this.name = 'SysError';
  }
}

function check(syscall: string, r: number, detail?: string): number {
  if (r < 0) throw new SysError(syscall, koffi.errno(), detail);
  return r;
}

export function sysOpen(path: string, flags: number): number {
  return check('open', c.open(path, flags, 0), path);
}

export function sysClose(fd: number): void {
  c.close(fd);
}

/** Returns bytes read, or -errno (so the hot path can test for EAGAIN without exceptions). */
export function sysRead(fd: number, buf: Uint8Array, len: number): number {
  const r = c.read(fd, buf, len);
  return r < 0 ? -koffi.errno() : r;
}

/** Returns bytes written, or -errno. */
export function sysWrite(fd: number, buf: Uint8Array, len: number): number {
  const r = c.write(fd, buf, len);
  return r < 0 ? -koffi.errno() : r;
}

export function sysIoctl(fd: number, request: number, arg: Uint8Array, what: string): number {
  return check('ioctl', c.ioctl(fd, request, arg), what);
}

/** ioctl with an integer argument passed by value; returns 0 or -errno (callers fall back). */
export function sysIoctlValue(fd: number, request: number, value: number): number {
  const r = c.ioctlValue(fd, request, value);
  return r < 0 ? -koffi.errno() : r;
}

export function sysEventfd(flags: number): number {
  return check('eventfd', c.eventfd(0, flags));
}

export function sysSocket(domain: number, type: number, protocol: number): number {
  return check('socket', c.socket(domain, type, protocol));
}

export function sysSendto(fd: number, buf: Uint8Array, addr: Uint8Array): number {
  return check('sendto', c.sendto(fd, buf, buf.length, 0, addr, addr.length));
}

/**
 * Waits on the thread pool until one of the fds is readable. Resolves with poll()'s result, or
 * -errno on failure.
 */
export function pollAsync(fds: Buffer, nfds: number, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    pollFn.async(fds, nfds, timeoutMs, (err: unknown, res: number) => {
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      // errno is carried over to async callbacks since koffi 3.2.
      else resolve(res < 0 ? -koffi.errno() : res);
    });
  });
}

/**
 * Runs `fn` with the calling (main JS) thread inside the named network namespace, then returns
 * to the original one. Only this thread moves: libuv's pool threads stay where they were, which is
 * fine because everything made inside (tun fds, sockets) keeps its namespace for life.
 */
export function withNetns<T>(netns: string | undefined, fn: () => T): T {
  if (netns === undefined) return fn();
  const here = sysOpen('/proc/thread-self/ns/net', O_RDONLY | O_CLOEXEC);
  let there = -1;
  try {
    there = sysOpen(`/var/run/netns/${netns}`, O_RDONLY | O_CLOEXEC);
    check('setns', c.setns(there, CLONE_NEWNET), netns);
    try {
      return fn();
    } finally {
      // If returning fails the thread would keep running in the lab namespace; nothing sane can
      // continue after that.
      if (c.setns(here, CLONE_NEWNET) < 0) {
        process.stderr.write(`fatal: cannot return from network namespace ${netns}\n`);
        process.abort();
      }
    }
  } finally {
    if (there >= 0) c.close(there);
    c.close(here);
  }
}
