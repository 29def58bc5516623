// FaultLink over a link with offloads: the wrapped link's `offload`, the send option saying TCP
// checksums are partial, the receive option asking for offloads and the per-packet "checksum valid"
// flags all pass through untouched while no fault is set, and travel with their packets through
// loss, duplication, reordering and delay. A corrupted packet never keeps a flag that would let it
// pass as valid: it loses "checksum valid" on receive, and on send its partial checksum is
// completed before the byte flip and it leaves without `tcpChecksumPartial`.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { foldSum, onesSum, pseudoHeaderSum } from '../../../src/stack/wire/checksum.js';
import { parseIpv4 } from '../../../src/stack/wire/ipv4.js';
import { emitTcpIpv4 } from '../../../src/stack/wire/tcp.js';
import { IPPROTO_TCP, TCP_ACK, type TcpSegment } from '../../../src/stack/wire/types.js';
import { completeTcpChecksum, FaultLink, type FaultSettings } from '../../../src/tun/fault-link.js';
import { emptyLinkStats, type Link, type LinkOffload, type ReceiveHandler, type ReceiveInfo, type ReceiveOptions, type SendOptions } from '../../../src/tun/link.js';
import { LOCAL, PEER } from '../stack/helpers.js';

/** Records every send() with its options and every onReceive() with its options. */
class OffloadStub implements Link {
  readonly mtu = 1500;
  readonly stats = emptyLinkStats();
  readonly sends: { packets: Uint8Array[]; opts: SendOptions | undefined }[] = [];
  readonly subscriptions: (ReceiveOptions | undefined)[] = [];
  handler: ReceiveHandler | undefined;
  readonly offload: LinkOffload | undefined;
  constructor(offload: LinkOffload | 'none' = { tso: true, csum: true }) {
    this.offload = offload === 'none' ? undefined : offload;
  }
  send(packets: readonly Uint8Array[], opts?: SendOptions): void {
    this.sends.push({ packets: [...packets], opts });
  }
  onReceive(handler: ReceiveHandler, opts?: ReceiveOptions): void {
    this.handler = handler;
    this.subscriptions.push(opts);
  }
  close(): void {}
  deliver(batch: Uint8Array[], info?: ReceiveInfo): void {
    this.handler?.(batch, info);
  }
  /** Every packet sent, with whether its call said the TCP checksum is partial. */
  sentFlagged(): { packet: Uint8Array; partial: boolean }[] {
    return this.sends.flatMap((s) => s.packets.map((packet) => ({ packet, partial: s.opts?.tcpChecksumPartial === true })));
  }
}

/** A data segment to the peer numbered by its sequence number; its checksum field is partial. */
function segment(n: number, payloadLen = 100): Uint8Array {
  const payload = new Uint8Array(payloadLen).map((_, i) => (n * 31 + i * 7) & 0xff);
  const seg: TcpSegment = { srcPort: 80, dstPort: 40000, seq: 1000 + n, ack: 5, flags: TCP_ACK, window: 65535, urgent: 0, options: {}, payload };
  return emitTcpIpv4({ src: LOCAL, dst: PEER, protocol: IPPROTO_TCP, ttl: 64, tos: 0, id: n & 0xffff, df: true }, seg, { checksumOffload: true });
}
const numberOf = (p: Uint8Array): number => new DataView(p.buffer, p.byteOffset).getUint32(24) - 1000;
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** IP header checksum and full TCP checksum both verify: what a receiver would accept. */
function passesAsValid(p: Uint8Array): boolean {
  const ihl = (p[0]! & 0x0f) * 4;
  if (p[0]! >> 4 !== 4 || ihl < 20 || p.length < ihl + 20 || foldSum(onesSum(p, 0, ihl)) !== 0xffff) return false;
  const ip = parseIpv4(p);
  if ('error' in ip) return false;
  const t = ip.payload;
  return foldSum(onesSum(t, 0, t.length, pseudoHeaderSum(ip.header.src, ip.header.dst, ip.header.protocol, t.length))) === 0xffff;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('FaultLink offload pass-through', () => {
  it('shows the wrapped link offload, or none', () => {
    expect(new FaultLink(new OffloadStub()).offload).toEqual({ tso: true, csum: true });
    expect(new FaultLink(new OffloadStub('none')).offload).toBeUndefined();
  });

  it('without faults hands batches and their options through as they are', () => {
    const stub = new OffloadStub();
    const link = new FaultLink(stub);
    const batch = range(5).map((n) => segment(n));
    const opts: SendOptions = { tcpChecksumPartial: true };
    link.send(batch, opts);
    link.send([segment(9)]);
    expect(stub.sends).toHaveLength(2);
    expect(stub.sends[0]!.packets).toEqual(batch);
    expect(stub.sends[0]!.packets[0]).toBe(batch[0]); // no copies
    expect(stub.sends[0]!.opts).toEqual(opts);
    expect(stub.sends[1]!.opts?.tcpChecksumPartial).not.toBe(true);
    expect(link.stats.txPackets).toBe(6);
    expect(link.counters().out.passed).toBe(6);
  });

  it('forwards the receive option and the checksum-valid flags, re-subscribing when the option changes', () => {
    const stub = new OffloadStub();
    const link = new FaultLink(stub);
    const got: { ids: number[]; valid: number[] | undefined }[] = [];
    const handler: ReceiveHandler = (b, info) => got.push({ ids: b.map(numberOf), valid: info && [...info.checksumValid] });
    link.onReceive(handler, { offload: true });
    expect(stub.subscriptions).toEqual([{ offload: true }]);
    link.onReceive(handler, { offload: true });
    expect(stub.subscriptions).toHaveLength(1);
    stub.deliver([segment(1), segment(2)], { checksumValid: Uint8Array.of(1, 0) });
    stub.deliver([segment(3)]);
    expect(got).toEqual([
      { ids: [1, 2], valid: [1, 0] },
      { ids: [3], valid: undefined },
    ]);
    link.onReceive(handler);
    expect(stub.subscriptions).toHaveLength(2);
    expect(stub.subscriptions[1]?.offload).not.toBe(true);
  });

  const sendFaults: [string, Partial<FaultSettings>][] = [
    ['loss', { lossPct: 30 }],
    ['duplication', { duplicatePct: 40 }],
    ['reordering', { reorderPct: 30, reorderDistance: 3 }],
    ['delay with jitter', { delayMs: 10, jitterMs: 8 }],
    ['all of them', { lossPct: 10, duplicatePct: 20, reorderPct: 20, reorderDistance: 2, delayMs: 5, jitterMs: 5 }],
  ];

  it.each(sendFaults)('send: %s keeps each packet with its partial-checksum option', (_name, faults) => {
    vi.useFakeTimers();
    const stub = new OffloadStub();
    const link = new FaultLink(stub, { seed: 11, out: faults });
    // Even-numbered batches partial, odd ones complete: the two kinds interleave in the pipeline.
    for (let b = 0; b < 40; b++) {
      const batch = range(5).map((k) => segment(b * 5 + k));
      link.send(batch, b % 2 === 0 ? { tcpChecksumPartial: true } : undefined);
    }
    vi.runAllTimers();
    const sent = stub.sentFlagged();
    expect(sent.length).toBeGreaterThan(0);
    for (const s of sent) expect(s.partial, `packet ${numberOf(s.packet)}`).toBe(Math.floor(numberOf(s.packet) / 5) % 2 === 0);
    const c = link.counters().out;
    expect(c.lost + c.duplicated + c.reordered + c.delayed).toBeGreaterThan(0);
  });

  it.each(sendFaults)('receive: %s keeps each packet with its checksum-valid flag', (_name, faults) => {
    vi.useFakeTimers();
    const stub = new OffloadStub();
    const link = new FaultLink(stub, { seed: 12, in: faults });
    const got: { id: number; valid: boolean }[] = [];
    link.onReceive((b, info) => b.forEach((p, i) => got.push({ id: numberOf(p), valid: info !== undefined && info.checksumValid[i] !== 0 })), { offload: true });
    // Valid when the number is a multiple of 3.
    for (let b = 0; b < 40; b++) {
      const batch = range(5).map((k) => segment(b * 5 + k));
      stub.deliver(batch, { checksumValid: Uint8Array.from(batch, (p) => (numberOf(p) % 3 === 0 ? 1 : 0)) });
    }
    vi.runAllTimers();
    expect(got.length).toBeGreaterThan(0);
    for (const g of got) expect(g.valid, `packet ${g.id}`).toBe(g.id % 3 === 0);
  });
});

describe('FaultLink corruption with offloads', () => {
  it('completes a partial TCP checksum exactly as a receiver checks it', () => {
    for (const len of [0, 1, 99, 100, 1460]) {
      const p = segment(len, len);
      expect(passesAsValid(p)).toBe(false);
      completeTcpChecksum(p);
      expect(passesAsValid(p), `payload ${len}`).toBe(true);
    }
  });

  it('receive: a corrupted packet never keeps its checksum-valid flag', () => {
    const stub = new OffloadStub();
    const link = new FaultLink(stub, { seed: 5, in: { corruptPct: 50 } });
    const got: { packet: Uint8Array; valid: boolean }[] = [];
    link.onReceive((b, info) => b.forEach((packet, i) => got.push({ packet, valid: info !== undefined && info.checksumValid[i] !== 0 })), { offload: true });
    const originals = new Map<number, Uint8Array>();
    for (let b = 0; b < 20; b++) {
      const batch = range(10).map((k) => segment(b * 10 + k));
      batch.forEach((p) => originals.set(numberOf(p), p.slice()));
      stub.deliver(batch, { checksumValid: new Uint8Array(batch.length).fill(1) });
    }
    let corrupted = 0;
    for (const g of got) {
      // Packets differ from each other in many bytes, so one flip never turns one into another.
      const same = [...originals.values()].some((o) => o.length === g.packet.length && o.every((v, i) => v === g.packet[i]));
      if (same) expect(g.valid).toBe(true);
      else {
        corrupted++;
        expect(g.valid).toBe(false);
      }
    }
    expect(corrupted).toBe(link.counters().in.corrupted);
    expect(corrupted).toBeGreaterThan(30);
  });

  it('send: a corrupted packet gets its full checksum before the flip and leaves without the partial option', () => {
    const stub = new OffloadStub();
    const link = new FaultLink(stub, { seed: 6, out: { corruptPct: 30 } });
    const originals = range(300).map((n) => segment(n, 1 + (n % 200)));
    for (let b = 0; b < 30; b++) link.send(originals.slice(b * 10, b * 10 + 10), { tcpChecksumPartial: true });
    const sent = stub.sentFlagged();
    expect(sent).toHaveLength(300); // no loss: order is kept, so sent[i] came from originals[i]
    let corrupted = 0;
    sent.forEach((s, i) => {
      const original = originals[i]!;
      const diff = s.packet.reduce((n, byte, k) => n + (byte !== original[k] ? 1 : 0), 0);
      if (s.partial) {
        expect(diff, `packet ${i} went partial but was changed`).toBe(0);
        return;
      }
      corrupted++;
      const complete = original.slice();
      completeTcpChecksum(complete);
      const diffFromComplete = s.packet.reduce((n, byte, k) => n + (byte !== complete[k] ? 1 : 0), 0);
      expect(diffFromComplete, `packet ${i}: the complete packet with one byte flipped`).toBe(1);
      expect(passesAsValid(s.packet), `packet ${i} would be accepted`).toBe(false);
    });
    expect(corrupted).toBe(link.counters().out.corrupted);
    expect(corrupted).toBeGreaterThan(50);
    // The untouched packets still went with the partial option, in runs between corrupted ones.
    expect(stub.sends.length).toBeGreaterThan(30);
  });

  it('send: corrupting packets that already carry full checksums leaves the checksum to the flip alone', () => {
    const stub = new OffloadStub();
    const link = new FaultLink(stub, { seed: 7, out: { corruptPct: 100 } });
    const full = range(20).map((n) => {
      const p = segment(n);
      completeTcpChecksum(p);
      return p;
    });
    link.send(full);
    for (const s of stub.sentFlagged()) {
      expect(s.partial).toBe(false);
      expect(passesAsValid(s.packet)).toBe(false);
    }
  });
});
