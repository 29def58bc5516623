// Turning script packets into live ones and live ones back into script space, and comparing an
// outbound packet with the line that expects it, field by field, the way packetdrill does.

import { FLAG, type RawPacket, type RawTcp, type RawTcpOption } from './packet-codec.js';
import type { EcnSpec, TcpOptionSpec, TcpPacketSpec } from './script.js';

/** The per-connection mapping between script space and live values. */
export interface Flow {
  localAddr: number;
  remoteAddr: number;
  localPort: number;
  remotePort: number;
  /** Our ISN, learned from the first SYN or SYN-ACK we send; 0 until then (as packetdrill). */
  localIsn: number | null;
  remoteIsn: number;
  /** Options on the SYNs each side sent, to answer tcpi_options. */
  ourSynOptions?: RawTcpOption[];
  peerSynOptions?: TcpOptionSpec[];
  /** Script TS val -> live TS val of our segments, to rewrite the TS ecr of the script's. */
  tsMap: Map<number, number>;
  firstTs?: { script: number; live: number };
}

const FLAG_LETTERS: Array<[string, number]> = [
  ['S', FLAG.SYN],
  ['F', FLAG.FIN],
  ['R', FLAG.RST],
  ['P', FLAG.PSH],
  ['E', FLAG.ECE],
  ['W', FLAG.CWR],
  ['U', FLAG.URG],
  ['.', FLAG.ACK],
];

export function flagsFromLetters(letters: string): number {
  let f = 0;
  for (const c of letters) {
    const entry = FLAG_LETTERS.find(([l]) => l === c);
    if (entry) f |= entry[1];
  }
  return f;
}

export function lettersFromFlags(flags: number): string {
  return FLAG_LETTERS.filter(([, bit]) => flags & bit)
    .map(([l]) => l)
    .join('');
}

export function ecnBits(ecn: EcnSpec | undefined): number {
  switch (ecn) {
    case 'ect0':
      return 2;
    case 'ect1':
      return 1;
    case 'ce':
      return 3;
    default:
      return 0;
  }
}

function ecnMatches(spec: EcnSpec, bits: number): boolean {
  if (spec === 'ect01') return bits === 1 || bits === 2;
  return ecnBits(spec) === bits;
}

function sub(a: number, b: number): number {
  return (a - b) >>> 0;
}

/** The live options of a script's inbound segment: SACK blocks and TS ecr mapped. */
export function liveOptions(opts: TcpOptionSpec[], flow: Flow): RawTcpOption[] {
  const localIsn = flow.localIsn ?? 0;
  return opts.map((o): RawTcpOption => {
    if (o.kind === 'sack')
      return {
        kind: 'sack',
        blocks: o.blocks.map((b) => ({ left: (b.left + localIsn) >>> 0, right: (b.right + localIsn) >>> 0 })),
      };
    if (o.kind === 'TS') return { kind: 'TS', val: o.val, ecr: liveTsEcr(o.ecr, flow) };
    return o;
  });
}

/** packetdrill: an ecr naming one of our script TS vals echoes the live one; else interpolate. */
function liveTsEcr(ecr: number, flow: Flow): number {
  if (ecr === 0) return 0;
  const exact = flow.tsMap.get(ecr);
  if (exact !== undefined) return exact;
  if (flow.firstTs) return (flow.firstTs.live + (ecr - flow.firstTs.script)) >>> 0;
  return ecr;
}

function formatOption(o: RawTcpOption | TcpOptionSpec): string {
  switch (o.kind) {
    case 'mss':
      return `mss ${o.value}`;
    case 'wscale':
      return `wscale ${o.value}`;
    case 'sack':
      return `sack ${o.blocks.map((b) => `${b.left}:${b.right}`).join(' ')}`;
    case 'TS':
      return `TS val ${o.val} ecr ${o.ecr}`;
    case 'unknown':
      return `opt${o.type}`;
    default:
      return o.kind;
  }
}

/** Our segment in script space (sequence numbers relative to the ISNs), in packetdrill syntax. */
export function scriptViewOf(tcp: RawTcp, flow: Flow): { seq: number; ack: number; options: RawTcpOption[] } {
  const options = tcp.options.map((o): RawTcpOption =>
    o.kind === 'sack'
      ? {
          kind: 'sack',
          blocks: o.blocks.map((b) => ({ left: sub(b.left, flow.remoteIsn), right: sub(b.right, flow.remoteIsn) })),
        }
      : o,
  );
  return { seq: sub(tcp.seq, flow.localIsn ?? 0), ack: sub(tcp.ack, flow.remoteIsn), options };
}

export function formatActual(pkt: RawPacket, flow: Flow): string {
  if (!pkt.tcp) return pkt.icmp ? `icmp type ${pkt.icmp.type} code ${pkt.icmp.code}` : `IP protocol ${pkt.protocol}`;
  const tcp = pkt.tcp;
  const v = scriptViewOf(tcp, flow);
  const len = tcp.payload.length;
  let s = `${lettersFromFlags(tcp.flags)} ${v.seq}:${(v.seq + len) >>> 0}(${len})`;
  if (tcp.flags & FLAG.ACK) s += ` ack ${v.ack}`;
  s += ` win ${tcp.window}`;
  if (v.options.length > 0) s += ` <${v.options.map(formatOption).join(',')}>`;
  return s;
}

/**
 * Compares our packet with the script's expectation. Returns the differences (empty = match).
 * TS val and ecr are not compared (packetdrill's default: timestamps tick with the live clock);
 * the ack field of a segment without ACK carries no meaning (RFC 9293 3.1) and is not compared.
 */
export function compareOutbound(spec: TcpPacketSpec, pkt: RawPacket, flow: Flow): string[] {
  const diffs: string[] = [];
  const tcp = pkt.tcp;
  if (!tcp) return [`not a TCP segment`];
  if (pkt.src !== flow.localAddr || pkt.dst !== flow.remoteAddr) diffs.push('wrong IP addresses');
  if (tcp.srcPort !== flow.localPort || tcp.dstPort !== flow.remotePort)
    diffs.push(`ports ${tcp.srcPort}->${tcp.dstPort}, expected ${flow.localPort}->${flow.remotePort}`);
  if (!pkt.ipChecksumOk) diffs.push('bad IP checksum');
  if (pkt.ipHeaderLength !== 20) diffs.push(`IP header of ${pkt.ipHeaderLength} bytes (IP options)`);
  if (!tcp.checksumOk) diffs.push('bad TCP checksum');
  const v = scriptViewOf(tcp, flow);
  const wantFlags = flagsFromLetters(spec.flags);
  if (tcp.flags !== wantFlags) diffs.push(`flags ${lettersFromFlags(tcp.flags) || 'none'}, expected ${spec.flags}`);
  if (spec.seq !== null && v.seq !== spec.seq) diffs.push(`seq ${v.seq}, expected ${spec.seq}`);
  if (tcp.payload.length !== spec.len) diffs.push(`payload ${tcp.payload.length} bytes, expected ${spec.len}`);
  else if (tcp.payload.some((b) => b !== 0)) diffs.push('payload differs from the bytes written');
  if (spec.ack !== undefined && tcp.flags & FLAG.ACK && v.ack !== spec.ack) diffs.push(`ack ${v.ack}, expected ${spec.ack}`);
  if (spec.win !== undefined && tcp.window !== spec.win) diffs.push(`win ${tcp.window}, expected ${spec.win}`);
  if (tcp.urgent !== 0 && !(tcp.flags & FLAG.URG)) diffs.push(`urgent pointer ${tcp.urgent}`);
  if (spec.ecn !== undefined && !ecnMatches(spec.ecn, pkt.ecn)) diffs.push(`IP ECN bits ${pkt.ecn}, expected ${spec.ecn}`);
  if (spec.options !== 'any') {
    const d = compareOptions(spec.options ?? [], v.options);
    if (d) diffs.push(d);
  }
  return diffs;
}

function compareOptions(want: TcpOptionSpec[], got: RawTcpOption[]): string | undefined {
  const show = (l: Array<RawTcpOption | TcpOptionSpec>): string => `<${l.map(formatOption).join(',')}>`;
  const mismatch = `options ${show(got)}, expected ${show(want)}`;
  if (want.length !== got.length) return mismatch;
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    if (w.kind !== g.kind) return mismatch;
    if ((w.kind === 'mss' || w.kind === 'wscale') && w.value !== (g as { value: number }).value) return mismatch;
    if (w.kind === 'sack') {
      const gb = (g as { blocks: Array<{ left: number; right: number }> }).blocks;
      if (gb.length !== w.blocks.length || w.blocks.some((b, j) => b.left !== gb[j]!.left || b.right !== gb[j]!.right))
        return mismatch;
    }
  }
  return undefined;
}

/** Remembers how script TS vals map to ours, from an outbound segment that matched its line. */
export function learnTimestamps(spec: TcpPacketSpec, tcp: RawTcp, flow: Flow): void {
  if (spec.options === 'any' || !spec.options) return;
  const want = spec.options.find((o) => o.kind === 'TS');
  const got = tcp.options.find((o) => o.kind === 'TS');
  if (!want || want.kind !== 'TS' || !got || got.kind !== 'TS') return;
  flow.tsMap.set(want.val, got.val);
  if (!flow.firstTs) flow.firstTs = { script: want.val, live: got.val };
}
