import { describe, expect, it } from 'vitest';
import { isWireError } from '../../../src/stack/wire/errors.js';
import { Reassembler, type ReassemblerConfig } from '../../../src/stack/wire/fragments.js';
import { emitIpv4, fragmentIpv4, parseIpv4, type Ipv4Packet } from '../../../src/stack/wire/ipv4.js';
import { IPPROTO_UDP, type Ipv4Header } from '../../../src/stack/wire/types.js';

const header: Ipv4Header = { src: 0xc6120001, dst: 0xc6120064, protocol: IPPROTO_UDP, ttl: 64, tos: 0, id: 4242, df: false };

function pattern(n: number, seed = 0): Uint8Array {
  return new Uint8Array(n).map((_, i) => (i * 7 + seed) & 0xff);
}

function parse(bytes: Uint8Array): Ipv4Packet {
  const r = parseIpv4(bytes);
  if (isWireError(r)) throw new Error(r.error);
  return r;
}

/** A fragment of `header`'s datagram carrying `payload` at `offset`. */
function frag(offset: number, payload: Uint8Array, more: boolean, h: Ipv4Header = header): Ipv4Packet {
  return parse(emitIpv4(h, payload, { fragmentOffset: offset, moreFragments: more }));
}

function fragmentsOf(payload: Uint8Array, mtu: number, h: Ipv4Header = header): Ipv4Packet[] {
  return fragmentIpv4(h, payload, mtu).map(parse);
}

function pushAll(r: Reassembler, now: number, frags: Ipv4Packet[]): Ipv4Packet[] {
  const out: Ipv4Packet[] = [];
  for (const f of frags) {
    const d = r.push(now, f);
    if (d) out.push(d);
  }
  return out;
}

function make(config: Partial<ReassemblerConfig> = {}): Reassembler {
  return new Reassembler({ timeoutUs: 1_000_000, ...config });
}

describe('IPv4 fragment reassembly', () => {
  it('reassembles fragments given in order, with the first fragment header', () => {
    const payload = pattern(4000);
    const r = make();
    const out = pushAll(r, 0, fragmentsOf(payload, 1500));
    expect(out).toHaveLength(1);
    expect(Array.from(out[0]!.payload)).toEqual(Array.from(payload));
    expect(out[0]!.header).toEqual(header);
    expect(out[0]!.moreFragments).toBe(false);
    expect(out[0]!.fragmentOffset).toBe(0);
    expect(r.bytesHeld).toBe(0);
    expect(r.datagramsInFlight).toBe(0);
    expect(r.counters['frag.reassembled']).toBe(1);
  });

  it('reassembles fragments given in reverse and shuffled order', () => {
    const payload = pattern(5000, 3);
    const frags = fragmentsOf(payload, 576);
    const r = make();
    const rev = pushAll(r, 0, [...frags].reverse());
    expect(rev).toHaveLength(1);
    expect(Array.from(rev[0]!.payload)).toEqual(Array.from(payload));
    expect(frags).toHaveLength(10);
    const order = [3, 0, 8, 1, 9, 5, 2, 7, 4, 6];
    const shuffled = order.map((k) => frags[k]!);
    const again = pushAll(r, 0, shuffled);
    expect(again).toHaveLength(1);
    expect(Array.from(again[0]!.payload)).toEqual(Array.from(payload));
  });

  it('keeps datagrams with different ids, protocols or addresses apart', () => {
    const variants: Ipv4Header[] = [header, { ...header, id: 4243 }, { ...header, protocol: 6 }, { ...header, src: 0xc6120002 }, { ...header, dst: 0xc6120065 }];
    const sets = variants.map((h, k) => fragmentsOf(pattern(2000, k), 1000, h));
    const r = make();
    // Interleave: all first fragments, then all second, then all third.
    const out = pushAll(r, 0, [0, 1, 2].flatMap((i) => sets.map((s) => s[i]!)));
    expect(out).toHaveLength(variants.length);
    out.forEach((d, k) => {
      expect(d.header).toEqual(variants[k]);
      expect(Array.from(d.payload)).toEqual(Array.from(pattern(2000, k)));
    });
  });

  it('copies fragment bytes so that the caller may reuse its buffer', () => {
    const bytes = emitIpv4(header, pattern(16), { fragmentOffset: 0, moreFragments: true });
    const r = make();
    r.push(0, parse(bytes));
    bytes.fill(0);
    const d = r.push(0, frag(16, pattern(8, 16 * 7), false));
    expect(Array.from(d!.payload.subarray(0, 16))).toEqual(Array.from(pattern(16)));
  });

  it('returns a packet that is not a fragment unchanged', () => {
    const p = parse(emitIpv4(header, pattern(10)));
    expect(make().push(0, p)).toBe(p);
  });

  it('drops an exact duplicate but keeps the datagram', () => {
    const frags = fragmentsOf(pattern(3000), 1500);
    const r = make();
    expect(r.push(0, frags[0]!)).toBeUndefined();
    expect(r.push(0, frags[0]!)).toBeUndefined();
    expect(r.counters['frag.duplicate']).toBe(1);
    const out = pushAll(r, 0, frags.slice(1));
    expect(out).toHaveLength(1);
  });

  it('discards the whole datagram on overlap, and its later fragments until the timeout', () => {
    const r = make();
    r.push(0, frag(0, pattern(16), true));
    r.push(0, frag(8, pattern(16), true)); // overlaps [8,16)
    expect(r.counters['frag.overlap']).toBe(1);
    expect(r.bytesHeld).toBe(0);
    // Fragments that would otherwise complete a datagram are refused.
    expect(r.push(0, frag(0, pattern(16), true))).toBeUndefined();
    expect(r.push(0, frag(16, pattern(8), false))).toBeUndefined();
    expect(r.counters['frag.after-discard']).toBe(2);
    // After the timeout the key is free again and a fresh datagram reassembles.
    expect(r.expire(1_000_000)).toEqual([]);
    expect(r.datagramsInFlight).toBe(0);
    r.push(1_000_001, frag(0, pattern(16), true));
    expect(r.push(1_000_001, frag(16, pattern(8), false))?.payload.length).toBe(24);
  });

  it('treats a fragment that covers another, or sits inside it, as overlap', () => {
    const r1 = make();
    r1.push(0, frag(8, pattern(8), true));
    r1.push(0, frag(0, pattern(24), true));
    expect(r1.counters['frag.overlap']).toBe(1);
    const r2 = make();
    r2.push(0, frag(0, pattern(32), true));
    r2.push(0, frag(8, pattern(8), true));
    expect(r2.counters['frag.overlap']).toBe(1);
  });

  it('discards a datagram whose last fragments disagree on its length or get data beyond it', () => {
    const r = make();
    r.push(0, frag(16, pattern(8), false));
    r.push(0, frag(32, pattern(8), false));
    expect(r.counters['frag.end-conflict']).toBe(1);
    const r2 = make();
    r2.push(0, frag(0, pattern(16), false, { ...header, id: 1 }));
    r2.push(0, frag(0, pattern(8), true, { ...header, id: 2 }));
    r2.push(0, frag(64, pattern(8), true, { ...header, id: 2 }));
    r2.push(0, frag(16, pattern(8), false, { ...header, id: 2 }));
    expect(r2.counters['frag.beyond-end']).toBe(1);
    const r3 = make();
    r3.push(0, frag(16, pattern(8), false));
    r3.push(0, frag(24, pattern(8), true));
    expect(r3.counters['frag.beyond-end']).toBe(1);
  });

  it('drops non-last fragments that are empty or not a multiple of 8 bytes', () => {
    const r = make();
    r.push(0, frag(0, pattern(10), true));
    r.push(0, frag(0, new Uint8Array(0), true));
    expect(r.counters['frag.bad-length']).toBe(2);
    expect(r.datagramsInFlight).toBe(0);
  });

  it('times out incomplete datagrams, saying which had their first fragment', () => {
    const r = make();
    r.push(100, frag(0, pattern(16), true));
    r.push(100, frag(8 * 100, pattern(8), false, { ...header, id: 7 }));
    expect(r.nextDeadline()).toBe(1_000_100);
    expect(r.expire(1_000_099)).toEqual([]);
    const expired = r.expire(1_000_100);
    expect(expired.map((e) => [e.packet.header.id, e.haveFirstFragment, e.packet.fragmentOffset])).toEqual([
      [4242, true, 0],
      [7, false, 800],
    ]);
    expect(Array.from(expired[0]!.packet.payload)).toEqual(Array.from(pattern(16)));
    expect(r.counters['frag.timeout']).toBe(2);
    expect(r.bytesHeld).toBe(0);
    expect(r.nextDeadline()).toBeNull();
  });

  it('expires old datagrams on push too, so a late fragment starts afresh', () => {
    const r = make();
    r.push(0, frag(0, pattern(16), true));
    expect(r.push(2_000_000, frag(16, pattern(8), false))).toBeUndefined();
    expect(r.counters['frag.timeout']).toBe(1);
    expect(r.datagramsInFlight).toBe(1);
  });

  it('evicts the oldest datagram when too many are in flight', () => {
    const r = make({ maxDatagrams: 2 });
    for (let id = 1; id <= 3; id++) r.push(id, frag(0, pattern(8), true, { ...header, id }));
    expect(r.datagramsInFlight).toBe(2);
    expect(r.counters['frag.evicted']).toBe(1);
    // id 1 is gone: its last fragment alone does not complete it; id 3 still completes.
    expect(r.push(10, frag(8, pattern(8), false, { ...header, id: 1 }))).toBeUndefined();
    expect(r.push(10, frag(8, pattern(8), false, { ...header, id: 3 }))?.payload.length).toBe(16);
  });

  it('holds at most maxBytes, evicting older datagrams and refusing one that alone is too big', () => {
    const r = make({ maxBytes: 100 });
    r.push(0, frag(0, pattern(64), true, { ...header, id: 1 }));
    r.push(0, frag(0, pattern(64), true, { ...header, id: 2 }));
    expect(r.bytesHeld).toBe(64);
    expect(r.counters['frag.evicted']).toBe(1);
    r.push(0, frag(64, pattern(48), true, { ...header, id: 2 }));
    expect(r.counters['frag.over-memory']).toBe(1);
    expect(r.bytesHeld).toBe(0);
    r.push(0, frag(0, pattern(104), true, { ...header, id: 3 }));
    expect(r.counters['frag.over-memory']).toBe(2);
    expect(r.bytesHeld).toBe(0);
  });

  it('discards a datagram split into more fragments than allowed', () => {
    const r = make({ maxFragmentsPerDatagram: 4 });
    const out = pushAll(r, 0, fragmentsOf(pattern(400), 60));
    expect(out).toHaveLength(0);
    expect(r.counters['frag.too-many-fragments']).toBe(1);
    expect(r.bytesHeld).toBe(0);
  });

  it('refuses a fragment that would end past 65515 payload bytes', () => {
    const r = make();
    const big: Ipv4Packet = { header, payload: new Uint8Array(16), headerLength: 20, fragmentOffset: 65512, moreFragments: false };
    expect(r.push(0, big)).toBeUndefined();
    expect(r.counters['frag.too-big']).toBe(1);
  });

  it('reassembles a datagram of the largest size', () => {
    const payload = pattern(65515);
    const r = make();
    const out = pushAll(r, 0, fragmentsOf(payload, 9000));
    expect(out[0]?.payload.length).toBe(65515);
  });
});
