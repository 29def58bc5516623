// Plain-data forms of the packets the stack handles. Wire code parses bytes into these and emits
// these into bytes; the TCP core only ever sees these objects (and payload slices).

import type { SeqNum } from './seq.js';

/** An IPv4 address as an unsigned 32-bit number (198.18.0.1 = 0xc6120001). */
export type Ipv4Addr = number;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

export interface SackBlock {
  left: SeqNum;
  right: SeqNum;
}

export interface TcpTimestamp {
  tsval: number;
  tsecr: number;
}

/** Options present on a segment; absent ones are undefined. Unknown options are skipped on parse. */
export interface TcpOptions {
  mss?: number;
  wscale?: number;
  sackPermitted?: boolean;
  sack?: SackBlock[];
  timestamp?: TcpTimestamp;
  /**
   * Order to emit the options in, when it matters (the conformance profile uses FreeBSD's
   * `mss,nop,wscale,sackOK,TS`). Undefined means the emitter's default layout.
   */
  layout?: 'linux' | 'freebsd';
  /**
   * Set by the parser when an option had an illegal length (see parseTcpOptions in tcp.ts): the
   * options before it were kept, the rest ignored. Ignored by the emitter.
   */
  malformed?: boolean;
}

export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: SeqNum;
  ack: SeqNum;
  /** Bitwise OR of the TCP_* flag constants. */
  flags: number;
  /** The raw 16-bit window field, before scaling. */
  window: number;
  urgent: number;
  options: TcpOptions;
  payload: Uint8Array;
}

export interface Ipv4Header {
  src: Ipv4Addr;
  dst: Ipv4Addr;
  protocol: number;
  ttl: number;
  tos: number;
  id: number;
  /** Don't Fragment flag. */
  df: boolean;
}

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** The 4-tuple of a connection seen from the stack: local is the VIP side. */
export interface FourTuple {
  localAddr: Ipv4Addr;
  localPort: number;
  remoteAddr: Ipv4Addr;
  remotePort: number;
}

export function ipv4ToString(a: Ipv4Addr): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** Parses dotted-quad text; returns undefined for anything that is not exactly four octets. */
export function ipv4FromString(s: string): Ipv4Addr | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = v * 256 + n;
  }
  return v >>> 0;
}

export function tupleKey(t: FourTuple): string {
  return `${t.localAddr}:${t.localPort}-${t.remoteAddr}:${t.remotePort}`;
}
