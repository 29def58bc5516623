// IPv4 fragment reassembly (RFC 791 section 3.2, RFC 815), sans-IO: fragments and the time go in,
// whole datagrams come out. Memory is bounded three ways (datagrams in flight, bytes held,
// fragments per datagram) and every dropped fragment or datagram bumps a named counter.
//
// Overlap policy. RFC 5722 section 4 (written for IPv6, and the only safe rule for IPv4 too, as
// overlapping fragments are how IDS evasion and "teardrop" attacks work), amended by erratum 3089:
// "When reassembling an IPv6 datagram, if one or more its constituent fragments is determined to
// be an overlapping fragment, the entire datagram (and any constituent fragments) MUST be
// silently discarded." The erratum adds that exact duplicates (a retransmitted or duplicated
// fragment) are not overlaps; we drop just the duplicate, as Linux does. After an overlap the
// datagram's key is remembered until its timeout so that its remaining fragments are discarded
// too, instead of starting a new, truncated reassembly.

import { IPV4_HEADER_LEN, IPV4_MAX_PACKET, type Ipv4Packet } from './ipv4.js';
import type { Ipv4Header } from './types.js';

export interface ReassemblerConfig {
  /** Datagrams being reassembled at once (including discarded ones remembered until timeout). */
  maxDatagrams: number;
  /** Payload bytes held across all datagrams. */
  maxBytes: number;
  /** Fragments held per datagram: bounds the work of each insertion. */
  maxFragmentsPerDatagram: number;
  /** Microseconds from a datagram's first fragment until it is given up. */
  timeoutUs: number;
}

/**
 * Defaults near Linux's: a 30 s timeout (RFC 791 suggests an upper bound of 15 s for the initial
 * timer value, Linux uses ipfrag_time = 30 s) and 4 MiB (ipfrag_high_thresh).
 */
export function defaultReassemblerConfig(): ReassemblerConfig {
  return { maxDatagrams: 256, maxBytes: 4 * 1024 * 1024, maxFragmentsPerDatagram: 64, timeoutUs: 30_000_000 };
}

/** Every counter the reassembler may bump, under `frag.` in the host's counters. */
export type ReassemblyCounter =
  | 'frag.received'
  | 'frag.reassembled'
  | 'frag.duplicate'
  | 'frag.overlap'
  | 'frag.after-discard'
  | 'frag.bad-length'
  | 'frag.beyond-end'
  | 'frag.end-conflict'
  | 'frag.too-big'
  | 'frag.too-many-fragments'
  | 'frag.timeout'
  | 'frag.evicted'
  | 'frag.over-memory';

/** A datagram given up on at its timeout. */
export interface ExpiredDatagram {
  /**
   * The fragment at offset 0 when it had arrived (what an ICMP error quotes); otherwise the
   * lowest-offset fragment held, for its header. The payload is the reassembler's own copy.
   */
  packet: Ipv4Packet;
  /**
   * RFC 1122 3.3.2: "If the fragment reassembly timer expires ... if fragment zero has been
   * received, an ICMP Time Exceeded -- Reassembly Timeout message SHOULD be sent".
   */
  haveFirstFragment: boolean;
}

interface Fragment {
  offset: number;
  end: number;
  data: Uint8Array;
}

interface Datagram {
  key: string;
  /** The header of the fragment that opened the datagram. */
  header: Ipv4Header;
  deadline: number;
  /** Sorted by offset, never overlapping. */
  fragments: Fragment[];
  bytes: number;
  /** Payload length, known once the last fragment (MF=0) arrived; -1 before. */
  totalLength: number;
  /** The header of the fragment at offset 0 (RFC 791: it becomes the datagram's header). */
  first: Ipv4Packet | null;
  /** Set after an overlap: the datagram is dead and its later fragments are dropped. */
  discarded: boolean;
}

const MAX_PAYLOAD = IPV4_MAX_PACKET - IPV4_HEADER_LEN;

export class Reassembler {
  private readonly config: ReassemblerConfig;
  /** Insertion order is arrival order of first fragments, hence deadline order too. */
  private readonly datagrams = new Map<string, Datagram>();
  private heldBytes = 0;
  readonly counters: Record<ReassemblyCounter, number> = {
    'frag.received': 0,
    'frag.reassembled': 0,
    'frag.duplicate': 0,
    'frag.overlap': 0,
    'frag.after-discard': 0,
    'frag.bad-length': 0,
    'frag.beyond-end': 0,
    'frag.end-conflict': 0,
    'frag.too-big': 0,
    'frag.too-many-fragments': 0,
    'frag.timeout': 0,
    'frag.evicted': 0,
    'frag.over-memory': 0,
  };

  constructor(config: Partial<ReassemblerConfig> = {}) {
    this.config = { ...defaultReassemblerConfig(), ...config };
  }

  /** Payload bytes currently held. */
  get bytesHeld(): number {
    return this.heldBytes;
  }

  /** Datagrams in progress (and discarded ones still remembered). */
  get datagramsInFlight(): number {
    return this.datagrams.size;
  }

  /**
   * Takes one parsed fragment (moreFragments or a non-zero offset). Returns the reassembled
   * datagram when this fragment completes it, with the first fragment's header and a fresh
   * payload buffer; undefined otherwise. A packet that is not a fragment is returned as is.
   * The fragment's bytes are copied, so the caller may reuse its buffer. Never throws.
   */
  push(now: number, frag: Ipv4Packet): Ipv4Packet | undefined {
    if (frag.fragmentOffset === 0 && !frag.moreFragments) return frag;
    this.expire(now);
    this.counters['frag.received']++;
    const offset = frag.fragmentOffset;
    const len = frag.payload.length;
    const end = offset + len;
    // RFC 791 3.2: fragments other than the last carry "an integral number of 8-octet blocks";
    // anything else cannot be placed and is dropped, as Linux does. An empty non-last fragment
    // carries nothing and would only pin memory.
    if (frag.moreFragments && (len === 0 || len % 8 !== 0)) {
      this.counters['frag.bad-length']++;
      return undefined;
    }
    if (end > MAX_PAYLOAD) {
      this.counters['frag.too-big']++;
      return undefined;
    }
    const h = frag.header;
    const key = `${h.src}/${h.dst}/${h.protocol}/${h.id}`;
    let d = this.datagrams.get(key);
    if (d && d.discarded) {
      this.counters['frag.after-discard']++;
      return undefined;
    }
    if (!d) {
      if (len > this.config.maxBytes) {
        this.counters['frag.over-memory']++;
        return undefined;
      }
      while (this.datagrams.size >= this.config.maxDatagrams) {
        if (!this.evictOldest()) {
          this.counters['frag.over-memory']++;
          return undefined;
        }
      }
      d = { key, header: h, deadline: now + this.config.timeoutUs, fragments: [], bytes: 0, totalLength: -1, first: null, discarded: false };
      this.datagrams.set(key, d);
    }

    if (!frag.moreFragments) {
      // RFC 791: the last fragment fixes the datagram length; a second, different "last" or data
      // beyond it means the fragments contradict each other.
      if (d.totalLength >= 0 && d.totalLength !== end) return this.discard(d, 'frag.end-conflict');
      const last = d.fragments[d.fragments.length - 1];
      if (last && last.end > end) return this.discard(d, 'frag.beyond-end');
      d.totalLength = end;
    } else if (d.totalLength >= 0 && end > d.totalLength) {
      return this.discard(d, 'frag.beyond-end');
    }

    // Find the insertion point and check both neighbours for overlap.
    const list = d.fragments;
    let i = list.length;
    while (i > 0 && list[i - 1]!.offset > offset) i--;
    const prev = list[i - 1];
    const next = list[i];
    if (prev && prev.offset === offset && prev.end === end) {
      this.counters['frag.duplicate']++;
      return undefined;
    }
    if ((prev && prev.end > offset) || (next && next.offset < end)) return this.discard(d, 'frag.overlap');
    if (list.length >= this.config.maxFragmentsPerDatagram) return this.discard(d, 'frag.too-many-fragments');

    while (this.heldBytes + len > this.config.maxBytes) {
      if (!this.evictOldest(d)) return this.discard(d, 'frag.over-memory');
    }
    list.splice(i, 0, { offset, end, data: frag.payload.slice() });
    d.bytes += len;
    this.heldBytes += len;
    if (offset === 0) d.first = { ...frag, payload: list[0]!.data };

    if (d.totalLength < 0 || d.bytes !== d.totalLength || !d.first) return undefined;
    // Non-overlapping pieces whose sizes add up to the total, all inside [0, total): complete.
    const payload = new Uint8Array(d.totalLength);
    for (const f of list) payload.set(f.data, f.offset);
    const first = d.first;
    this.forget(d);
    this.counters['frag.reassembled']++;
    return {
      header: first.header,
      payload,
      headerLength: first.headerLength,
      fragmentOffset: 0,
      moreFragments: false,
    };
  }

  /**
   * Gives up on datagrams past their timeout and returns them, so that the host can send ICMP
   * Time Exceeded (code 1) for those whose first fragment arrived.
   */
  expire(now: number): ExpiredDatagram[] {
    const out: ExpiredDatagram[] = [];
    for (const d of this.datagrams.values()) {
      if (d.deadline > now) break;
      const first = d.first;
      const lowest = d.fragments[0];
      this.forget(d);
      if (d.discarded) continue;
      this.counters['frag.timeout']++;
      if (first) out.push({ packet: first, haveFirstFragment: true });
      else if (lowest) {
        out.push({
          packet: { header: d.header, payload: lowest.data, headerLength: IPV4_HEADER_LEN, fragmentOffset: lowest.offset, moreFragments: true },
          haveFirstFragment: false,
        });
      }
    }
    return out;
  }

  /** When expire() next has work, or null when nothing is held. */
  nextDeadline(): number | null {
    for (const d of this.datagrams.values()) return d.deadline;
    return null;
  }

  private forget(d: Datagram): void {
    this.datagrams.delete(d.key);
    this.heldBytes -= d.bytes;
    d.bytes = 0;
    d.fragments = [];
  }

  /** Drops the datagram's data but remembers its key until its deadline (RFC 5722). */
  private discard(d: Datagram, reason: ReassemblyCounter): undefined {
    this.counters[reason]++;
    this.heldBytes -= d.bytes;
    d.bytes = 0;
    d.fragments = [];
    d.first = null;
    d.discarded = true;
    return undefined;
  }

  /** Frees the oldest datagram other than `keep`; false when there is none. */
  private evictOldest(keep?: Datagram): boolean {
    for (const d of this.datagrams.values()) {
      if (d === keep) continue;
      this.forget(d);
      if (!d.discarded) this.counters['frag.evicted']++;
      return true;
    }
    return false;
  }
}
