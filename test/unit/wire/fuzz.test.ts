// Robustness: 20,000 generated packets, valid and then mutated (bit flips, truncation, extension,
// random length fields, garbage options, pure noise), through every parser. Nothing may throw;
// every failure must be a WireError with a known counter name; every success must describe bytes
// inside the input. Seeded, so a failure reproduces.

import { describe, expect, it } from 'vitest';
import { isWireError, type WireError } from '../../../src/stack/wire/errors.js';
import { Reassembler } from '../../../src/stack/wire/fragments.js';
import { ICMP_ERRORS, emitIcmpError, emitIcmpIpv4, icmpErrorPermitted, parseIcmp } from '../../../src/stack/wire/icmp.js';
import { IPV4_ERRORS, emitIpv4, parseIpv4 } from '../../../src/stack/wire/ipv4.js';
import { TCP_ERRORS, emitTcpIpv4, parseTcp, parseTcpOptions } from '../../../src/stack/wire/tcp.js';
import { IPPROTO_ICMP, IPPROTO_TCP, type Ipv4Header, type SackBlock, type TcpOptions, type TcpSegment } from '../../../src/stack/wire/types.js';
import { seededRandom } from '../stack/helpers.js';

const ITERATIONS = 20_000;

/** A plain assertion: expect() per packet would make the run several times slower. */
function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}

const KNOWN_ERRORS = new Set([...Object.values(IPV4_ERRORS), ...Object.values(TCP_ERRORS), ...Object.values(ICMP_ERRORS)].map((e) => e.error));

describe('wire parsers under fuzzing', () => {
  it('never throw and report every failure as a known WireError on 20,000 generated and mutated packets', () => {
    const r = seededRandom(0xc0ffee);
    const below = (n: number): number => r() % n;
    const chance = (p: number): boolean => r() / 2 ** 32 < p;
    const bytes = (n: number): Uint8Array => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = r() & 0xff;
      return b;
    };

    const ip = (): Ipv4Header => ({
      src: r(),
      dst: r(),
      protocol: IPPROTO_TCP,
      ttl: below(256),
      tos: below(256),
      id: below(65536),
      df: chance(0.5),
    });

    const tcpOptions = (): TcpOptions => {
      const o: TcpOptions = { layout: chance(0.5) ? 'linux' : 'freebsd' };
      if (chance(0.5)) o.mss = below(65536);
      if (chance(0.5)) o.wscale = below(15);
      if (chance(0.5)) o.sackPermitted = true;
      if (chance(0.5)) o.timestamp = { tsval: r(), tsecr: r() };
      if (chance(0.3)) {
        const n = 1 + below(4);
        const sack: SackBlock[] = [];
        for (let k = 0; k < n; k++) sack.push({ left: r(), right: r() });
        o.sack = sack;
      }
      return o;
    };

    let iteration = 0;
    const tcpSegment = (): TcpSegment => ({
      srcPort: below(65536),
      dstPort: below(65536),
      seq: r(),
      ack: r(),
      flags: iteration & 0xff, // every flag combination, many times over
      window: below(65536),
      urgent: below(65536),
      options: tcpOptions(),
      payload: bytes(below(300)),
    });

    /** An option area of random kinds and lengths, often invalid, inside a valid packet. */
    const garbageOptionsPacket = (): Uint8Array => {
      const optLen = 4 * (1 + below(10));
      const opts = new Uint8Array(optLen);
      let i = 0;
      while (i < optLen) {
        const kinds = [0, 1, 2, 3, 4, 5, 8, below(256)];
        const kind = kinds[below(kinds.length)]!;
        opts[i++] = kind;
        if (i < optLen && kind > 1) opts[i++] = chance(0.5) ? below(256) : [0, 1, 2, 3, 4, 10, 18, 34][below(8)]!;
        while (i < optLen && chance(0.6)) opts[i++] = r() & 0xff;
      }
      const tcp = new Uint8Array(20 + optLen + below(20));
      tcp.set(bytes(20));
      tcp[12] = ((20 + optLen) / 4) << 4;
      tcp.set(opts, 20);
      return emitIpv4(ip(), tcp);
    };

    const mutate = (p: Uint8Array): Uint8Array => {
      const out = p.slice();
      switch (below(6)) {
        case 0: // bit flips
          for (let k = 1 + below(8); k > 0 && out.length > 0; k--) out[below(out.length)]! ^= 1 << below(8);
          return out;
        case 1: // truncation
          return out.subarray(0, below(out.length + 1));
        case 2: {
          // extension with noise
          const ext = new Uint8Array(out.length + 1 + below(64));
          ext.set(out);
          ext.set(bytes(ext.length - out.length), out.length);
          return ext;
        }
        case 3: // random IP total length, IHL, TCP data offset
          if (out.length > 33) {
            out[0] = (out[0]! & 0xf0) | below(16);
            out[2] = below(256);
            out[3] = below(256);
            out[32] = below(256);
          }
          return out;
        case 4: // fragment fields
          if (out.length > 8) {
            out[6] = below(256);
            out[7] = below(256);
          }
          return out;
        default:
          return out;
      }
    };

    const checkError = (res: WireError): void => {
      check(KNOWN_ERRORS.has(res.error), `unknown error ${res.error}`);
    };
    const within = (view: Uint8Array, input: Uint8Array): void => {
      check(view.buffer === input.buffer, 'view is not into the input');
      check(view.byteOffset >= input.byteOffset, 'view starts before the input');
      check(view.byteOffset + view.length <= input.byteOffset + input.length, 'view ends after the input');
    };
    const checkTcp = (bytesIn: Uint8Array, src: number, dst: number): void => {
      for (const verify of [true, false]) {
        const t = parseTcp(bytesIn, src, dst, verify);
        if (isWireError(t)) {
          checkError(t);
          continue;
        }
        within(t.payload, bytesIn);
        check(t.srcPort < 65536 && t.dstPort < 65536, 'port out of range');
        check(t.flags < 256, 'flags out of range');
        check(t.seq >>> 0 === t.seq && t.ack >>> 0 === t.ack, 'seq/ack not u32');
        check(t.options.wscale === undefined || t.options.wscale <= 14, 'wscale above 14');
        check(!t.options.sack || (t.options.sack.length >= 1 && t.options.sack.length <= 4), 'bad SACK block count');
      }
    };
    const checkIcmp = (bytesIn: Uint8Array): void => {
      for (const verify of [true, false]) {
        const m = parseIcmp(bytesIn, verify);
        if (isWireError(m)) checkError(m);
        else if (m.kind === 'dest-unreachable' || m.kind === 'time-exceeded' || m.kind === 'parameter-problem') {
          within(m.quote.bytes, bytesIn);
        }
      }
    };

    const reassembler = new Reassembler({ maxDatagrams: 16, maxBytes: 64 * 1024, maxFragmentsPerDatagram: 16, timeoutUs: 5_000 });
    let parsedTcp = 0;
    let undetectedFlips = 0;

    for (iteration = 0; iteration < ITERATIONS; iteration++) {
      let original: Uint8Array;
      const kind = below(10);
      if (kind < 5) {
        const seg = tcpSegment();
        const h = ip();
        original = emitTcpIpv4(h, seg);
        // The unmutated packet must parse back to the segment.
        const p = parseIpv4(original);
        if (isWireError(p)) throw new Error(`valid packet rejected: ${p.error}`);
        const t = parseTcp(p.payload, h.src, h.dst, true);
        if (isWireError(t)) throw new Error(`valid segment rejected: ${t.error}`);
        check(t.flags === seg.flags, 'flags changed in round trip');
        check(t.options.timestamp?.tsval === seg.options.timestamp?.tsval && t.options.timestamp?.tsecr === seg.options.timestamp?.tsecr, 'timestamp changed in round trip');
        check(t.payload.length === seg.payload.length, 'payload length changed in round trip');
        // One flipped bit anywhere must be caught by a checksum (or a length check) when verifying.
        const flipped = original.slice();
        flipped[below(flipped.length)]! ^= 1 << below(8);
        const fp = parseIpv4(flipped);
        if (!isWireError(fp) && !isWireError(parseTcp(fp.payload, fp.header.src, fp.header.dst, true))) undetectedFlips++;
      } else if (kind === 5) {
        original = garbageOptionsPacket();
      } else if (kind === 6) {
        const h: Ipv4Header = { ...ip(), protocol: IPPROTO_ICMP };
        original = chance(0.5)
          ? emitIcmpIpv4(h, { kind: chance(0.5) ? 'echo-request' : 'echo-reply', id: below(65536), sequence: below(65536), data: bytes(below(100)) })
          : emitIcmpError(h, { kind: 'dest-unreachable', code: below(16), mtu: below(65536) }, emitTcpIpv4(ip(), tcpSegment()));
      } else if (kind === 7) {
        const h: Ipv4Header = { ...ip(), df: false, src: 1 + below(3), dst: 9, id: below(4) };
        original = emitIpv4(h, bytes(8 * below(20)), { fragmentOffset: 8 * below(40), moreFragments: chance(0.7) });
      } else {
        original = bytes(below(120));
        if (original.length > 0 && chance(0.5)) original[0] = 0x45;
      }

      const pkt = kind === 7 && chance(0.5) ? original : mutate(original);
      icmpErrorPermitted(pkt);
      for (const verifyChecksum of [true, false]) {
        const p = parseIpv4(pkt, { verifyChecksum });
        if (isWireError(p)) {
          checkError(p);
          continue;
        }
        within(p.payload, pkt);
        check(p.fragmentOffset + p.payload.length <= 65515, 'fragment past 65515');
        if (p.fragmentOffset !== 0 || p.moreFragments) {
          const whole = reassembler.push(iteration, p);
          check(!whole || whole.payload.length <= 65515, 'datagram past 65515');
          continue;
        }
        if (p.header.protocol === IPPROTO_TCP) {
          checkTcp(p.payload, p.header.src, p.header.dst);
          parsedTcp++;
        } else if (p.header.protocol === IPPROTO_ICMP) checkIcmp(p.payload);
      }
      // The transport parsers also see the raw bytes, as if the IP layer had been skipped.
      checkTcp(pkt, 0, 0);
      checkIcmp(pkt);
      const opts: TcpOptions = {};
      parseTcpOptions(pkt, 0, pkt.length, opts);
      reassembler.expire(iteration);
      check(reassembler.bytesHeld <= 64 * 1024 && reassembler.datagramsInFlight <= 16, 'reassembler over its bounds');
    }

    expect(undetectedFlips).toBe(0);
    // The generator must actually reach the TCP parser a good share of the time.
    expect(parsedTcp).toBeGreaterThan(ITERATIONS / 10);
  });
});
