import { describe, expect, it } from 'vitest';
import { internetChecksum } from '../../../src/stack/wire/checksum.js';
import { isWireError } from '../../../src/stack/wire/errors.js';
import {
  emitIcmp,
  emitIcmpError,
  emitIcmpIpv4,
  icmpErrorPermitted,
  parseIcmp,
  type IcmpMessage,
} from '../../../src/stack/wire/icmp.js';
import { emitIpv4, parseIpv4 } from '../../../src/stack/wire/ipv4.js';
import { emitTcpIpv4 } from '../../../src/stack/wire/tcp.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, type Ipv4Header } from '../../../src/stack/wire/types.js';

const VIP = 0xc6120064;
const CLIENT = 0xc6120001;
const ROUTER = 0xc61200fe;
const toRouter: Ipv4Header = { src: ROUTER, dst: VIP, protocol: IPPROTO_ICMP, ttl: 64, tos: 0, id: 1, df: false };

function parsed(bytes: Uint8Array): IcmpMessage {
  const r = parseIcmp(bytes, true);
  if (isWireError(r)) throw new Error(`unexpected ${r.error}`);
  return r;
}

/** A TCP packet the VIP sent to the client: what an ICMP error about our traffic quotes. */
function ourTcpPacket(payloadLength = 0): Uint8Array {
  return emitTcpIpv4(
    { src: VIP, dst: CLIENT, protocol: IPPROTO_TCP, ttl: 64, tos: 0, id: 99, df: true },
    {
      srcPort: 80,
      dstPort: 40001,
      seq: 0xdeadbeef,
      ack: 1,
      flags: TCP_ACK,
      window: 100,
      urgent: 0,
      options: {},
      payload: new Uint8Array(payloadLength),
    },
  );
}

describe('ICMP', () => {
  it('round-trips an echo request and reply with id, sequence and data', () => {
    const data = Uint8Array.from([1, 2, 3, 4, 5]);
    for (const kind of ['echo-request', 'echo-reply'] as const) {
      const bytes = emitIcmp({ kind, id: 0xabcd, sequence: 7, data });
      expect(bytes[0]).toBe(kind === 'echo-request' ? 8 : 0);
      expect(internetChecksum(bytes)).toBe(0);
      const m = parsed(bytes);
      expect(m).toMatchObject({ kind, id: 0xabcd, sequence: 7 });
      expect(m.kind === kind && Array.from(m.data)).toEqual([1, 2, 3, 4, 5]);
    }
  });

  it('rejects a bad checksum when verifying and a message under 8 bytes', () => {
    const bytes = emitIcmp({ kind: 'echo-request', id: 1, sequence: 1, data: new Uint8Array(4) });
    bytes[9] ^= 1;
    const r = parseIcmp(bytes, true);
    expect(isWireError(r) && r.error).toBe('icmp.bad-checksum');
    expect(isWireError(parseIcmp(bytes, false))).toBe(false);
    const t = parseIcmp(new Uint8Array(7), false);
    expect(isWireError(t) && t.error).toBe('icmp.truncated');
  });

  it('parses frag-needed with the next-hop MTU and the quoted TCP ports and sequence', () => {
    const pkt = emitIcmpError(toRouter, { kind: 'dest-unreachable', code: 4, mtu: 1400 }, ourTcpPacket(1460));
    const ipp = parseIpv4(pkt);
    if (isWireError(ipp)) throw new Error(ipp.error);
    const m = parsed(ipp.payload);
    expect(m.kind).toBe('dest-unreachable');
    if (m.kind !== 'dest-unreachable') return;
    expect(m.code).toBe(4);
    expect(m.mtu).toBe(1400);
    expect(m.quote.header).toMatchObject({ src: VIP, dst: CLIENT, protocol: IPPROTO_TCP, id: 99, df: true });
    expect(m.quote).toMatchObject({ srcPort: 80, dstPort: 40001, seq: 0xdeadbeef, fragmentOffset: 0 });
  });

  it('reports mtu 0 for unreachable codes other than 4', () => {
    const m = parsed(emitIcmpIpv4(toRouter, {
      kind: 'dest-unreachable',
      code: 3,
      mtu: 1400,
      quote: { header: toRouter, fragmentOffset: 0, srcPort: 0, dstPort: 0, seq: 0, bytes: ourTcpPacket() },
    }).subarray(20));
    expect(m.kind === 'dest-unreachable' && m.mtu).toBe(0);
  });

  it('parses time exceeded and parameter problem with their quotes', () => {
    const te = parsed(emitIcmpError(toRouter, { kind: 'time-exceeded', code: 0 }, ourTcpPacket()).subarray(20));
    expect(te).toMatchObject({ kind: 'time-exceeded', code: 0, quote: { srcPort: 80, dstPort: 40001, seq: 0xdeadbeef } });
    const pp = parsed(emitIcmpError(toRouter, { kind: 'parameter-problem', code: 0, pointer: 9 }, ourTcpPacket()).subarray(20));
    expect(pp).toMatchObject({ kind: 'parameter-problem', pointer: 9, quote: { dstPort: 40001 } });
  });

  it('rejects an error whose quote lacks the IP header or the first 8 transport bytes', () => {
    const full = ourTcpPacket();
    for (const cut of [0, 19, 27]) {
      const bytes = emitIcmp({ kind: 'other', type: 3, code: 1, rest: 0, data: full.subarray(0, cut) });
      const r = parseIcmp(bytes, true);
      expect(isWireError(r) && r.error).toBe('icmp.bad-quote');
    }
    const enough = emitIcmp({ kind: 'other', type: 3, code: 1, rest: 0, data: full.subarray(0, 28) });
    expect(parsed(enough).kind).toBe('dest-unreachable');
  });

  it('passes other types through with their header word and data', () => {
    const m = parsed(emitIcmp({ kind: 'other', type: 13, code: 0, rest: 0x01020304, data: Uint8Array.from([5]) }));
    expect(m).toMatchObject({ kind: 'other', type: 13, code: 0, rest: 0x01020304 });
  });

  it('quotes at most 576 bytes in total and never the link padding', () => {
    const big = emitIcmpError(toRouter, { kind: 'dest-unreachable', code: 3 }, ourTcpPacket(1400));
    expect(big.length).toBe(576);
    const small = ourTcpPacket(4);
    const padded = new Uint8Array(small.length + 10);
    padded.set(small);
    const e = emitIcmpError(toRouter, { kind: 'dest-unreachable', code: 3 }, padded);
    expect(e.length).toBe(20 + 8 + small.length);
    expect(Array.from(e.subarray(28))).toEqual(Array.from(small));
  });

  it('allows errors about ordinary unicast packets and echo requests', () => {
    expect(icmpErrorPermitted(ourTcpPacket())).toBe(true);
    const echo = emitIcmpIpv4({ ...toRouter, src: CLIENT }, { kind: 'echo-request', id: 1, sequence: 1, data: new Uint8Array(0) });
    expect(icmpErrorPermitted(echo)).toBe(true);
  });

  it('forbids errors about ICMP errors, non-initial fragments, multicast or broadcast and odd sources (RFC 1122 3.2.2)', () => {
    const aboutError = emitIcmpError(toRouter, { kind: 'time-exceeded', code: 0 }, ourTcpPacket());
    expect(icmpErrorPermitted(aboutError)).toBe(false);
    const base: Ipv4Header = { src: CLIENT, dst: VIP, protocol: IPPROTO_UDP, ttl: 64, tos: 0, id: 5, df: false };
    expect(icmpErrorPermitted(emitIpv4(base, new Uint8Array(8)))).toBe(true);
    expect(icmpErrorPermitted(emitIpv4(base, new Uint8Array(8), { fragmentOffset: 8, moreFragments: false }))).toBe(false);
    expect(icmpErrorPermitted(emitIpv4(base, new Uint8Array(8), { fragmentOffset: 0, moreFragments: true }))).toBe(true);
    for (const dst of [0xe0000001, 0xffffffff, 0xf0000001]) {
      expect(icmpErrorPermitted(emitIpv4({ ...base, dst }, new Uint8Array(8)))).toBe(false);
    }
    for (const src of [0, 0x7f000001, 0xe0000001, 0xffffffff]) {
      expect(icmpErrorPermitted(emitIpv4({ ...base, src }, new Uint8Array(8)))).toBe(false);
    }
    expect(icmpErrorPermitted(new Uint8Array(10))).toBe(false);
  });
});
