// SYN cookies: when a listener's half-open queue is full, the host answers a SYN statelessly and
// encodes what it must remember in the SYN-ACK's sequence number (RFC 4987 section 3.6). The final
// ACK then acknowledges cookie + 1; decoding it back proves the peer saw our SYN-ACK.
//
// Layout of the 32-bit cookie (our own, in the spirit of Linux's):
//   bits 31..29  time-slot counter modulo 8 (one slot = 64 s)
//   bits 28..27  index into SYNCOOKIE_MSS_TABLE
//   bits 26..0   HMAC-SHA-256(key, tuple | full slot counter | MSS index), truncated to 27 bits
// The MAC covers the full counter, so a cookie whose 3-bit counter aliases a slot 8, 16, ... slots
// away fails. A blind forger succeeds with probability 2^-27 per guess. The cookie does not depend
// on the client's ISN, so that decoding needs only the ACK number: a retransmitted SYN from the same
// tuple in the same slot gets the same ISS, which tells that peer nothing it did not know.
//
// Window scale and SACK-permitted cannot fit in 32 bits beside a useful MAC. As Linux does, they
// ride in the low 6 bits of our SYN-ACK's TSval when the client offered timestamps, and come back
// in the ACK's TSecr (encodeSynCookieTsval / decodeSynCookieTsecr). Without timestamps the
// connection proceeds without window scaling and without SACK. Those bits are not authenticated:
// anyone able to forge them already holds a valid cookie and could have asked for the same options
// in its own SYN.

import { createHmac } from 'node:crypto';
import type { Micros } from './api.js';
import { encodeTuple } from './isn.js';
import type { SeqNum } from '../wire/seq.js';
import type { FourTuple } from '../wire/types.js';

/** Common MSS values (Linux's table); a client is credited the largest entry not above its offer. */
export const SYNCOOKIE_MSS_TABLE: readonly number[] = [536, 1300, 1440, 1460];

export const SYNCOOKIE_SLOT_US: Micros = 64 * 1_000_000;
/** A cookie is accepted in the slot it was made in and in the next one: 64 to 128 seconds. */
export const SYNCOOKIE_VALID_SLOTS = 2;

const COUNTER_SHIFT = 29;
const COUNTER_MASK = 0x7;
const MSS_SHIFT = 27;
const MSS_MASK = 0x3;
const MAC_MASK = (1 << MSS_SHIFT) - 1;

export interface DecodedSynCookie {
  /** The MSS to use for the connection, from SYNCOOKIE_MSS_TABLE. */
  mss: number;
  mssIndex: number;
  /** How many slots ago the cookie was made (0 = this slot). */
  ageSlots: number;
}

/** The largest table entry not above the client's MSS (the smallest entry when it is below all). */
export function synCookieMssIndex(clientMss: number): number {
  let idx = 0;
  for (let i = 0; i < SYNCOOKIE_MSS_TABLE.length; i++) if (SYNCOOKIE_MSS_TABLE[i]! <= clientMss) idx = i;
  return idx;
}

function slotOf(now: Micros): number {
  return Math.floor(now / SYNCOOKIE_SLOT_US);
}

function mac(key: Uint8Array, tuple: FourTuple, slot: number, mssIndex: number): number {
  const msg = Buffer.alloc(12 + 8 + 1);
  encodeTuple(tuple).copy(msg, 0);
  msg.writeUInt32BE(Math.floor(slot / 2 ** 32) >>> 0, 12);
  msg.writeUInt32BE(slot >>> 0, 16);
  msg.writeUInt8(mssIndex, 20);
  return createHmac('sha256', key).update(msg).digest().readUInt32BE(0) & MAC_MASK;
}

/**
 * The ISS for a SYN-ACK sent from cookie mode. `_clientIsn` is accepted for symmetry with the SYN
 * being answered but deliberately not encoded (see the file comment).
 */
export function encodeSynCookie(
  key: Uint8Array,
  tuple: FourTuple,
  _clientIsn: SeqNum,
  mssIndex: number,
  now: Micros,
): SeqNum {
  if (!Number.isInteger(mssIndex) || mssIndex < 0 || mssIndex >= SYNCOOKIE_MSS_TABLE.length) {
    throw new RangeError(`SYN cookie MSS index out of range: ${mssIndex}`);
  }
  const slot = slotOf(now);
  return (
    (((slot & COUNTER_MASK) << COUNTER_SHIFT) | (mssIndex << MSS_SHIFT) | mac(key, tuple, slot, mssIndex)) >>> 0
  );
}

/** `cookie` is the ACK's acknowledgement number minus one. Null when it is not ours or expired. */
export function decodeSynCookie(
  key: Uint8Array,
  tuple: FourTuple,
  cookie: SeqNum,
  now: Micros,
): DecodedSynCookie | null {
  const c = cookie >>> 0;
  const nowSlot = slotOf(now);
  const ageSlots = (nowSlot - (c >>> COUNTER_SHIFT)) & COUNTER_MASK;
  if (ageSlots >= SYNCOOKIE_VALID_SLOTS) return null;
  const slot = nowSlot - ageSlots;
  if (slot < 0) return null;
  const mssIndex = (c >>> MSS_SHIFT) & MSS_MASK;
  if (mssIndex >= SYNCOOKIE_MSS_TABLE.length) return null;
  if ((c & MAC_MASK) !== mac(key, tuple, slot, mssIndex)) return null;
  return { mss: SYNCOOKIE_MSS_TABLE[mssIndex]!, mssIndex, ageSlots };
}

/** Options negotiated in the SYN that a cookie-mode SYN-ACK must remember. */
export interface SynCookieOptions {
  /** The client's window-scale shift (0..14), or null when it did not offer the option. */
  wscale: number | null;
  sackPermitted: boolean;
}

const TS_BITS = 6;
const TS_MASK = (1 << TS_BITS) - 1;
const TS_WSCALE_MASK = 0xf;
const TS_WSCALE_NONE = 0xf;
const TS_SACK = 0x10;
const TS_RESERVED = 0x20;

/**
 * The TSval of a cookie-mode SYN-ACK: `tsNow` with its low 6 bits replaced by the options, moved
 * back by 64 ticks if that would put it ahead of `tsNow`, so that later TSvals never go backwards
 * (the peer's PAWS check, RFC 7323 section 5, would drop our segments otherwise).
 */
export function encodeSynCookieTsval(tsNow: number, opts: SynCookieOptions): number {
  const ws = opts.wscale === null ? TS_WSCALE_NONE : Math.min(Math.max(0, opts.wscale), 14);
  const bits = ws | (opts.sackPermitted ? TS_SACK : 0);
  let ts = ((tsNow & ~TS_MASK) | bits) >>> 0;
  if (((ts - tsNow) | 0) > 0) ts = (ts - (TS_MASK + 1)) >>> 0;
  return ts;
}

/** Reads the options back from the ACK's TSecr; null when the reserved bit is set (not ours). */
export function decodeSynCookieTsecr(tsecr: number): SynCookieOptions | null {
  if (tsecr & TS_RESERVED) return null;
  const ws = tsecr & TS_WSCALE_MASK;
  return { wscale: ws === TS_WSCALE_NONE ? null : ws, sackPermitted: (tsecr & TS_SACK) !== 0 };
}
