// Builds and reads the IPv4 packets that host tests feed to and take from a sans-IO host.

import { createHost } from '../../../src/stack/host.js';
import type { Host, HostConfig } from '../../../src/stack/host-api.js';
import { createTcpEnv } from '../../../src/stack/env.js';
import { defaultTcpConfig } from '../../../src/stack/tcp/config.js';
import { parseIpv4 } from '../../../src/stack/wire/ipv4.js';
import { emitTcpIpv4, parseTcp } from '../../../src/stack/wire/tcp.js';
import { IPPROTO_TCP, ipv4FromString, type TcpOptions, type TcpSegment } from '../../../src/stack/wire/types.js';

export const LOCAL = ipv4FromString('198.18.0.1')!;
export const PEER = ipv4FromString('198.18.0.2')!;
export const OTHER = ipv4FromString('198.18.0.3')!;

/** A deterministic random source (xorshift32). */
export function seededRandom(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

export function testHost(over: Partial<HostConfig> = {}): Host {
  return createHost({
    addresses: [LOCAL],
    mtu: 1500,
    tcp: defaultTcpConfig(),
    env: createTcpEnv({ isnKey: new Uint8Array(16), random: seededRandom(7), tsOffset: 0 }),
    synBacklog: 16,
    icmpEcho: true,
    ...over,
  });
}

export interface SegSpec {
  srcPort?: number;
  dstPort?: number;
  seq?: number;
  ack?: number;
  flags: number;
  window?: number;
  options?: TcpOptions;
  payload?: Uint8Array;
  src?: number;
  dst?: number;
}

/** An IPv4 packet from the peer carrying the described segment. */
export function tcpPacket(s: SegSpec): Uint8Array {
  const seg: TcpSegment = {
    srcPort: s.srcPort ?? 40000,
    dstPort: s.dstPort ?? 80,
    seq: s.seq ?? 1000,
    ack: s.ack ?? 0,
    flags: s.flags,
    window: s.window ?? 65535,
    urgent: 0,
    options: s.options ?? {},
    payload: s.payload ?? new Uint8Array(0),
  };
  return emitTcpIpv4(
    { src: s.src ?? PEER, dst: s.dst ?? LOCAL, protocol: IPPROTO_TCP, ttl: 64, tos: 0, id: 1, df: true },
    seg,
  );
}

export interface OutSegment extends TcpSegment {
  src: number;
  dst: number;
}

/** Parses every TCP packet the host emitted; throws on anything malformed. */
export function tcpOut(packets: Uint8Array[]): OutSegment[] {
  return packets.map((p) => {
    const ip = parseIpv4(p);
    if ('error' in ip) throw new Error(`bad IPv4 out: ${ip.error}`);
    if (ip.header.protocol !== IPPROTO_TCP) throw new Error(`not TCP: ${ip.header.protocol}`);
    const seg = parseTcp(ip.payload, ip.header.src, ip.header.dst, true);
    if ('error' in seg) throw new Error(`bad TCP out: ${seg.error}`);
    return { ...seg, src: ip.header.src, dst: ip.header.dst };
  });
}
