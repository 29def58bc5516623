// The primary's LAN heartbeats (the second path of ARCHITECTURE.md 5.4) as the node sends them.
// The CLI names no LAN address for the peer (only its replication address), so by default they go
// to the broadcast address of the --lan interface's subnet: they then travel the client-facing
// network, which is the point, and reach the backup wherever it sits on that segment. The datagram
// format is lan-heartbeat.ts's. It may broadcast, and it binds to the LAN address so that the
// heartbeat cannot leave by the replication link (tests aim it at a unicast address instead).

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { ReplicationKey } from '../auth.js';
import type { Role } from '../framing.js';
import { encodeLanHeartbeat } from '../lan-heartbeat.js';

export interface LanTarget {
  /** Where the datagrams go. */
  host: string;
  port: number;
  /** Local address to send from (the LAN interface's), if known. */
  bindAddress?: string;
  broadcast: boolean;
}

/** The IPv4 address and directed broadcast address of an interface, from the process's namespace. */
export function interfaceIpv4(iface: string): { address: string; broadcast: string } | null {
  const infos = networkInterfaces()[iface];
  const v4 = infos?.find((i) => i.family === 'IPv4' && !i.internal);
  if (v4 === undefined) return null;
  const addr = v4.address.split('.').map(Number);
  const mask = v4.netmask.split('.').map(Number);
  const bcast = addr.map((b, i) => (b & mask[i]!) | (~mask[i]! & 0xff));
  return { address: v4.address, broadcast: bcast.join('.') };
}

export interface LanBeaconOptions {
  key: ReplicationKey;
  nodeId: string;
  role: () => Role;
  epoch: () => number;
  target: LanTarget;
  intervalMs: number;
}

export class LanBeacon {
  private readonly socket: UdpSocket;
  private timer: NodeJS.Timeout | null = null;
  private counter = Math.round((performance.timeOrigin + performance.now()) * 1000);
  private ready = false;
  private closed = false;
  sent = 0;
  errors = 0;

  constructor(private readonly opts: LanBeaconOptions) {
    this.socket = createSocket('udp4');
    // A heartbeat that cannot be sent is a missed heartbeat; the receiver judges silence.
    this.socket.on('error', () => this.errors++);
  }

  async start(): Promise<void> {
    const t = this.opts.target;
    await new Promise<void>((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind(0, t.bindAddress, () => {
        this.socket.off('error', reject);
        resolve();
      });
    });
    if (t.broadcast) this.socket.setBroadcast(true);
    this.ready = true;
    this.beat();
    this.timer = setInterval(() => this.beat(), this.opts.intervalMs);
    this.timer.unref();
  }

  beat(): void {
    if (!this.ready || this.closed) return;
    const o = this.opts;
    const clockUs = Math.round((performance.timeOrigin + performance.now()) * 1000);
    const d = encodeLanHeartbeat(o.key, { role: o.role(), epoch: o.epoch(), counter: ++this.counter, clockUs, nodeId: o.nodeId });
    this.socket.send(d, o.target.port, o.target.host, (err) => {
      if (err) this.errors++;
    });
    this.sent++;
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    if (this.closed) return;
    this.closed = true;
    try {
      this.socket.close();
    } catch {
      // never bound
    }
  }
}
