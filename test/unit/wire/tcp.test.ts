import { describe, expect, it } from 'vitest';
import { foldSum, onesSum, pseudoHeaderSum } from '../../../src/stack/wire/checksum.js';
import { isWireError } from '../../../src/stack/wire/errors.js';
import { parseIpv4 } from '../../../src/stack/wire/ipv4.js';
import {
  emitTcp,
  emitTcpIpv4,
  parseTcp,
  parseTcpOptions,
  tcpOptionsLength,
  tcpSegmentLength,
  writeTcpIpv4,
} from '../../../src/stack/wire/tcp.js';
import {
  IPPROTO_TCP,
  IPPROTO_UDP,
  TCP_ACK,
  TCP_SYN,
  type Ipv4Header,
  type TcpOptions,
  type TcpSegment,
} from '../../../src/stack/wire/types.js';
import { describeOptions } from './packetdrill-options.js';

const SRC = 0xc6120001;
const DST = 0xc6120064;
const ip: Ipv4Header = { src: SRC, dst: DST, protocol: IPPROTO_TCP, ttl: 64, tos: 0, id: 7, df: true };

function segment(flags: number, options: TcpOptions, payload: Uint8Array = new Uint8Array(0)): TcpSegment {
  return { srcPort: 8080, dstPort: 40000, seq: 0xfffffff0, ack: 0x12345678, flags, window: 65535, urgent: 0, options, payload };
}

function parsed(bytes: Uint8Array): TcpSegment {
  const r = parseTcp(bytes, SRC, DST, true);
  if (isWireError(r)) throw new Error(`unexpected ${r.error}`);
  return r;
}

/** The option bytes of an emitted segment, rendered as packetdrill does. */
function optionsText(seg: TcpSegment): string {
  const bytes = emitTcp(seg, SRC, DST);
  return describeOptions(bytes.subarray(20, (bytes[12]! >>> 4) * 4));
}

const synOptions = { mss: 1460, wscale: 6, sackPermitted: true, timestamp: { tsval: 100, tsecr: 0 } };

/** Options area = given bytes, padded to 4; the segment's checksum is not verified by the parser. */
function withOptionBytes(opt: number[]): Uint8Array {
  const padded = [...opt];
  while (padded.length % 4) padded.push(0);
  const b = new Uint8Array(20 + padded.length);
  b[12] = ((20 + padded.length) / 4) << 4;
  b.set(padded, 20);
  return b;
}

function optionsOf(opt: number[]): TcpOptions {
  const r = parseTcp(withOptionBytes(opt), SRC, DST, false);
  if (isWireError(r)) throw new Error(r.error);
  return r.options;
}

describe('TCP option layouts', () => {
  it('emits the FreeBSD SYN layout mss,nop,wscale,sackOK,TS', () => {
    expect(optionsText(segment(TCP_SYN, { ...synOptions, layout: 'freebsd' }))).toBe('mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0');
  });

  it('emits FreeBSD mss,nop,wscale,nop,nop,TS when SACK is off', () => {
    const o = { mss: 1460, wscale: 6, timestamp: { tsval: 100, tsecr: 0 }, layout: 'freebsd' as const };
    expect(optionsText(segment(TCP_SYN, o))).toBe('mss 1460,nop,wscale 6,nop,nop,TS val 100 ecr 0');
  });

  it('emits FreeBSD mss,sackOK,eol,eol without window scale and timestamps', () => {
    expect(optionsText(segment(TCP_SYN, { mss: 1460, sackPermitted: true, layout: 'freebsd' }))).toBe('mss 1460,sackOK,eol,eol');
  });

  it('emits a lone MSS as four bytes in both layouts', () => {
    expect(optionsText(segment(TCP_SYN | TCP_ACK, { mss: 1460, layout: 'freebsd' }))).toBe('mss 1460');
    expect(optionsText(segment(TCP_SYN | TCP_ACK, { mss: 1460, layout: 'linux' }))).toBe('mss 1460');
  });

  it('emits FreeBSD non-SYN segments as nop,nop,TS then nop,nop,sack', () => {
    const o: TcpOptions = { timestamp: { tsval: 5, tsecr: 9 }, sack: [{ left: 200, right: 300 }], layout: 'freebsd' };
    expect(optionsText(segment(TCP_ACK, o))).toBe('nop,nop,TS val 5 ecr 9,nop,nop,sack 200:300');
    const sackOnly: TcpOptions = {
      sack: [{ left: 600, right: 700 }, { left: 400, right: 500 }, { left: 200, right: 300 }],
      layout: 'freebsd',
    };
    expect(optionsText(segment(TCP_ACK, sackOnly))).toBe('nop,nop,sack 600:700 400:500 200:300');
  });

  it('emits the Linux SYN layout mss,sackOK,TS,nop,wscale', () => {
    expect(optionsText(segment(TCP_SYN, { ...synOptions, layout: 'linux' }))).toBe('mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 6');
    expect(optionsText(segment(TCP_SYN, synOptions))).toBe('mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 6');
  });

  it('pads Linux SYN options with NOPs when SACK or timestamps are off', () => {
    expect(optionsText(segment(TCP_SYN, { mss: 1460, wscale: 7, timestamp: { tsval: 1, tsecr: 0 } }))).toBe(
      'mss 1460,nop,nop,TS val 1 ecr 0,nop,wscale 7',
    );
    expect(optionsText(segment(TCP_SYN, { mss: 1460, sackPermitted: true, wscale: 7 }))).toBe('mss 1460,nop,nop,sackOK,nop,wscale 7');
  });

  it('keeps at most 3 SACK blocks next to timestamps and 4 without', () => {
    const blocks = [1, 2, 3, 4].map((k) => ({ left: k * 100, right: k * 100 + 50 }));
    for (const layout of ['linux', 'freebsd'] as const) {
      expect(optionsText(segment(TCP_ACK, { timestamp: { tsval: 1, tsecr: 2 }, sack: blocks, layout }))).toBe(
        'nop,nop,TS val 1 ecr 2,nop,nop,sack 100:150 200:250 300:350',
      );
      expect(optionsText(segment(TCP_ACK, { sack: blocks, layout }))).toBe('nop,nop,sack 100:150 200:250 300:350 400:450');
    }
  });

  it('reports an options length equal to what is emitted, a multiple of 4 and at most 40', () => {
    const cases: Array<[number, TcpOptions]> = [
      [TCP_SYN, {}],
      [TCP_SYN, { ...synOptions, layout: 'freebsd' }],
      [TCP_SYN, { mss: 1, sackPermitted: true, layout: 'freebsd' }],
      [TCP_SYN, { wscale: 3, layout: 'freebsd' }],
      [TCP_SYN, { wscale: 3 }],
      [TCP_ACK, { timestamp: { tsval: 1, tsecr: 1 }, sack: [1, 2, 3, 4].map((k) => ({ left: k, right: k + 1 })) }],
      [TCP_SYN, { ...synOptions, sack: [{ left: 1, right: 2 }], layout: 'freebsd' }],
    ];
    for (const [flags, o] of cases) {
      const seg = segment(flags, o, new Uint8Array(3));
      const bytes = emitTcp(seg, SRC, DST);
      const len = tcpOptionsLength(o, flags);
      expect(len % 4).toBe(0);
      expect(len).toBeLessThanOrEqual(40);
      expect((bytes[12]! >>> 4) * 4).toBe(20 + len);
      expect(bytes.length).toBe(tcpSegmentLength(seg));
    }
    expect(tcpOptionsLength({ timestamp: { tsval: 0, tsecr: 0 } }, TCP_ACK)).toBe(12);
    expect(tcpOptionsLength({}, TCP_ACK)).toBe(0);
  });
});

describe('TCP parse and emit', () => {
  it('round-trips header fields, all options and the payload inside an IPv4 packet', () => {
    const payload = Uint8Array.from([104, 105, 10]);
    for (const layout of ['linux', 'freebsd'] as const) {
      const seg = segment(TCP_SYN | TCP_ACK, { ...synOptions, layout }, payload);
      const pkt = emitTcpIpv4(ip, seg);
      const p = parseIpv4(pkt);
      if (isWireError(p)) throw new Error(p.error);
      expect(p.header.protocol).toBe(IPPROTO_TCP);
      const back = parsed(p.payload);
      const { layout: _ignored, ...expectedOptions } = seg.options;
      expect(back).toEqual({ ...seg, options: expectedOptions, payload: back.payload });
      expect(Array.from(back.payload)).toEqual([104, 105, 10]);
    }
  });

  it('round-trips every one of the 256 flag combinations', () => {
    for (let flags = 0; flags < 256; flags++) {
      const seg = segment(flags, {}, new Uint8Array([flags]));
      expect(parsed(emitTcp(seg, SRC, DST)).flags).toBe(flags);
    }
  });

  it('round-trips SACK blocks and sequence numbers at the 32-bit wrap', () => {
    const sack = [
      { left: 0xfffffff0, right: 0x10 },
      { left: 0xffffffff, right: 0 },
    ];
    const seg: TcpSegment = { ...segment(TCP_ACK, { sack }), seq: 0xffffffff, ack: 0x80000000 };
    const back = parsed(emitTcp(seg, SRC, DST));
    expect(back.options.sack).toEqual(sack);
    expect(back.seq).toBe(0xffffffff);
    expect(back.ack).toBe(0x80000000);
  });

  it('writes into a caller buffer at an offset, leaving the bytes before it alone', () => {
    const seg = segment(TCP_ACK, { timestamp: { tsval: 3, tsecr: 4 } }, new Uint8Array(100).fill(7));
    const buf = new Uint8Array(10 + 20 + 20 + 12 + 100).fill(0xaa);
    const n = writeTcpIpv4(buf, 10, ip, seg);
    expect(n).toBe(152);
    expect(Array.from(buf.subarray(0, 10))).toEqual(new Array(10).fill(0xaa));
    const p = parseIpv4(buf.subarray(10));
    if (isWireError(p)) throw new Error(p.error);
    expect(parsed(p.payload).options.timestamp).toEqual({ tsval: 3, tsecr: 4 });
  });

  it('forces the IP protocol to TCP whatever the header says', () => {
    const p = parseIpv4(emitTcpIpv4({ ...ip, protocol: IPPROTO_UDP }, segment(TCP_ACK, {})));
    if (isWireError(p)) throw new Error(p.error);
    expect(p.header.protocol).toBe(IPPROTO_TCP);
  });

  it('rejects a bad checksum only when asked to verify', () => {
    const bytes = emitTcp(segment(TCP_ACK, {}, new Uint8Array([1, 2, 3])), SRC, DST);
    bytes[bytes.length - 1] ^= 0xff;
    const r = parseTcp(bytes, SRC, DST, true);
    expect(isWireError(r) && r.error).toBe('tcp.bad-checksum');
    expect(isWireError(parseTcp(bytes, SRC, DST, false))).toBe(false);
    // The pseudo-header is covered: the right bytes under the wrong address fail too.
    const good = emitTcp(segment(TCP_ACK, {}), SRC, DST);
    expect(isWireError(parseTcp(good, SRC, DST + 1, true))).toBe(true);
  });

  it('with checksum offload stores the folded pseudo-header sum, which the link completes', () => {
    const seg = segment(TCP_ACK, {}, new Uint8Array([9, 8, 7, 6, 5]));
    const bytes = emitTcp(seg, SRC, DST, { checksumOffload: true });
    expect((bytes[16]! << 8) | bytes[17]!).toBe(foldSum(pseudoHeaderSum(SRC, DST, IPPROTO_TCP, bytes.length)));
    // What the NIC/kernel does: checksum the segment as-is and store the complement.
    const ck = ~foldSum(onesSum(bytes)) & 0xffff;
    bytes[16] = ck >>> 8;
    bytes[17] = ck & 0xff;
    expect(isWireError(parseTcp(bytes, SRC, DST, true))).toBe(false);
  });

  it('rejects segments shorter than 20 bytes and data offsets below 5 or past the end', () => {
    const bytes = emitTcp(segment(TCP_ACK, {}), SRC, DST);
    const e = (b: Uint8Array): string => {
      const r = parseTcp(b, SRC, DST, false);
      return isWireError(r) ? r.error : 'parsed';
    };
    expect(e(bytes.subarray(0, 19))).toBe('tcp.truncated');
    const low = bytes.slice();
    low[12] = 4 << 4;
    expect(e(low)).toBe('tcp.bad-data-offset');
    const high = bytes.slice();
    high[12] = 6 << 4;
    expect(e(high)).toBe('tcp.bad-data-offset');
  });

  it('returns the payload as a view into the input', () => {
    const bytes = emitTcp(segment(TCP_ACK, {}, new Uint8Array(5)), SRC, DST);
    const p = parsed(bytes);
    expect(p.payload.buffer).toBe(bytes.buffer);
    expect(p.payload.byteOffset).toBe(20);
  });
});

describe('TCP option parsing of malformed input', () => {
  it('skips unknown options by their length and reads the ones after', () => {
    expect(optionsOf([30, 6, 1, 2, 3, 4, 2, 4, 5, 0xb4])).toEqual({ mss: 1460 });
  });

  it('stops at EOL and ignores what follows', () => {
    expect(optionsOf([0, 2, 4, 5, 0xb4])).toEqual({});
  });

  it('stops at a length of 0 or 1, keeping earlier options and marking the set malformed', () => {
    expect(optionsOf([2, 4, 5, 0xb4, 30, 0, 4, 2])).toEqual({ mss: 1460, malformed: true });
    expect(optionsOf([4, 2, 30, 1, 2, 4, 5, 0xb4])).toEqual({ sackPermitted: true, malformed: true });
  });

  it('stops at an option running past the header', () => {
    expect(optionsOf([1, 1, 4, 2, 8, 10, 0, 0])).toEqual({ sackPermitted: true, malformed: true });
    // A kind byte as the very last byte of the header has no room for a length.
    const b = withOptionBytes([1, 1, 1, 2]);
    const out: TcpOptions = {};
    parseTcpOptions(b, 20, 24, out);
    expect(out).toEqual({ malformed: true });
  });

  it('ignores known options with the wrong fixed length but reads the next one', () => {
    expect(optionsOf([2, 3, 5, 4, 2])).toEqual({ sackPermitted: true, malformed: true });
    expect(optionsOf([3, 4, 1, 2, 4, 2])).toEqual({ sackPermitted: true, malformed: true });
    expect(optionsOf([4, 3, 0, 3, 3, 7])).toEqual({ wscale: 7, malformed: true });
    expect(optionsOf([8, 9, 0, 0, 0, 0, 0, 0, 0, 4, 2])).toEqual({ sackPermitted: true, malformed: true });
  });

  it('ignores SACK options that are not 2 + 8n bytes long', () => {
    expect(optionsOf([5, 2, 4, 2])).toEqual({ sackPermitted: true, malformed: true });
    expect(optionsOf([5, 9, 0, 0, 0, 1, 0, 0, 0, 4, 2])).toEqual({ sackPermitted: true, malformed: true });
  });

  it('reads four SACK blocks, the most that fit', () => {
    const blocks = [1, 2, 3, 4].flatMap((k) => [0, 0, 0, k, 0, 0, 0, k + 10]);
    expect(optionsOf([1, 1, 5, 34, ...blocks]).sack).toEqual([1, 2, 3, 4].map((k) => ({ left: k, right: k + 10 })));
  });

  it('clamps a window scale above 14 to 14 (RFC 7323 section 2.3)', () => {
    expect(optionsOf([3, 3, 15]).wscale).toBe(14);
    expect(optionsOf([3, 3, 255]).wscale).toBe(14);
    expect(optionsOf([3, 3, 14]).wscale).toBe(14);
  });

  it('lets the last of duplicate options win', () => {
    expect(optionsOf([2, 4, 0, 100, 2, 4, 0, 200]).mss).toBe(200);
  });
});
