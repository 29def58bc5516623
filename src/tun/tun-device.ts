// A Linux TUN device as a Link. Packets are read and written as raw IPv4 (IFF_TUN | IFF_NO_PI),
// behind a virtio-net header when offloads are on (below).
//
// Event-loop integration: one asynchronous poll() on the libuv thread pool waits until the tun fd
// (or a wake-up eventfd, used by close) is readable; the main thread then drains the fd with
// synchronous non-blocking read()s until EAGAIN and hands the whole batch to the handler in one
// turn, then re-arms the poll. Writes are synchronous non-blocking write()s, one per packet (or
// super-packet).
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
// load) made no measurable difference for small UDP packets; with offloads a bulk transfer brings
// only 2-4 packets per wake-up, the poll round trip showed as ~10% of the CPU profile, and so
// drain() now looks once more on the next turn after every non-empty batch.
//
// The price is that an open device keeps one libuv pool thread parked in poll() (4 by default;
// raise UV_THREADPOOL_SIZE if a process opens several devices and also does heavy fs work).
//
// Offloads (ARCHITECTURE.md section 4): by default the device is opened with IFF_VNET_HDR, so every
// read and write starts with a 12-byte virtio-net header (vnet-header.ts). The profile of a bulk
// transfer without it showed ~70% of the process's busy time inside write(): the kernel forwards
// each packet we write within our system call, so the cost that matters is per write. With the
// header:
// - TX: a send() whose TCP packets carry partial checksums (SendOptions.tcpChecksumPartial) has its
//   runs of consecutive data segments merged into super-packets (gso.ts) written once each with
//   GSO_TCPV4; the kernel segments them, or hands them whole to a GSO-capable veth. Other TCP
//   packets of such a call go with NEEDS_CSUM, the rest as they are.
// - RX: once a handler that understands it attaches (ReceiveOptions.offload), TUNSETOFFLOAD
//   CSUM|TSO4 lets the kernel hand us TCP super-segments up to 64 KiB and packets whose checksum
//   it vouches for (NEEDS_CSUM, DATA_VALID); ReceiveInfo tells the handler which. A handler that
//   does not ask gets what the device gave before: MTU-sized packets with full checksums.
// If the kernel refuses any of the ioctls the device falls back to plain IFF_TUN | IFF_NO_PI.

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
  sysIoctlValue,
  sysOpen,
  sysRead,
  sysSocket,
  sysWrite,
  withNetns,
} from './libc.js';
import { coalescibleRun, GSO_MAX_PACKET, writeMerged } from './gso.js';
import {
  emptyLinkStats,
  type Link,
  type LinkOffload,
  type LinkStats,
  type ReceiveHandler,
  type ReceiveInfo,
  type ReceiveOptions,
  type SendOptions,
} from './link.js';
import {
  VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_HDR_LEN,
  writePlainVnetHeader,
  writeTcpOffloadHeader,
} from './vnet-header.js';

const TUNSETIFF = 0x400454ca;
const IFF_TUN = 0x0001;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
const TUNSETOFFLOAD = 0x400454d0;
const TUNSETVNETHDRSZ = 0x400454d8;
const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
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
/** With receive offload a packet may be 64 KiB: bound a turn's bytes too, not just its packets. */
const MAX_BATCH_BYTES = 2 << 20;
/** Packets kept for retry when the kernel says EAGAIN on write; beyond this they are dropped. */
const MAX_WRITE_QUEUE = 1024;
/** The largest IPv4 packet: what a read may bring once the kernel hands us super-segments. */
const MAX_IPV4 = 65535;

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
  /**
   * Open with IFF_VNET_HDR and use the virtio-net offloads (checksum, TSO4); default true for
   * openTun, false for the raw createTunFd. Falls back to no offloads when the kernel refuses.
   */
  offload?: boolean;
}

export interface TunStats extends LinkStats {
  /** Non-IPv4 packets the kernel handed us (e.g. IPv6 router solicitations), dropped. */
  rxNonIpv4: number;
  /** write() failures other than EAGAIN, e.g. the interface is down. */
  txErrors: number;
  /** Packets that hit EAGAIN and were queued for a retry. */
  txRetried: number;
  /** Super-packets written with GSO_TCPV4 (each counts its segments in txPackets). */
  txGso: number;
  /** Segments those super-packets carried. */
  txGsoSegments: number;
  /** TCP super-segments (GSO_TCPV4) the kernel handed us. */
  rxGso: number;
  /** Packets whose checksum the kernel vouched for (NEEDS_CSUM or DATA_VALID), not verified by us. */
  rxChecksumTrusted: number;
  /** Offloaded packets (GSO, partial checksum) read while the handler could not take them. */
  rxOffloadDropped: number;
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
  /** Present when the device was opened with the virtio-net header (offload on). */
  readonly offload?: LinkOffload;
  /** Whether the kernel currently hands us offloaded packets (a handler asked for them). */
  readonly rxOffload: boolean;
}

export async function openTun(opts: TunOptions): Promise<TunDevice> {
  const { fd, name, mtu, vnetHdr } = createTunFd({ ...opts, offload: opts.offload ?? true }, true);
  return new TunDeviceImpl(fd, name, mtu, vnetHdr);
}

/**
 * The raw step under openTun: creates and configures the interface and returns its fd. Exposed
 * for benchmarks that compare read strategies; everything else uses openTun.
 */
export function createTunFd(
  opts: TunOptions,
  nonBlocking: boolean,
): { fd: number; name: string; mtu: number; vnetHdr: boolean } {
  const mtu = opts.mtu ?? 1500;
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new RangeError(`bad MTU ${mtu}`);
  return withNetns(opts.netns, () => {
    const open = (vnetHdr: boolean): { fd: number; name: string } | undefined => {
      const fd = sysOpen('/dev/net/tun', O_RDWR | O_CLOEXEC | (nonBlocking ? O_NONBLOCK : 0));
      try {
        const req = makeIfreq(opts.name);
        req.writeUInt16LE(IFF_TUN | IFF_NO_PI | (vnetHdr ? IFF_VNET_HDR : 0), 16);
        if (vnetHdr && !offloadIoctlsWork(fd, req)) {
          sysClose(fd);
          return undefined;
        }
        if (!vnetHdr) sysIoctl(fd, TUNSETIFF, req, `TUNSETIFF ${opts.name}`);
        return { fd, name: ifreqName(req) };
      } catch (e) {
        sysClose(fd);
        throw e;
      }
    };
    const wantVnet = opts.offload === true;
    let vnetHdr = wantVnet;
    let dev = wantVnet ? open(true) : undefined;
    if (dev === undefined) {
      vnetHdr = false;
      dev = open(false)!;
    }
    try {
      configure(dev.name, mtu, opts.txQueueLen ?? DEFAULT_TX_QUEUE_LEN);
    } catch (e) {
      sysClose(dev.fd);
      throw e;
    }
    return { fd: dev.fd, name: dev.name, mtu, vnetHdr };
  });
}

/**
 * TUNSETIFF with IFF_VNET_HDR, the header size, and a trial of TUNSETOFFLOAD (left off: it is
 * turned on when a handler that takes offloaded packets attaches). False when the kernel refuses
 * any step, so the caller reopens without offloads; the interface, made with the fd, goes with it.
 */
function offloadIoctlsWork(fd: number, req: Buffer): boolean {
  try {
    sysIoctl(fd, TUNSETIFF, req, `TUNSETIFF ${ifreqName(req)}`);
  } catch {
    return false;
  }
  const size = Buffer.alloc(4);
  size.writeInt32LE(VNET_HDR_LEN, 0);
  try {
    sysIoctl(fd, TUNSETVNETHDRSZ, size, 'TUNSETVNETHDRSZ');
  } catch {
    return false;
  }
  return sysIoctlValue(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4) === 0 && sysIoctlValue(fd, TUNSETOFFLOAD, 0) === 0;
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

/** A frame waiting for the kernel to take it: exactly the bytes to write (header included). */
interface QueuedFrame {
  frame: Uint8Array;
  packets: number;
  ipBytes: number;
}

class TunDeviceImpl implements TunDevice {
  readonly stats: TunStats = {
    ...emptyLinkStats(),
    rxNonIpv4: 0,
    txErrors: 0,
    txRetried: 0,
    txGso: 0,
    txGsoSegments: 0,
    rxGso: 0,
    rxChecksumTrusted: 0,
    rxOffloadDropped: 0,
  };
  readonly closed: Promise<void>;
  readonly offload: LinkOffload | undefined;
  private resolveClosed!: () => void;
  private handler: ReceiveHandler | undefined;
  /** The handler asked for offloaded packets and ReceiveInfo. */
  private handlerOffload = false;
  private rxOffloadOn = false;
  private errorHandler: ((err: Error) => void) | undefined;
  private readonly wakeFd: number;
  private readonly pollFds = Buffer.alloc(16);
  /** Bytes of virtio-net header before each packet: VNET_HDR_LEN, or 0 without offloads. */
  private readonly hdr: number;
  /** Scratch read buffer: packets are copied out of it, so handlers get buffers they own. */
  private readonly scratch: Uint8Array;
  /** Per packet of the batch being read: does the kernel vouch for its checksum. */
  private readonly trusted = new Uint8Array(MAX_BATCH);
  /** Where a frame (header + packet, or a merged super-packet) is assembled for write(). */
  private readonly frame: Uint8Array;
  private writeQueue: QueuedFrame[] = [];
  private writeRetry: NodeJS.Immediate | NodeJS.Timeout | undefined;
  private closing = false;
  private polling = false;
  private fdClosed = false;

  constructor(
    private readonly fd: number,
    readonly name: string,
    readonly mtu: number,
    vnetHdr: boolean,
  ) {
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.wakeFd = sysEventfd(O_NONBLOCK | O_CLOEXEC);
    // struct pollfd { int fd; short events; short revents; } x 2
    this.pollFds.writeInt32LE(fd, 0);
    this.pollFds.writeInt16LE(POLLIN, 4);
    this.pollFds.writeInt32LE(this.wakeFd, 8);
    this.pollFds.writeInt16LE(POLLIN, 12);
    this.hdr = vnetHdr ? VNET_HDR_LEN : 0;
    this.offload = vnetHdr ? { tso: true, csum: true } : undefined;
    // One spare byte beyond the largest packet tells a packet that filled the buffer from one that
    // was cut. A plain Uint8Array, not a Buffer, so that slice() copies.
    this.scratch = new Uint8Array(this.hdr + (vnetHdr ? MAX_IPV4 : mtu) + 1);
    this.frame = new Uint8Array(vnetHdr ? VNET_HDR_LEN + GSO_MAX_PACKET : 0);
  }

  get rxOffload(): boolean {
    return this.rxOffloadOn;
  }

  onReceive(handler: ReceiveHandler, opts?: ReceiveOptions): void {
    this.handler = handler;
    this.handlerOffload = opts?.offload === true;
    if (this.hdr > 0 && !this.closing && this.handlerOffload !== this.rxOffloadOn) {
      // Packets the kernel queued before this switch keep the form they were queued in; those a
      // handler cannot take are counted in rxOffloadDropped (only when handlers change their mind).
      const on = this.handlerOffload;
      if (sysIoctlValue(this.fd, TUNSETOFFLOAD, on ? TUN_F_CSUM | TUN_F_TSO4 : 0) === 0) this.rxOffloadOn = on;
    }
    // Start reading only once someone listens, so early packets wait in the kernel queue.
    if (!this.polling && !this.closing) this.drain();
  }

  onError(handler: (err: Error) => void): void {
    this.errorHandler = handler;
  }

  send(packets: readonly Uint8Array[], opts?: SendOptions): void {
    if (this.hdr === 0) {
      for (const p of packets) {
        if (this.closing || p.length === 0 || p.length > this.mtu) {
          this.stats.txDropped++;
          continue;
        }
        this.writeFrame(p, p.length, 1, p.length);
      }
      return;
    }
    const partial = opts?.tcpChecksumPartial === true;
    const frame = this.frame;
    const H = VNET_HDR_LEN;
    for (let i = 0; i < packets.length; ) {
      const p = packets[i]!;
      if (this.closing || p.length === 0) {
        this.stats.txDropped++;
        i++;
        continue;
      }
      // Only packets we know carry a partial checksum are merged: the super-packet gets a new
      // checksum field, and a complete checksum (perhaps deliberately corrupted by a fault link)
      // must reach the wire as it was.
      const end = partial ? coalescibleRun(packets, i, GSO_MAX_PACKET) : i + 1;
      if (end - i > 1) {
        const m = writeMerged(packets, i, end, frame, H);
        writeTcpOffloadHeader(frame, 0, 20, m.tcpHeaderLen, m.length - 20 - m.tcpHeaderLen, m.gsoSize);
        this.stats.txGso++;
        this.stats.txGsoSegments += end - i;
        this.writeFrame(frame, H + m.length, end - i, m.length);
        i = end;
        continue;
      }
      i++;
      if (p.length > this.mtu) {
        this.stats.txDropped++;
        continue;
      }
      const ihl = (p[0]! & 0x0f) * 4;
      if (partial && p[9] === 6 && (p[6]! & 0x3f) === 0 && p[7] === 0 && p.length >= ihl + 20) {
        const thl = (p[ihl + 12]! >>> 4) * 4;
        writeTcpOffloadHeader(frame, 0, ihl, thl, p.length - ihl - thl, MAX_IPV4);
      } else {
        writePlainVnetHeader(frame, 0);
      }
      frame.set(p, H);
      this.writeFrame(frame, H + p.length, 1, p.length);
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
    for (const q of this.writeQueue) this.stats.txDropped += q.packets;
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

  /**
   * Writes buf[0, len) -- one frame: header (if any) and packet -- or queues a copy of it behind
   * earlier frames the kernel had no room for. `packets`/`ipBytes` are what it carries, for stats.
   */
  private writeFrame(buf: Uint8Array, len: number, packets: number, ipBytes: number): void {
    if (this.writeQueue.length > 0) {
      this.enqueueWrite(buf, len, packets, ipBytes);
      return;
    }
    const r = this.writeOne(buf, len, packets, ipBytes);
    if (r === 'again') {
      this.stats.txRetried += packets;
      this.enqueueWrite(buf, len, packets, ipBytes);
    }
  }

  /** 'done' when written or dropped for good; 'again' when the kernel said EAGAIN. */
  private writeOne(buf: Uint8Array, len: number, packets: number, ipBytes: number): 'done' | 'again' {
    for (;;) {
      const n = sysWrite(this.fd, buf, len);
      if (n >= 0) {
        this.stats.txPackets += packets;
        this.stats.txBytes += ipBytes;
        return 'done';
      }
      if (n === -EINTR) continue;
      if (n === -EAGAIN) return 'again';
      this.stats.txErrors += packets;
      this.stats.txDropped += packets;
      return 'done';
    }
  }

  private enqueueWrite(buf: Uint8Array, len: number, packets: number, ipBytes: number): void {
    if (this.writeQueue.length >= MAX_WRITE_QUEUE) {
      this.stats.txDropped += packets;
      return;
    }
    // Copied: the Link contract lets the caller reuse its buffer once send() returns, and the
    // frame buffer is ours to reuse for the next packet.
    this.writeQueue.push({ frame: new Uint8Array(buf.subarray(0, len)), packets, ipBytes });
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
      const q = this.writeQueue[i]!;
      if (this.writeOne(q.frame, q.frame.length, q.packets, q.ipBytes) === 'again') break;
      i++;
    }
    this.writeQueue.splice(0, i);
    if (this.writeQueue.length > 0) this.scheduleWriteRetry(true);
  }

  /** Reads until EAGAIN (or MAX_BATCH), delivers the batch, then waits for readiness again. */
  private drain(): void {
    if (this.closing) return;
    const batch: Uint8Array[] = [];
    const H = this.hdr;
    const scratch = this.scratch;
    const trusted = this.trusted;
    // The largest packet the handler takes: super-segments only when it asked for them.
    const maxLen = H > 0 && this.handlerOffload ? MAX_IPV4 : this.mtu;
    let bytes = 0;
    let anyTrusted = false;
    let failure: Error | undefined;
    while (batch.length < MAX_BATCH && bytes < MAX_BATCH_BYTES) {
      const n = sysRead(this.fd, scratch, scratch.length);
      if (n === -EAGAIN) break;
      if (n === -EINTR) continue;
      if (n < 0) {
        failure = new SysError('read', -n, `tun ${this.name}`);
        break;
      }
      if (n <= H) continue;
      const version = scratch[H]! >> 4;
      if (version !== 4) {
        this.stats.rxNonIpv4++;
        this.stats.rxDropped++;
        continue;
      }
      const len = n - H;
      if (len > maxLen) {
        this.stats.rxDropped++;
        continue;
      }
      let ok = 0;
      if (H > 0) {
        const flags = scratch[0]!;
        const gso = scratch[1]!;
        if (gso !== VNET_GSO_NONE || (flags & VNET_F_NEEDS_CSUM) !== 0) {
          // Only what we asked for: TCPv4 super-segments (no ECN variant: without TUN_F_TSO_ECN
          // the kernel segments those itself), and only for a handler that takes them.
          if (!this.handlerOffload || (gso !== VNET_GSO_NONE && gso !== VNET_GSO_TCPV4)) {
            this.stats.rxOffloadDropped++;
            this.stats.rxDropped++;
            continue;
          }
          if (gso === VNET_GSO_TCPV4) this.stats.rxGso++;
        }
        if ((flags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) !== 0) {
          ok = 1;
          anyTrusted = true;
          this.stats.rxChecksumTrusted++;
        }
      }
      trusted[batch.length] = ok;
      batch.push(scratch.slice(H, n));
      bytes += len;
    }
    if (batch.length > 0) {
      this.stats.rxBytes += bytes;
      this.stats.rxPackets += batch.length;
      this.stats.rxBatches++;
      const handler = this.handler;
      if (handler === undefined) this.stats.rxDropped += batch.length;
      else {
        try {
          if (anyTrusted) {
            const info: ReceiveInfo = { checksumValid: trusted.slice(0, batch.length) };
            handler(batch, info);
          } else handler(batch);
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
    // After a batch, look again on the next turn before going back to poll(): the replies the
    // handler just wrote often bring the peer's next packets within that time, and a read that
    // finds nothing costs far less than a round trip through the thread pool.
    if (batch.length > 0) setImmediate(() => this.drain());
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
