// A Linux TUN device as a Link. Packets are read and written as raw IPv4 (IFF_TUN | IFF_NO_PI).
//
// Event-loop integration: one asynchronous poll() on the libuv thread pool waits until the tun fd
// (or a wake-up eventfd, used by close) is readable; the main thread then drains the fd with
// synchronous non-blocking read()s until EAGAIN and hands the whole batch to the handler in one
// turn, then re-arms the poll. Writes are synchronous non-blocking write()s, one per packet.
//
// Measured with bench/tun-bench.ts (Python UDP flood from the client namespace at the VIP,
// 64-byte payloads, 3 s runs, on the shared 2-core machine under a load average of 1-6):
// - this design: 75-141 k packets/s received, i.e. 90-100% of what the sender managed; 4-23
//   packets per wake-up (more under load); 3-6 us of process CPU per packet. At a paced 40 k/s,
//   about 6 packets per wake-up and no drops.
// - fs.read per packet on a blocking fd (one thread-pool round trip each): 24-32 k packets/s,
//   20-30% of the sender, 15-21 us CPU per packet.
// - net.Socket({ fd }): refused, "Unsupported fd type: FILE" (libuv treats a character device as
//   a file, not a stream).
// Copying each packet out of the scratch buffer costs ~0.27 us (a fresh ArrayBuffer); handing out
// views into a never-reused slab would cost ~0.03 us but pins a whole slab per packet kept by the
// stack (out-of-order queues). Under 10% of the per-packet cost: we copy.
// Draining again on the next turn before re-arming poll (to save thread-pool round trips under
// load) made no measurable difference, so the loop stays simple.
//
// The price is that an open device keeps one libuv pool thread parked in poll() (4 by default;
// raise UV_THREADPOOL_SIZE if a process opens several devices and also does heavy fs work).
//
// Room for later: IFF_VNET_HDR with TUNSETOFFLOAD would prefix every read and write with a
// struct virtio_net_hdr; that belongs in drain(), writeOne() and the open flags, nothing else.

import { writeFileSync } from 'node:fs';
import { ifreqName, makeIfreq } from './ifreq.js';
import {
  EAGAIN,
  EINTR,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  POLLIN,
  pollAsync,
  SysError,
  sysClose,
  sysEventfd,
  sysIoctl,
  sysOpen,
  sysRead,
  sysSocket,
  sysWrite,
  withNetns,
} from './libc.js';
import { copyPacket, emptyLinkStats, type Link, type LinkStats, type ReceiveHandler } from './link.js';

const TUNSETIFF = 0x400454ca;
const IFF_TUN = 0x0001;
const IFF_NO_PI = 0x1000;
const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const SIOCSIFMTU = 0x8922;
const SIOCSIFTXQLEN = 0x8943;
const IFF_UP = 0x1;
const AF_INET = 2;
const SOCK_DGRAM = 2;

const DEFAULT_TX_QUEUE_LEN = 1000;
/** Most packets read in one turn before yielding to the event loop (keeps timers and writes fair). */
const MAX_BATCH = 256;
/** Packets kept for retry when the kernel says EAGAIN on write; beyond this they are dropped. */
const MAX_WRITE_QUEUE = 1024;

export interface TunOptions {
  /** Interface name (max 15 characters); may contain %d for the kernel to pick a number. */
  name: string;
  /** Link MTU; default 1500. */
  mtu?: number;
  /**
   * Create the device inside this named network namespace (/var/run/netns/NAME). The process
   * itself stays where it is; the fd keeps working from here.
   */
  netns?: string;
  /**
   * The kernel's queue of packets waiting for us to read (the interface's txqueuelen). Default
   * 1000 instead of tun's 500: a JavaScript reader pauses now and then (GC, a long batch), and
   * the queue has to cover the pause.
   */
  txQueueLen?: number;
}

export interface TunStats extends LinkStats {
  /** Non-IPv4 packets the kernel handed us (e.g. IPv6 router solicitations), dropped. */
  rxNonIpv4: number;
  /** write() failures other than EAGAIN, e.g. the interface is down. */
  txErrors: number;
  /** Packets that hit EAGAIN and were queued for a retry. */
  txRetried: number;
}

/**
 * An open tun interface. Reading starts at the first onReceive(); from then on the pending poll
 * keeps the process alive, like a listening server, until close().
 */
export interface TunDevice extends Link {
  /** The interface name the kernel gave the device. */
  readonly name: string;
  readonly stats: TunStats;
  /** Called when reading fails for good (e.g. the interface was deleted); the link is then closed. */
  onError(handler: (err: Error) => void): void;
  /** Resolves when the fd is closed and the interface is gone (after close()). */
  readonly closed: Promise<void>;
}

export async function openTun(opts: TunOptions): Promise<TunDevice> {
  const { fd, name, mtu } = createTunFd(opts, true);
  return new TunDeviceImpl(fd, name, mtu);
}

/**
 * The raw step under openTun: creates and configures the interface and returns its fd. Exposed
 * for benchmarks that compare read strategies; everything else uses openTun.
 */
export function createTunFd(opts: TunOptions, nonBlocking: boolean): { fd: number; name: string; mtu: number } {
  const mtu = opts.mtu ?? 1500;
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new RangeError(`bad MTU ${mtu}`);
  return withNetns(opts.netns, () => {
    const fd = sysOpen('/dev/net/tun', O_RDWR | O_CLOEXEC | (nonBlocking ? O_NONBLOCK : 0));
    try {
      const req = makeIfreq(opts.name);
      req.writeUInt16LE(IFF_TUN | IFF_NO_PI, 16);
      sysIoctl(fd, TUNSETIFF, req, `TUNSETIFF ${opts.name}`);
      const name = ifreqName(req);
      configure(name, mtu, opts.txQueueLen ?? DEFAULT_TX_QUEUE_LEN);
      return { fd, name, mtu };
    } catch (e) {
      sysClose(fd);
      throw e;
    }
  });
}

/** Sets the MTU and brings the interface up, without addresses: routes point at it by name. */
function configure(name: string, mtu: number, txQueueLen: number): void {
  // IPv6 on a tun would only produce router solicitations and MLD reports for us to discard.
  try {
    writeFileSync(`/proc/sys/net/ipv6/conf/${name}/disable_ipv6`, '1');
  } catch {
    // IPv6 disabled in this kernel or namespace: nothing to silence.
  }
  const s = sysSocket(AF_INET, SOCK_DGRAM, 0);
  try {
    const mtuReq = makeIfreq(name);
    mtuReq.writeInt32LE(mtu, 16);
    sysIoctl(s, SIOCSIFMTU, mtuReq, `SIOCSIFMTU ${name} ${mtu}`);
    const qlenReq = makeIfreq(name);
    qlenReq.writeInt32LE(txQueueLen, 16);
    sysIoctl(s, SIOCSIFTXQLEN, qlenReq, `SIOCSIFTXQLEN ${name} ${txQueueLen}`);
    const flagsReq = makeIfreq(name);
    sysIoctl(s, SIOCGIFFLAGS, flagsReq, `SIOCGIFFLAGS ${name}`);
    flagsReq.writeUInt16LE(flagsReq.readUInt16LE(16) | IFF_UP, 16);
    sysIoctl(s, SIOCSIFFLAGS, flagsReq, `SIOCSIFFLAGS ${name} up`);
  } finally {
    sysClose(s);
  }
}

class TunDeviceImpl implements TunDevice {
  readonly stats: TunStats = { ...emptyLinkStats(), rxNonIpv4: 0, txErrors: 0, txRetried: 0 };
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private handler: ReceiveHandler | undefined;
  private errorHandler: ((err: Error) => void) | undefined;
  private readonly wakeFd: number;
  private readonly pollFds = Buffer.alloc(16);
  /** Scratch read buffer: packets are copied out of it, so handlers get buffers they own. */
  private readonly scratch: Uint8Array;
  private writeQueue: Uint8Array[] = [];
  private writeRetry: NodeJS.Immediate | NodeJS.Timeout | undefined;
  private closing = false;
  private polling = false;
  private fdClosed = false;

  constructor(
    private readonly fd: number,
    readonly name: string,
    readonly mtu: number,
  ) {
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.wakeFd = sysEventfd(O_NONBLOCK | O_CLOEXEC);
    // struct pollfd { int fd; short events; short revents; } x 2
    this.pollFds.writeInt32LE(fd, 0);
    this.pollFds.writeInt16LE(POLLIN, 4);
    this.pollFds.writeInt32LE(this.wakeFd, 8);
    this.pollFds.writeInt16LE(POLLIN, 12);
    // One spare byte beyond the MTU tells a packet that filled the buffer from one that was cut.
    // A plain Uint8Array, not a Buffer, so that slice() copies.
    this.scratch = new Uint8Array(mtu + 1);
  }

  onReceive(handler: ReceiveHandler): void {
    this.handler = handler;
    // Start reading only once someone listens, so early packets wait in the kernel queue.
    if (!this.polling && !this.closing) this.drain();
  }

  onError(handler: (err: Error) => void): void {
    this.errorHandler = handler;
  }

  send(packets: readonly Uint8Array[]): void {
    for (const p of packets) {
      if (this.closing || p.length === 0 || p.length > this.mtu) {
        this.stats.txDropped++;
        continue;
      }
      if (this.writeQueue.length > 0) {
        this.enqueueWrite(p);
        continue;
      }
      this.writeOne(p, true);
    }
  }

  close(): void {
    if (this.closing) return;
    this.closing = true;
    this.handler = undefined;
    if (this.writeRetry !== undefined) {
      clearTimeout(this.writeRetry as NodeJS.Timeout);
      clearImmediate(this.writeRetry as NodeJS.Immediate);
    }
    this.stats.txDropped += this.writeQueue.length;
    this.writeQueue = [];
    if (this.polling) {
      // The pool thread is blocked in poll() on our fds: wake it, and close the fds only once it
      // has returned, so the kernel never sees an fd closed under a sleeping poll.
      sysWrite(this.wakeFd, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]), 8);
    } else {
      this.closeFds();
    }
  }

  private closeFds(): void {
    if (this.fdClosed) return;
    this.fdClosed = true;
    sysClose(this.fd);
    sysClose(this.wakeFd);
    this.resolveClosed();
  }

  /** Returns true when written (or queued); false when dropped. */
  private writeOne(p: Uint8Array, mayQueue: boolean): boolean {
    for (;;) {
      const n = sysWrite(this.fd, p, p.length);
      if (n >= 0) {
        this.stats.txPackets++;
        this.stats.txBytes += p.length;
        return true;
      }
      if (n === -EINTR) continue;
      if (n === -EAGAIN && mayQueue) {
        this.stats.txRetried++;
        this.enqueueWrite(p);
        return true;
      }
      if (n === -EAGAIN) return false;
      this.stats.txErrors++;
      this.stats.txDropped++;
      return true;
    }
  }

  private enqueueWrite(p: Uint8Array): void {
    if (this.writeQueue.length >= MAX_WRITE_QUEUE) {
      this.stats.txDropped++;
      return;
    }
    // Copied: the Link contract lets the caller reuse its buffer once send() returns.
    this.writeQueue.push(copyPacket(p));
    this.scheduleWriteRetry(false);
  }

  private scheduleWriteRetry(backoff: boolean): void {
    if (this.writeRetry !== undefined) return;
    // First retry on the next turn; if the kernel is still full, back off a millisecond instead of
    // spinning the event loop.
    const retry = () => {
      this.writeRetry = undefined;
      this.flushWriteQueue();
    };
    this.writeRetry = backoff ? setTimeout(retry, 1) : setImmediate(retry);
  }

  private flushWriteQueue(): void {
    if (this.closing) return;
    let i = 0;
    while (i < this.writeQueue.length) {
      if (!this.writeOne(this.writeQueue[i]!, false)) break;
      i++;
    }
    this.writeQueue.splice(0, i);
    if (this.writeQueue.length > 0) this.scheduleWriteRetry(true);
  }

  /** Reads until EAGAIN (or MAX_BATCH), delivers the batch, then waits for readiness again. */
  private drain(): void {
    if (this.closing) return;
    const batch: Uint8Array[] = [];
    let failure: Error | undefined;
    while (batch.length < MAX_BATCH) {
      const n = sysRead(this.fd, this.scratch, this.scratch.length);
      if (n === -EAGAIN) break;
      if (n === -EINTR) continue;
      if (n < 0) {
        failure = new SysError('read', -n, `tun ${this.name}`);
        break;
      }
      if (n === 0) continue;
      const version = this.scratch[0]! >> 4;
      if (version !== 4) {
        this.stats.rxNonIpv4++;
        this.stats.rxDropped++;
        continue;
      }
      if (n > this.mtu) {
        this.stats.rxDropped++;
        continue;
      }
      batch.push(this.scratch.slice(0, n));
      this.stats.rxBytes += n;
    }
    if (batch.length > 0) {
      this.stats.rxPackets += batch.length;
      this.stats.rxBatches++;
      const handler = this.handler;
      if (handler === undefined) this.stats.rxDropped += batch.length;
      else {
        try {
          handler(batch);
        } catch (e) {
          // Keep the device reading; surface the handler's bug on a later turn.
          queueMicrotask(() => {
            throw e;
          });
        }
      }
    }
    if (failure !== undefined) {
      this.fail(failure);
      return;
    }
    if (batch.length >= MAX_BATCH) setImmediate(() => this.drain());
    else this.arm();
  }

  private arm(): void {
    if (this.closing || this.polling) return;
    this.polling = true;
    pollAsync(this.pollFds, 2, -1).then(
      (r) => this.onWake(r),
      (e: unknown) => this.onWake(e instanceof Error ? e : new Error(String(e))),
    );
  }

  private onWake(r: number | Error): void {
    this.polling = false;
    if (this.closing) {
      this.closeFds();
      return;
    }
    if (r instanceof Error) {
      this.fail(r);
      return;
    }
    if (r < 0 && r !== -EINTR) {
      this.fail(new SysError('poll', -r, `tun ${this.name}`));
      return;
    }
    // POLLERR / POLLHUP on the tun fd show up as a failing read in drain().
    this.drain();
  }

  private fail(err: Error): void {
    const handler = this.errorHandler;
    this.close();
    if (handler) handler(err);
    else queueMicrotask(() => {
      throw err;
    });
  }
}
