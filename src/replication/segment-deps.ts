// What each outgoing packet depends on in the log (ARCHITECTURE.md 5.1 rule 1), so that the output
// gate holds it only until those records are acknowledged rather than until the whole log tail
// is: "A segment carrying data, a FIN, or an ACK number that acknowledges client data, leaves the
// primary only after the backup has acknowledged the replication record(s) that segment depends
// on." The tap reports every record it logs for a connection; a packet's dependency is the
// newest of: the connection's open record (the SYN-ACK, and everything after it), the output
// record holding the last byte (or the FIN) it carries, and the input record that brought RCV.NXT
// up to its ACK number. Records nothing on the wire depends on (the client's ACKs, heartbeats)
// never hold a packet back. Anything this module cannot place (a RST, a fragment, a packet of a
// connection it does not know to be finished) depends on the log tail, as before.

import { seqAdd, seqDiff, type SeqNum } from '../stack/wire/seq.js';
import type { FourTuple } from '../stack/wire/types.js';
import type { ConnId, Lsn } from './log-records.js';

/** A record's reach in one direction's sequence space, counted from ISN + 1 (a FIN counts one). */
interface Mark {
  end: number;
  lsn: Lsn;
}

/** One direction of a connection: its logged reach and the marks of records not yet acknowledged. */
class Stream {
  readonly marks: Mark[] = [];
  /** Sequence space logged so far, from the ISN + 1. */
  end = 0;
  /** How far acknowledged records reach: nothing up to here holds a packet back. */
  ackedEnd = 0;

  add(n: number, lsn: Lsn, acked: Lsn): void {
    this.end += n;
    this.trim(acked);
    this.marks.push({ end: this.end, lsn });
  }

  /** Drops the marks of records already acknowledged. */
  trim(acked: Lsn): void {
    const ms = this.marks;
    let n = 0;
    while (n < ms.length && ms[n]!.lsn <= acked) n++;
    if (n === 0) return;
    this.ackedEnd = ms[n - 1]!.end;
    ms.splice(0, n);
  }

  /**
   * The record holding position `end - 1` (the first mark reaching `end`): 0 when it is already
   * acknowledged, null when `end` lies beyond what was logged.
   */
  lsnReaching(end: number, acked: Lsn): Lsn | null {
    if (end > this.end) return null;
    this.trim(acked);
    if (end <= this.ackedEnd) return 0;
    const ms = this.marks;
    let lo = 0;
    let hi = ms.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ms[mid]!.end < end) lo = mid + 1;
      else hi = mid;
    }
    return lo < ms.length ? ms[lo]!.lsn : null;
  }
}

class ConnDeps {
  readonly out = new Stream();
  readonly in = new Stream();
  live = true;
  /** The acknowledged output reach last reported by acknowledged(). */
  reportedOut = 0;

  constructor(
    readonly id: ConnId,
    readonly key: string,
    readonly iss: SeqNum,
    readonly irs: SeqNum,
    readonly openLsn: Lsn,
  ) {}
}

const IP_PROTO_TCP = 6;
const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;
const TWO_32 = 0x1_0000_0000;

function tupleKey(remoteAddr: number, remotePort: number, localAddr: number, localPort: number): string {
  return `${remoteAddr}:${remotePort}:${localAddr}:${localPort}`;
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

export class SegmentDeps {
  /** The connection of the last packet looked up, by its tuple: a pass's packets mostly share one. */
  private last: { remoteAddr: number; remotePort: number; localAddr: number; localPort: number; d: ConnDeps } | null = null;
  private readonly byId = new Map<ConnId, ConnDeps>();
  private readonly byTuple = new Map<string, ConnDeps>();
  /** Connections closed in the log: everything they send depends on the close record, until it is acknowledged. */
  private readonly finished = new Map<string, Lsn>();
  /** Connections with output records not yet acknowledged: acknowledged() looks at these only. */
  private readonly outPending = new Set<ConnDeps>();

  opened(id: ConnId, tuple: FourTuple, iss: SeqNum, irs: SeqNum, lsn: Lsn): void {
    const key = tupleKey(tuple.remoteAddr, tuple.remotePort, tuple.localAddr, tuple.localPort);
    const d = new ConnDeps(id, key, iss, irs, lsn);
    this.last = null;
    this.byId.set(id, d);
    this.byTuple.set(key, d);
    this.finished.delete(key);
  }

  /**
   * A connection brought over by a snapshot record (reintegration): it stands for everything the
   * connection logged so far, `outReach` and `inReach` of sequence space (data and FINs) past the
   * ISNs, so every packet up to there depends on it.
   */
  snapshot(id: ConnId, tuple: FourTuple, iss: SeqNum, irs: SeqNum, lsn: Lsn, outReach: number, inReach: number): void {
    this.opened(id, tuple, iss, irs, lsn);
    const d = this.byId.get(id)!;
    d.out.add(outReach, lsn, 0);
    d.in.add(inReach, lsn, 0);
    this.outPending.add(d);
  }

  /** An output record of `bytes` data bytes (and the FIN if `fin`) at `lsn`. */
  output(id: ConnId, bytes: number, fin: boolean, lsn: Lsn, acked: Lsn): void {
    const d = this.byId.get(id);
    if (d === undefined) return;
    d.out.add(bytes + (fin ? 1 : 0), lsn, acked);
    this.outPending.add(d);
  }

  /**
   * The log was acknowledged up to `acked`: calls `moved` with the new end of acknowledged output
   * (the sequence number after its last byte or FIN) of each connection where it moved.
   */
  acknowledged(acked: Lsn, moved: (id: ConnId, sendLimit: SeqNum) => void): void {
    for (const d of this.outPending) {
      const o = d.out;
      o.trim(acked);
      if (o.marks.length === 0) this.outPending.delete(d);
      // Against what was reported, not what this call found: lsnFor() trims the same marks as it
      // places packets, and a move it saw first must still reach the connection's send limit.
      if (o.ackedEnd !== d.reportedOut) {
        d.reportedOut = o.ackedEnd;
        moved(d.id, seqAdd(d.iss, 1 + (o.ackedEnd % TWO_32)));
      }
    }
  }

  /** An input record that moved RCV.NXT over `bytes` client bytes (and the client's FIN if `fin`). */
  input(id: ConnId, bytes: number, fin: boolean, lsn: Lsn, acked: Lsn): void {
    this.byId.get(id)?.in.add(bytes + (fin ? 1 : 0), lsn, acked);
  }

  /** The connection's close or reset record: its later packets depend on that record. */
  closed(id: ConnId, lsn: Lsn, acked: Lsn): void {
    const d = this.byId.get(id);
    if (d === undefined) return;
    this.byId.delete(id);
    this.outPending.delete(d);
    d.live = false;
    if (this.byTuple.get(d.key) === d) this.byTuple.delete(d.key);
    // Close records come in LSN order, so the acknowledged ones are at the front.
    for (const [k, l] of this.finished) {
      if (l > acked) break;
      this.finished.delete(k);
    }
    this.finished.set(d.key, lsn);
  }

  /** Forgets every connection (the tap stopped logging): nothing is gated any more. */
  clear(): void {
    for (const d of this.byId.values()) d.live = false;
    this.byId.clear();
    this.byTuple.clear();
    this.finished.clear();
    this.outPending.clear();
  }

  get connections(): number {
    return this.byId.size;
  }

  /**
   * The LSN that must be acknowledged before `packet` (an IPv4 packet the host sends) may leave:
   * 0 for none, `tail` when it cannot be placed.
   */
  lsnFor(packet: Uint8Array, acked: Lsn, tail: Lsn): Lsn {
    if (packet.length < 20 || packet[0]! >> 4 !== 4) return tail;
    const ihl = (packet[0]! & 0x0f) * 4;
    if (packet[9] !== IP_PROTO_TCP) return 0;
    // A fragment (MF set or an offset): its TCP header may be elsewhere.
    if (((packet[6]! & 0x3f) | packet[7]!) !== 0) return tail;
    if (packet.length < ihl + 20) return tail;
    const totalLen = (packet[2]! << 8) | packet[3]!;
    const localAddr = u32(packet, 12);
    const remoteAddr = u32(packet, 16);
    const localPort = (packet[ihl]! << 8) | packet[ihl + 1]!;
    const remotePort = (packet[ihl + 2]! << 8) | packet[ihl + 3]!;
    const l = this.last;
    let d: ConnDeps | undefined;
    if (l !== null && l.d.live && l.remoteAddr === remoteAddr && l.remotePort === remotePort && l.localAddr === localAddr && l.localPort === localPort) d = l.d;
    const key = d === undefined ? tupleKey(remoteAddr, remotePort, localAddr, localPort) : d.key;
    d ??= this.byTuple.get(key);
    if (d !== undefined && d !== l?.d) this.last = { remoteAddr, remotePort, localAddr, localPort, d };
    if (d === undefined) {
      // Not a logged connection (opened unprotected, a stray's RST, a SYN-cookie SYN-ACK): no
      // record stands behind it. A finished one waits for its close record.
      const closedAt = this.finished.get(key);
      if (closedAt === undefined) return 0;
      if (closedAt <= acked) this.finished.delete(key);
      return closedAt;
    }
    const flags = packet[ihl + 13]!;
    if ((flags & TCP_RST) !== 0) return tail;
    let lsn = d.openLsn;
    if ((flags & TCP_SYN) !== 0) return lsn;
    const dataLen = totalLen - ihl - (packet[ihl + 12]! >> 4) * 4;
    if (dataLen < 0) return tail;
    const fin = (flags & TCP_FIN) !== 0 ? 1 : 0;
    if (dataLen > 0 || fin !== 0) {
      // Where the segment ends in the output stream, counted from ISS + 1; wrap-safe relative to
      // the logged end, which no segment can be 2^31 away from.
      const o = d.out;
      const end = o.end + seqDiff(seqAdd(u32(packet, ihl + 4), dataLen + fin), seqAdd(d.iss, 1 + (o.end % TWO_32)));
      const m = o.lsnReaching(end, acked);
      if (m === null) return tail;
      if (m > lsn) lsn = m;
    }
    if ((flags & TCP_ACK) !== 0) {
      const i = d.in;
      const end = i.end + seqDiff(u32(packet, ihl + 8), seqAdd(d.irs, 1 + (i.end % TWO_32)));
      const m = i.lsnReaching(end, acked);
      if (m === null) return tail;
      if (m > lsn) lsn = m;
    }
    return lsn;
  }
}
