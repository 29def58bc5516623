// The sans-IO host: IPv4 packets in, IPv4 packets out, for a set of local addresses (the VIPs).
// It owns demultiplexing by 4-tuple, listeners (half-open queue, SYN cookies), ICMP echo and
// errors, RST for segments that match nothing, and IP fragment reassembly. The driver (real clock,
// real link) and the conformance runner (virtual clock, scripted packets) both drive this.

import type { Micros, TcpConfig, TcpConnection, TcpEnv } from './tcp/api.js';
import type { FourTuple, Ipv4Addr } from './wire/types.js';

export interface HostConfig {
  /** Addresses the host answers for. */
  addresses: Ipv4Addr[];
  /** Link MTU: bounds the MSS we offer and every packet we emit. */
  mtu: number;
  tcp: TcpConfig;
  env: TcpEnv;
  /** Most half-open (SYN-RECEIVED) connections per listener before SYN cookies take over. */
  synBacklog: number;
  /**
   * Secret for SYN cookies; random when omitted (only this host ever checks its cookies). A
   * replicated pair shares one, so that the node taking over accepts the cookies the other sent.
   */
  synCookieKey?: Uint8Array;
  /**
   * Added to the host's clock to get the time SYN cookies are stamped with (their 64 s slot). Nodes
   * that check each other's cookies need one common time: their driver clocks start at their own
   * boot, so they pass the offset that turns it into wall-clock time. Default 0.
   */
  synCookieClockOffsetUs?: Micros;
  /** Answer ICMP echo requests to our addresses. */
  icmpEcho: boolean;
  /**
   * Emit TCP packets with only the pseudo-header sum in the checksum field, for a link that
   * completes it (Link.offload.csum, sent with SendOptions.tcpChecksumPartial). Default false.
   */
  tcpChecksumOffload?: boolean;
}

export interface TcpListener {
  readonly addr: Ipv4Addr; // 0 = any of the host's addresses
  readonly port: number;
  /** Established connections waiting for accept(), at most `backlog`. */
  accept(): TcpConnection | undefined;
  readonly pendingCount: number;
  close(now: Micros): void;
}

export type HostEvent =
  | { type: 'accept-ready'; listener: TcpListener } // accept() has something
  | { type: 'connection'; conn: TcpConnection; event: import('./tcp/api.js').TcpEvent };

/** Named drop and event counters, e.g. `ip.bad-checksum`, `tcp.no-listener-rst`. */
export type Counters = Record<string, number>;

export interface Host {
  /**
   * One IPv4 packet, which may be larger than the MTU (a TCP super-segment from a link with receive
   * offload). `checksumValid`: the link vouches for its TCP checksum, which is then not verified.
   */
  onPacket(now: Micros, packet: Uint8Array, checksumValid?: boolean): void;
  onTimer(now: Micros): void;
  /** IPv4 packets to transmit, produced by everything since the last call (including user calls). */
  takePackets(now: Micros): Uint8Array[];
  takeEvents(): HostEvent[];
  nextDeadline(): Micros | null;

  /** Throws an Error with code 'EADDRINUSE' when the port is taken. */
  listen(addr: Ipv4Addr, port: number, backlog: number): TcpListener;
  /** Active open; local port 0 picks an ephemeral one. */
  connect(now: Micros, tuple: FourTuple, config?: Partial<TcpConfig>): TcpConnection;
  readonly connections: ReadonlyMap<string, TcpConnection>;
  readonly counters: Counters;
  /**
   * Files a connection built outside the listeners (a backup's promoted shadow, restored from a
   * TCB snapshot) into the tables, as if it had always been here; returns the hosted handle whose
   * events the host reports. Throws EADDRINUSE when its 4-tuple is taken.
   */
  adoptConnection?(inner: TcpConnection): TcpConnection;
  /**
   * Accepts returning SYN cookies (under this host's key) for their whole validity from `now` on,
   * as if every listener had just sent one. For a node taking over from a primary that may have
   * been answering SYNs with cookies: their ACKs now arrive here.
   */
  honourSynCookies?(now: Micros): void;
  /** The TCP settings of this host's connections (MSS bounded by the MTU). */
  readonly tcp?: TcpConfig;
}
