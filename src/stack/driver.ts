// The loop that owns I/O and time for one sans-IO host: it feeds each batch the link delivers into
// the host, hands the host's events to the socket layer, sends every packet produced as one batch,
// and keeps one real timer armed for the host's earliest deadline. User calls (writes, reads,
// closes) only `kick()` it; the flush runs in a microtask, so a burst of writes in one JavaScript
// turn leaves as one batch.

import { performance } from 'node:perf_hooks';
import type { Host, HostEvent } from './host-api.js';
import type { Micros } from './tcp/api.js';
import type { Link, ReceiveInfo, SendOptions } from '../tun/link.js';

export type Clock = () => Micros;

/** Microseconds on the monotonic clock. */
export const realClock: Clock = () => Math.floor(performance.now() * 1000);

export interface DriverOptions {
  host: Host;
  link: Link;
  /** Receives the host's events after each pass; may call back into the host. */
  onEvents: (events: HostEvent[]) => void;
  clock?: Clock;
  /**
   * The host emits TCP packets with partial checksums (HostConfig.tcpChecksumOffload): say so to
   * the link, which completes them and may merge data segments into super-packets (TSO).
   */
  tcpChecksumPartial?: boolean;
}

/** Event handlers may cause more events (accept() releases held ones); bound the rounds. */
const MAX_EVENT_ROUNDS = 8;

export class Driver {
  readonly now: Clock;
  private readonly host: Host;
  private readonly link: Link;
  private readonly onEvents: (events: HostEvent[]) => void;
  private readonly sendOptions: SendOptions | undefined;
  private scheduled = false;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  /** The deadline the armed timer was set for. */
  private armedFor = Infinity;
  /** Whether the timer keeps the process alive. */
  private refed = false;

  constructor(opts: DriverOptions) {
    this.host = opts.host;
    this.link = opts.link;
    this.onEvents = opts.onEvents;
    this.now = opts.clock ?? realClock;
    this.sendOptions = opts.tcpChecksumPartial === true ? { tcpChecksumPartial: true } : undefined;
    // The host takes TCP segments of any size up to the IPv4 maximum and skips the checksum of
    // packets the link vouches for, so the link may turn its receive offloads on.
    this.link.onReceive((packets, info) => this.onBatch(packets, info), { offload: true });
  }

  /** Something changed outside a driver pass: flush soon, once per turn. */
  kick(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    queueMicrotask(() => this.pass());
  }

  /** Runs a pass now (e.g. before closing). */
  flush(): void {
    this.pass();
  }

  /** Whether the armed timer should keep the event loop alive (open sockets, listeners). */
  setRef(ref: boolean): void {
    if (ref === this.refed) return;
    this.refed = ref;
    if (this.timer) {
      if (ref) this.timer.ref();
      else this.timer.unref();
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private onBatch(packets: Uint8Array[], info: ReceiveInfo | undefined): void {
    if (this.closed) return;
    const now = this.now();
    const host = this.host;
    const valid = info?.checksumValid;
    if (valid === undefined) for (let i = 0; i < packets.length; i++) host.onPacket(now, packets[i]!);
    else for (let i = 0; i < packets.length; i++) host.onPacket(now, packets[i]!, valid[i] !== 0);
    this.pass();
  }

  private pass(): void {
    this.scheduled = false;
    if (this.closed) return;
    const host = this.host;
    let now = this.now();
    const due = host.nextDeadline();
    if (due !== null && due <= now) host.onTimer(now);
    try {
      let round = 0;
      for (let events = host.takeEvents(); events.length > 0; events = host.takeEvents()) {
        if (++round > MAX_EVENT_ROUNDS) {
          // Leave the rest to the next turn rather than spin here.
          this.kick();
          break;
        }
        this.onEvents(events);
      }
    } finally {
      // A throwing event handler must not leave the packets unsent and the timer unarmed.
      now = this.now();
      const packets = host.takePackets(now);
      if (packets.length > 0) this.link.send(packets, this.sendOptions);
      this.arm(now);
    }
  }

  private arm(now: Micros): void {
    const deadline = this.host.nextDeadline();
    if (deadline === null) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.armedFor = Infinity;
      return;
    }
    // A timer already set to fire no later than needed does; the pass it runs re-arms.
    if (this.timer !== null && this.armedFor <= deadline) return;
    if (this.timer) clearTimeout(this.timer);
    const delayMs = Math.max(0, Math.ceil((deadline - now) / 1000));
    this.armedFor = deadline;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.armedFor = Infinity;
      this.pass();
    }, delayMs);
    if (!this.refed) this.timer.unref();
  }
}
