import { describe, expect, it } from 'vitest';
import { internetChecksum } from '../../../src/stack/wire/checksum.js';
import { isWireError } from '../../../src/stack/wire/errors.js';
import { emitIpv4, fragmentIpv4, parseIpv4, writeIpv4Header, type Ipv4Packet } from '../../../src/stack/wire/ipv4.js';
import { IPPROTO_TCP, IPPROTO_UDP, type Ipv4Header } from '../../../src/stack/wire/types.js';

const header: Ipv4Header = { src: 0xc6120001, dst: 0xc6120064, protocol: IPPROTO_UDP, ttl: 64, tos: 0x10, id: 0xbeef, df: true };

function ok(r: ReturnType<typeof parseIpv4>): Ipv4Packet {
  if (isWireError(r)) throw new Error(`unexpected ${r.error}`);
  return r;
}

function errorOf(r: ReturnType<typeof parseIpv4>): string {
  return isWireError(r) ? r.error : 'parsed';
}

describe('IPv4 parse and emit', () => {
  it('round-trips every header field and the payload', () => {
    const payload = Uint8Array.from([1, 2, 3, 4, 5]);
    const pkt = emitIpv4(header, payload);
    expect(pkt.length).toBe(25);
    const p = ok(parseIpv4(pkt));
    expect(p.header).toEqual(header);
    expect(Array.from(p.payload)).toEqual([1, 2, 3, 4, 5]);
    expect(p.headerLength).toBe(20);
    expect(p.fragmentOffset).toBe(0);
    expect(p.moreFragments).toBe(false);
  });

  it('writes a header checksum that sums to zero and the exact known bytes', () => {
    const buf = new Uint8Array(20);
    writeIpv4Header(buf, 0, { src: 0xc0a80001, dst: 0xc0a800c7, protocol: 17, ttl: 64, tos: 0, id: 0, df: true }, 0x73);
    expect(Buffer.from(buf).toString('hex')).toBe('450000730000400040110000c0a80001c0a800c7'.replace('0000c0a8', 'b861c0a8'));
    expect(internetChecksum(buf)).toBe(0);
  });

  it('returns the payload as a view into the input, not a copy', () => {
    const pkt = emitIpv4(header, new Uint8Array(10));
    const p = ok(parseIpv4(pkt));
    expect(p.payload.buffer).toBe(pkt.buffer);
    expect(p.payload.byteOffset).toBe(20);
  });

  it('trims a buffer longer than the total length', () => {
    const pkt = emitIpv4(header, Uint8Array.from([9, 9]));
    const padded = new Uint8Array(60);
    padded.set(pkt);
    padded.fill(0xee, pkt.length);
    expect(Array.from(ok(parseIpv4(padded)).payload)).toEqual([9, 9]);
  });

  it('rejects a buffer shorter than the total length or than a header', () => {
    const pkt = emitIpv4(header, new Uint8Array(8));
    expect(errorOf(parseIpv4(pkt.subarray(0, 27)))).toBe('ip.truncated');
    expect(errorOf(parseIpv4(pkt.subarray(0, 19)))).toBe('ip.truncated');
    expect(errorOf(parseIpv4(new Uint8Array(0)))).toBe('ip.truncated');
  });

  it('rejects a wrong version, an IHL below 5 and a total length below the header', () => {
    const pkt = emitIpv4(header, new Uint8Array(4));
    const v6 = pkt.slice();
    v6[0] = 0x65;
    expect(errorOf(parseIpv4(v6, { verifyChecksum: false }))).toBe('ip.bad-version');
    const ihl4 = pkt.slice();
    ihl4[0] = 0x44;
    expect(errorOf(parseIpv4(ihl4, { verifyChecksum: false }))).toBe('ip.bad-ihl');
    const short = pkt.slice();
    short[3] = 19;
    expect(errorOf(parseIpv4(short, { verifyChecksum: false }))).toBe('ip.bad-length');
  });

  it('rejects a bad header checksum unless verification is skipped', () => {
    const pkt = emitIpv4(header, new Uint8Array(4));
    pkt[8] = 1; // TTL changed without fixing the checksum
    expect(errorOf(parseIpv4(pkt))).toBe('ip.bad-checksum');
    expect(ok(parseIpv4(pkt, { verifyChecksum: false })).header.ttl).toBe(1);
  });

  it('skips header options using the IHL', () => {
    // IHL 6: one 4-byte option word (NOP NOP NOP EOL) before the payload.
    const pkt = new Uint8Array(24 + 3);
    writeIpv4Header(pkt, 0, header, 20); // filled then patched to IHL 6 below
    pkt[0] = 0x46;
    pkt[2] = 0;
    pkt[3] = 27;
    pkt.set([1, 1, 1, 0], 20);
    pkt.set([7, 8, 9], 24);
    pkt[10] = 0;
    pkt[11] = 0;
    const ck = internetChecksum(pkt, 0, 24);
    pkt[10] = ck >>> 8;
    pkt[11] = ck & 0xff;
    const p = ok(parseIpv4(pkt));
    expect(p.headerLength).toBe(24);
    expect(Array.from(p.payload)).toEqual([7, 8, 9]);
  });

  it('reports fragment offset in bytes and the MF flag', () => {
    const pkt = emitIpv4({ ...header, df: false }, new Uint8Array(16), { fragmentOffset: 1480, moreFragments: true });
    const p = ok(parseIpv4(pkt));
    expect(p.fragmentOffset).toBe(1480);
    expect(p.moreFragments).toBe(true);
    expect(p.header.df).toBe(false);
  });

  it('rejects a fragment that would end past 65535 bytes', () => {
    const pkt = emitIpv4({ ...header, df: false }, new Uint8Array(100), { fragmentOffset: 65528, moreFragments: false });
    expect(errorOf(parseIpv4(pkt))).toBe('ip.bad-fragment');
  });

  it('splits a datagram at 8-byte boundaries to fit the MTU, and refuses when DF is set', () => {
    const payload = new Uint8Array(3000).map((_, i) => i & 0xff);
    const frags = fragmentIpv4({ ...header, df: false }, payload, 1500);
    expect(frags.map((f) => f.length)).toEqual([1500, 1500, 60]);
    const parsed = frags.map((f) => ok(parseIpv4(f)));
    expect(parsed.map((p) => p.fragmentOffset)).toEqual([0, 1480, 2960]);
    expect(parsed.map((p) => p.moreFragments)).toEqual([true, true, false]);
    expect(fragmentIpv4(header, new Uint8Array(100), 1500)).toHaveLength(1);
    expect(() => fragmentIpv4(header, payload, 1500)).toThrow(RangeError);
  });

  it('refuses to write a packet longer than 65535 bytes', () => {
    expect(() => writeIpv4Header(new Uint8Array(20), 0, header, 65536)).toThrow(RangeError);
  });

  it('honours the protocol override of writeIpv4Header', () => {
    const buf = new Uint8Array(20);
    writeIpv4Header(buf, 0, header, 20, undefined, IPPROTO_TCP);
    expect(ok(parseIpv4(buf)).header.protocol).toBe(IPPROTO_TCP);
  });
});
