// ICMP addressed to the host: echo requests are answered, errors are handed to the connection whose
// segment they quote, everything else is counted and dropped. Also the Time Exceeded the host owes
// for a datagram whose reassembly timed out.

import type { HostConfig } from './host-api.js';
import type { HostedConnection } from './hosted-connection.js';
import type { IcmpErrorKind, Micros } from './tcp/api.js';
import {
  emitIcmp,
  emitIcmpError,
  ICMP_TIME_EXCEEDED_REASSEMBLY,
  ICMP_UNREACH_FRAG_NEEDED,
  parseIcmp,
  type IcmpQuote,
} from './wire/icmp.js';
import { emitIpv4, fragmentIpv4, type Ipv4Packet } from './wire/ipv4.js';
import { IPPROTO_ICMP, IPPROTO_TCP, type FourTuple, type Ipv4Header } from './wire/types.js';

/** What the handler needs from the host. */
export interface IcmpContext {
  readonly config: HostConfig;
  count(name: string): void;
  isLocal(a: number): boolean;
  replyHeader(to: Ipv4Header, protocol: number): Ipv4Header;
  emitPacket(p: Uint8Array): void;
  findConnection(t: FourTuple): HostedConnection | undefined;
  icmpErrorAllowed(now: Micros): boolean;
}

export function handleIcmp(ctx: IcmpContext, now: Micros, ip: Ipv4Packet): void {
  const msg = parseIcmp(ip.payload, true);
  if ('error' in msg) {
    ctx.count(msg.error);
    return;
  }
  switch (msg.kind) {
    case 'echo-request': {
      if (!ctx.config.icmpEcho) {
        ctx.count('icmp.echo-ignored');
        return;
      }
      ctx.count('icmp.echo-reply-sent');
      // RFC 1122 3.2.2.6: "The data received in the ICMP Echo Request MUST be entirely included
      // in the resulting Echo Reply." A large (reassembled) request gets a fragmented reply.
      const header = { ...ctx.replyHeader(ip.header, IPPROTO_ICMP), tos: ip.header.tos };
      const body = emitIcmp({ kind: 'echo-reply', id: msg.id, sequence: msg.sequence, data: msg.data });
      for (const p of fragmentIpv4(header, body, ctx.config.mtu)) ctx.emitPacket(p);
      return;
    }
    case 'dest-unreachable':
      toConnection(
        ctx,
        now,
        msg.quote,
        msg.code === ICMP_UNREACH_FRAG_NEEDED ? { kind: 'frag-needed', mtu: msg.mtu } : { kind: 'unreachable', code: msg.code },
      );
      return;
    case 'time-exceeded':
      toConnection(ctx, now, msg.quote, { kind: 'time-exceeded' });
      return;
    default:
      // Echo replies (we send no requests), parameter problems (RFC 1122 4.2.3.9 lets TCP merely
      // report them, and nothing here would act on the report), source quench (RFC 6633: "MUST
      // silently discard"), and unknown types.
      ctx.count(`icmp.${msg.kind}-ignored`);
  }
}

function toConnection(ctx: IcmpContext, now: Micros, quote: IcmpQuote, err: IcmpErrorKind): void {
  const q = quote.header;
  // The quoted packet must be one of ours: TCP, sent from our address, carrying the ports.
  if (q.protocol !== IPPROTO_TCP || !ctx.isLocal(q.src) || quote.fragmentOffset !== 0) {
    ctx.count('icmp.error-not-ours');
    return;
  }
  const c = ctx.findConnection({ localAddr: q.src, localPort: quote.srcPort, remoteAddr: q.dst, remotePort: quote.dstPort });
  if (c === undefined) {
    ctx.count('icmp.error-no-connection');
    return;
  }
  ctx.count('icmp.error-delivered');
  // The quoted sequence number lets the core apply RFC 5927 section 4.1: "TCP SHOULD check that
  // the TCP sequence number contained in the payload of the ICMP error message is within the
  // range SND.UNA =< SEG.SEQ < SND.NXT."
  c.onIcmpError(now, err, quote.seq);
}

/**
 * RFC 1122 3.3.2: "If the fragment reassembly timer expires ... if fragment zero has been
 * received, an ICMP Time Exceeded -- Reassembly Timeout message SHOULD be sent to the source".
 */
export function reassemblyTimeExceeded(ctx: IcmpContext, now: Micros, first: Ipv4Packet): void {
  if (!ctx.icmpErrorAllowed(now)) return;
  const p = first;
  // The first fragment's header and the start of its data: what RFC 792 asks an error to quote.
  const quoted = emitIpv4(p.header, p.payload.subarray(0, 8), { fragmentOffset: 0, moreFragments: true });
  ctx.count('icmp.reassembly-timeout-sent');
  ctx.emitPacket(
    emitIcmpError(ctx.replyHeader(p.header, IPPROTO_ICMP), { kind: 'time-exceeded', code: ICMP_TIME_EXCEEDED_REASSEMBLY }, quoted),
  );
}
