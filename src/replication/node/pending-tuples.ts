// The connections a takeover has not promoted yet, by 4-tuple, for the hold link's input: a
// client segment of one of them must wait (the host would answer it with a RST, finding no
// connection), a segment of a connection already promoted may go up at once. Anything that names
// no connection by its own header (not TCP, a fragment, a truncated packet) waits for the end.

import { demuxKey } from '../../stack/host.js';
import { readAddr } from '../../stack/wire/ipv4.js';
import { IPPROTO_TCP, type FourTuple } from '../../stack/wire/types.js';

/** The host's demultiplexing key of a received IPv4 TCP packet (local = its destination), or null. */
export function inboundKey(packet: Uint8Array): string | null {
  if (packet.length < 20 || packet[0]! >> 4 !== 4 || packet[9] !== IPPROTO_TCP) return null;
  // A fragment (more-fragments set or an offset): only the first carries the ports.
  if (((packet[6]! & 0x3f) | packet[7]!) !== 0) return null;
  const ihl = (packet[0]! & 0x0f) * 4;
  if (ihl < 20 || packet.length < ihl + 4) return null;
  const src = readAddr(packet, 12);
  const dst = readAddr(packet, 16);
  const srcPort = (packet[ihl]! << 8) | packet[ihl + 1]!;
  const dstPort = (packet[ihl + 2]! << 8) | packet[ihl + 3]!;
  return demuxKey(dst, dstPort, src, srcPort);
}

export class PendingTuples {
  private readonly keys = new Set<string>();

  constructor(tuples: Iterable<FourTuple>) {
    for (const t of tuples) this.keys.add(demuxKey(t.localAddr, t.localPort, t.remoteAddr, t.remotePort));
  }

  get size(): number {
    return this.keys.size;
  }

  /** The connection's turn came (promoted, or found finished or broken). */
  done(t: FourTuple): void {
    this.keys.delete(demuxKey(t.localAddr, t.localPort, t.remoteAddr, t.remotePort));
  }

  /** Whether a received packet may go up now: a TCP segment of no connection still waiting. */
  ready(packet: Uint8Array): boolean {
    const k = inboundKey(packet);
    return k !== null && !this.keys.has(k);
  }
}
