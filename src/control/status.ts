// What `status` returns over the control socket, and what `understudy status --json` prints: a
// stable, versioned shape. Fields are added, never renamed; sequence numbers are unsigned 32-bit.

import type { FaultCounters, FaultSettings } from '../tun/fault-link.js';
import type { LinkStats } from '../tun/link.js';

export const STATUS_VERSION = 1;

export type NodeRole = 'standalone' | 'primary' | 'backup';
export type LinkName = 'client' | 'replication';

export interface NodeStatus {
  version: typeof STATUS_VERSION;
  role: NodeRole;
  epoch: number;
  pid: number;
  vip: string;
  port: number;
  service: string;
  tun: string;
  lan: string | null;
  control: string;
  metrics: string | null;
  /** Whether a backup holds every connection; `protectedReason` says why not. */
  protected: boolean;
  protectedReason: string | null;
  startedAt: string;
  uptimeMs: number;
  counters: StatusCounters;
  links: LinkStatus[];
  /** Faults applied since start, oldest first (also after `fault clear`, which is an entry). */
  faultLog: FaultLogEntry[];
  connections: ConnectionStatus[];
}

export interface StatusCounters {
  packetsIn: number;
  packetsOut: number;
  /** TCP segments that reached the TCP layer. */
  segmentsIn: number;
  bytesIn: number;
  bytesOut: number;
  /** Null while the stack does not count retransmitted segments. */
  retransmissions: number | null;
  connectionsAccepted: number;
  connectionsOpen: number;
  /** Packets dropped, by reason: the host's drop counters and the links' (fault.*, link.*). */
  drops: Record<string, number>;
  /** The host's other named counters (opens, SYN cookies, RSTs sent, ICMP). */
  events: Record<string, number>;
}

export interface LinkStatus {
  name: LinkName;
  device: string;
  faults: { in: FaultSettings; out: FaultSettings };
  /** The same as faults, in the `loss=5,delay=20` form; '' for none. */
  faultSpec: { in: string; out: string };
  faultCounters: { in: FaultCounters; out: FaultCounters };
  stats: LinkStats;
}

export interface FaultLogEntry {
  at: string;
  /** e.g. "loss 100 --link client --direction both", "clear". */
  description: string;
}

export interface SeqPosition {
  /** Absolute sequence number. */
  abs: number;
  /** Relative to the initial sequence number (ISS or IRS), like `tcpdump -S` off. */
  rel: number;
}

export interface ConnectionStatus {
  local: string;
  remote: string;
  state: string;
  iss: number;
  irs: number;
  sndUna: SeqPosition;
  sndNxt: SeqPosition;
  rcvNxt: SeqPosition;
  /** The peer's window, in bytes (scaled). */
  sndWnd: number;
  /** What is left of the window we advertised, in bytes. */
  rcvWnd: number;
  /** Bytes in the send buffer: unacknowledged plus not yet sent. */
  sendQueued: number;
  /** Bytes received in order that the service has not read. */
  unread: number;
  /** Bytes sent and not acknowledged (SND.NXT - SND.UNA). */
  inFlight: number;
  mss: number;
  cwnd: number;
  /** Null before the first loss (ssthresh still "infinite"). */
  ssthresh: number | null;
  srttMs: number | null;
  rttvarMs: number;
  rtoMs: number;
  /** Consecutive retransmission timeouts without progress (ss's retrans x/...). */
  backoff: number;
  congestionControl: string;
  inRecovery: boolean;
}
