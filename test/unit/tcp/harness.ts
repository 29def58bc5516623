// Helpers for scripted TCP core tests: a deterministic env, a segment builder and a compact
// description of emitted segments ("S. 1000:1000(0) ack 5001 win 65535").

import { expect } from 'vitest';
import type { Micros, TcpConfig, TcpEnv } from '../../../src/stack/tcp/api.js';
import { defaultTcpConfig } from '../../../src/stack/tcp/config.js';
import { Connection, createActiveConnection, createPassiveConnection } from '../../../src/stack/tcp/connection.js';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type FourTuple, type TcpOptions, type TcpSegment } from '../../../src/stack/wire/types.js';

export const MS = 1000;
export const TUPLE: FourTuple = { localAddr: 0xc6120064, localPort: 80, remoteAddr: 0xc6120001, remotePort: 40000 };

export interface TestEnv extends TcpEnv {
  challengeAcks: number;
  challengeBudget: number;
}

export function testEnv(iss = 1000): TestEnv {
  const env: TestEnv = {
    challengeAcks: 0,
    challengeBudget: Infinity,
    random: () => 4,
    isn: () => iss >>> 0,
    tsClock: (now: Micros) => Math.floor(now / 1000),
    allowChallengeAck: () => {
      if (env.challengeAcks >= env.challengeBudget) return false;
      env.challengeAcks++;
      return true;
    },
  };
  return env;
}

/** Plain config without timestamps/scaling/SACK unless asked: segments are easier to read. */
export function plainConfig(over: Partial<TcpConfig> = {}): TcpConfig {
  return { ...defaultTcpConfig(), windowScale: null, sack: false, timestamps: false, rcvBuf: 65535, sndBuf: 65535, ...over };
}

export function seg(
  flags: string,
  seq: number,
  ack: number,
  opts: { win?: number; data?: Uint8Array | number; options?: TcpOptions } = {},
): TcpSegment {
  let f = 0;
  for (const ch of flags) {
    if (ch === 'S') f |= TCP_SYN;
    else if (ch === 'F') f |= TCP_FIN;
    else if (ch === 'R') f |= TCP_RST;
    else if (ch === 'P') f |= TCP_PSH;
    else if (ch === '.') f |= TCP_ACK;
  }
  const data = typeof opts.data === 'number' ? bytes(opts.data, seq) : (opts.data ?? new Uint8Array(0));
  return {
    srcPort: TUPLE.remotePort,
    dstPort: TUPLE.localPort,
    seq: seq >>> 0,
    ack: ack >>> 0,
    flags: f,
    window: opts.win ?? 65535,
    urgent: 0,
    options: opts.options ?? {},
    payload: data,
  };
}

/** n bytes whose values follow their sequence number, so misplaced bytes are detectable. */
export function bytes(n: number, start = 0): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (start + i) & 0xff;
  return b;
}

export function flagString(f: number): string {
  let s = '';
  if (f & TCP_SYN) s += 'S';
  if (f & TCP_FIN) s += 'F';
  if (f & TCP_RST) s += 'R';
  if (f & TCP_PSH) s += 'P';
  if (f & TCP_ACK) s += '.';
  return s;
}

/** packetdrill-like text of a segment, with SACK blocks when present. */
export function describe(s: TcpSegment): string {
  let t = `${flagString(s.flags)} ${s.seq}:${(s.seq + s.payload.length) >>> 0}(${s.payload.length})`;
  if (s.flags & TCP_ACK) t += ` ack ${s.ack}`;
  t += ` win ${s.window}`;
  if (s.options.sack) t += ` sack ${s.options.sack.map((b) => `${b.left}:${b.right}`).join(' ')}`;
  return t;
}

export function out(c: Connection): string[] {
  return c.takeOutput().map(describe);
}

/** A passive connection already ESTABLISHED: ISS 1000, IRS 5000 (so RCV.NXT 5001, SND.NXT 1001). */
export function established(cfg: TcpConfig = plainConfig(), env: TcpEnv = testEnv(1000), irs = 5000, iss = 1000): Connection {
  const c = createPassiveConnection(0, TUPLE, seg('S', irs, 0, { options: { mss: 1460 } }), cfg, env, iss);
  c.takeOutput();
  c.onSegment(10 * MS, seg('.', irs + 1, iss + 1));
  c.takeOutput();
  c.takeEvents();
  return c;
}

/**
 * A passive connection ESTABLISHED with window scaling both ways (ISS 1000, IRS 5000): the peer's
 * SYN offers wscale `shift` too, and our receive buffer is `rcvBuf`.
 */
export function establishedScaled(shift: number, rcvBuf: number): Connection {
  const cfg = plainConfig({ windowScale: shift, rcvBuf, mss: 1460 });
  const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0, { options: { mss: 1460, wscale: shift } }), cfg, testEnv(), 1000);
  c.takeOutput();
  c.onSegment(10 * MS, seg('.', 5001, 1001));
  c.takeOutput();
  expect(c.state).toBe('ESTABLISHED');
  expect(c.v.rcvShift).toBe(shift);
  return c;
}

export function active(cfg: TcpConfig = plainConfig(), env: TcpEnv = testEnv(1000)): Connection {
  return createActiveConnection(0, TUPLE, cfg, env);
}
