// The stack's side of the TUN offloads, without a TUN: a host told that the link completes TCP
// checksums emits partial ones, takes segments larger than the MSS, and skips verification only
// for packets the link vouches for; the stack wires this up from Link.offload and asks the link
// for receive offloads.

import { describe, expect, it } from 'vitest';
import { createStack } from '../../../src/stack/stack.js';
import { foldSum, onesSum, pseudoHeaderSum } from '../../../src/stack/wire/checksum.js';
import { parseIpv4 } from '../../../src/stack/wire/ipv4.js';
import { emitTcpIpv4 } from '../../../src/stack/wire/tcp.js';
import { IPPROTO_TCP, TCP_ACK, TCP_PSH, TCP_SYN, type TcpSegment } from '../../../src/stack/wire/types.js';
import { emptyLinkStats, type Link, type LinkOffload, type ReceiveHandler, type ReceiveInfo, type ReceiveOptions, type SendOptions } from '../../../src/tun/link.js';
import { LOCAL, PEER, tcpOut, tcpPacket, testHost } from '../stack/helpers.js';

function tcpChecksumField(p: Uint8Array): { field: number; tcpLen: number; full: boolean } {
  const ip = parseIpv4(p);
  if ('error' in ip) throw new Error(ip.error);
  const t = ip.payload;
  const pseudo = pseudoHeaderSum(ip.header.src, ip.header.dst, IPPROTO_TCP, t.length);
  return { field: (t[16]! << 8) | t[17]!, tcpLen: t.length, full: foldSum(onesSum(t, 0, t.length, pseudo)) === 0xffff };
}

/** A data segment from the peer whose checksum field holds only the pseudo-header sum (NEEDS_CSUM). */
function partialData(seq: number, ack: number, payload: Uint8Array): Uint8Array {
  const seg: TcpSegment = { srcPort: 40000, dstPort: 80, seq, ack, flags: TCP_ACK | TCP_PSH, window: 65535, urgent: 0, options: {}, payload };
  return emitTcpIpv4({ src: PEER, dst: LOCAL, protocol: IPPROTO_TCP, ttl: 64, tos: 0, id: 2, df: true }, seg, { checksumOffload: true });
}

describe('host with TCP checksum offload', () => {
  it('emits the pseudo-header sum in the checksum field', () => {
    const host = testHost({ tcpChecksumOffload: true });
    host.listen(0, 80, 8);
    host.onPacket(0, tcpPacket({ seq: 1000, flags: TCP_SYN, options: { mss: 1460 } }));
    const [synAck] = host.takePackets(0);
    const c = tcpChecksumField(synAck!);
    expect(c.full).toBe(false);
    expect(c.field).toBe(foldSum(pseudoHeaderSum(LOCAL, PEER, IPPROTO_TCP, c.tcpLen)));
  });

  it('takes a 20000-byte super-segment the link vouches for, and drops it when the link does not', () => {
    const host = testHost();
    const l = host.listen(0, 80, 8);
    host.onPacket(0, tcpPacket({ seq: 1000, flags: TCP_SYN, options: { mss: 1460 } }));
    const [synAck] = tcpOut(host.takePackets(0));
    host.onPacket(0, tcpPacket({ seq: 1001, ack: synAck!.seq + 1, flags: TCP_ACK }));
    host.takeEvents();
    const conn = l.accept()!;
    const data = new Uint8Array(20000).map((_, i) => i * 13);
    const pkt = partialData(1001, synAck!.seq + 1, data);
    expect(pkt.length).toBeGreaterThan(1500);
    host.onPacket(1, pkt);
    expect(host.counters['tcp.bad-checksum']).toBe(1);
    expect(conn.readableLength).toBe(0);
    host.onPacket(2, pkt, true);
    expect(conn.readableLength).toBe(20000);
    expect(conn.read(3)).toEqual(data);
    // Our own output stays complete: this host was not told the link finishes checksums.
    const acks = host.takePackets(3);
    expect(acks.length).toBeGreaterThan(0);
    for (const a of acks) expect(tcpChecksumField(a).full).toBe(true);
  });
});

class FakeLink implements Link {
  readonly mtu = 1500;
  readonly stats = emptyLinkStats();
  handler: ReceiveHandler | undefined;
  receiveOptions: ReceiveOptions | undefined;
  sent: { packets: Uint8Array[]; opts: SendOptions | undefined }[] = [];
  constructor(readonly offload: LinkOffload | undefined) {}
  send(packets: readonly Uint8Array[], opts?: SendOptions): void {
    this.sent.push({ packets: packets.map((p) => new Uint8Array(p)), opts });
  }
  onReceive(handler: ReceiveHandler, opts?: ReceiveOptions): void {
    this.handler = handler;
    this.receiveOptions = opts;
  }
  close(): void {}
}

describe('stack over a link with offloads', () => {
  for (const offload of [{ tso: true, csum: true }, undefined]) {
    it(`${offload ? 'sends partial checksums and says so' : 'sends complete checksums'} when the link offers ${offload ? 'csum' : 'nothing'}`, async () => {
      const link = new FakeLink(offload);
      const stack = createStack({ link, addresses: ['198.18.0.1'] });
      try {
        // The host takes super-segments and ReceiveInfo, so it asks for receive offloads.
        expect(link.receiveOptions).toEqual({ offload: true });
        const server = stack.createServer(() => undefined);
        await new Promise<void>((r) => server.listen(80, () => r()));
        const info: ReceiveInfo = { checksumValid: Uint8Array.of(0) };
        link.handler!([tcpPacket({ seq: 1000, flags: TCP_SYN, options: { mss: 1460 } })], info);
        const out = link.sent.at(-1)!;
        expect(out.opts).toEqual(offload ? { tcpChecksumPartial: true } : undefined);
        const c = tcpChecksumField(out.packets[0]!);
        expect(c.full).toBe(!offload);
      } finally {
        await stack.close();
      }
    });
  }
});
