// The host's stateless half of the handshake while a listener's half-open queue is full (RFC 4987
// section 3.6): the SYN-ACK whose ISS is a cookie, and the check of the ACK that returns it.
// Window scale and SACK-permitted ride in the low bits of our TSval (see tcp/syncookie.ts), so
// they are offered only when the client offered timestamps; without them the connection runs
// unscaled and without SACK, as with Linux.

import { createCookieConnection } from './tcp/connection.js';
import type { Micros, TcpConfig, TcpConnection, TcpEnv } from './tcp/api.js';
import {
  decodeSynCookie,
  decodeSynCookieTsecr,
  encodeSynCookie,
  encodeSynCookieTsval,
  synCookieMssIndex,
  SYNCOOKIE_SLOT_US,
  SYNCOOKIE_VALID_SLOTS,
} from './tcp/syncookie.js';
import { seqAdd } from './wire/seq.js';
import { TCP_ACK, TCP_SYN, type FourTuple, type TcpOptions, type TcpSegment } from './wire/types.js';

/** RFC 9293 3.7.1: "If an MSS Option is not received at connection setup, TCP implementations
 * MUST assume a default send MSS of 536". */
const DEFAULT_MSS = 536;
const EMPTY = new Uint8Array(0);

export class SynCookieJar {
  /** How long after the last cookie was sent a returning one may still be accepted. */
  readonly validityUs: Micros = SYNCOOKIE_SLOT_US * SYNCOOKIE_VALID_SLOTS;

  constructor(
    private readonly env: TcpEnv,
    private readonly key: Uint8Array,
    /** Host clock to cookie time (see HostConfig.synCookieClockOffsetUs). */
    private readonly clockOffsetUs: Micros = 0,
  ) {}

  /** The SYN-ACK answering `syn` without keeping any state. */
  synAck(now: Micros, tuple: FourTuple, syn: TcpSegment, cfg: TcpConfig): TcpSegment {
    const so = syn.options;
    const mssIndex = synCookieMssIndex(so.mss ?? DEFAULT_MSS);
    const iss = encodeSynCookie(this.key, tuple, syn.seq, mssIndex, now + this.clockOffsetUs);
    // TCP_NOOPT: not even the MSS option, as the core does on its own SYN-ACKs.
    const options: TcpOptions = cfg.noOptions === true ? {} : { mss: cfg.mss, layout: cfg.optionLayout };
    if (cfg.noOptions !== true && cfg.timestamps && so.timestamp !== undefined) {
      const wscale = so.wscale !== undefined && cfg.windowScale !== null ? so.wscale : null;
      const sackPermitted = cfg.sack && so.sackPermitted === true;
      if (wscale !== null) options.wscale = cfg.windowScale!;
      if (sackPermitted) options.sackPermitted = true;
      options.timestamp = {
        tsval: encodeSynCookieTsval(this.env.tsClock(now), { wscale, sackPermitted }),
        tsecr: so.timestamp.tsval,
      };
    }
    return {
      srcPort: tuple.localPort,
      dstPort: tuple.remotePort,
      seq: iss,
      ack: seqAdd(syn.seq, 1),
      flags: TCP_SYN | TCP_ACK,
      // RFC 7323 2.2: "The window field in a segment where the SYN bit is set (i.e., a <SYN> or
      // <SYN,ACK>) MUST NOT be scaled." -- the same value the core puts on its own SYN-ACKs.
      window: Math.min(65535, cfg.rcvBuf),
      urgent: 0,
      options,
      payload: EMPTY,
    };
  }

  /**
   * An ESTABLISHED connection for an ACK that returns a valid cookie (the core processes the ACK,
   * and any data on it, itself), or null when the cookie is not ours or has expired.
   */
  accept(now: Micros, tuple: FourTuple, ack: TcpSegment, cfg: TcpConfig): TcpConnection | null {
    const decoded = decodeSynCookie(this.key, tuple, seqAdd(ack.ack, -1), now + this.clockOffsetUs);
    if (decoded === null) return null;
    let wscale: number | null = null;
    let sackPermitted = false;
    let timestamps = false;
    const ts = ack.options.timestamp;
    if (cfg.noOptions !== true && cfg.timestamps && ts !== undefined) {
      const o = decodeSynCookieTsecr(ts.tsecr);
      if (o !== null) {
        wscale = o.wscale;
        sackPermitted = o.sackPermitted;
        timestamps = true;
      }
    }
    return createCookieConnection(now, tuple, ack, { mss: decoded.mss, wscale, sackPermitted, timestamps }, cfg, this.env);
  }
}
