// A reader for classic pcap files (what `tcpdump -w` writes), reduced to the TCP and ARP events the
// demo needs. It never throws on bad input: a capture cut short by a killed tcpdump or a full disk
// still holds useful packets, so the reader returns what it could read and says why it stopped.
//
// Format: a 24-byte file header (magic, version, snaplen, link type) then records of a 16-byte
// header (seconds, micro- or nanoseconds, captured length, original length) and the captured bytes.
// The magic number tells the byte order and the time resolution.

import { readFileSync } from 'node:fs';

export const LINKTYPE_ETHERNET = 1;
/** Linux "cooked" capture v1 (`tcpdump -i any`). */
export const LINKTYPE_LINUX_SLL = 113;
/** Linux "cooked" capture v2 (`tcpdump -i any` with newer libpcap, or `-y LINUX_SLL2`). */
export const LINKTYPE_LINUX_SLL2 = 276;
/** Bare IP packets (a tun device). */
export const LINKTYPE_RAW = 101;
/** DLT_RAW as some systems write it into files instead of LINKTYPE_RAW. */
const DLT_RAW_ALT = [12, 14];

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_ARP = 0x0806;
const ETHERTYPE_VLAN = [0x8100, 0x88a8];

/** A record larger than this is taken as a corrupt length field rather than allocated. */
const MAX_RECORD = 1 << 20;

export interface TcpEvent {
  /** Capture time, microseconds since the Unix epoch (nanosecond files are rounded down). */
  timeUs: number;
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  /** The TCP flags byte: TCP_FIN | TCP_SYN | TCP_RST | TCP_PSH | TCP_ACK | URG 0x20 | ECE 0x40 | CWR 0x80. */
  flags: number;
  seq: number;
  ack: number;
  /** Bytes of TCP payload on the wire, from the IP header: independent of the snap length. */
  payloadLength: number;
  /** The window field as sent (not scaled: the scale is negotiated in the SYNs). */
  window: number;
}

export interface ArpEvent {
  timeUs: number;
  /** 1 request, 2 reply. */
  op: number;
  senderMac: string;
  senderIp: string;
  targetIp: string;
}

export interface PcapReadResult {
  /** False when the bytes are not a classic pcap file at all (then nothing else is meaningful). */
  ok: boolean;
  linkType: number;
  nanosecond: boolean;
  littleEndian: boolean;
  snapLength: number;
  /** Records read, of any kind. */
  records: number;
  tcp: TcpEvent[];
  arp: ArpEvent[];
  /** Records that were neither IPv4 TCP nor ARP, or too short to decode. */
  skipped: number;
  /** The file ended inside a header or a record. */
  truncated: boolean;
  /** Why reading stopped early, when it did. */
  problem?: string;
}

export function readPcapFile(file: string): PcapReadResult {
  return parsePcap(readFileSync(file));
}

export function parsePcap(bytes: Uint8Array): PcapReadResult {
  const result: PcapReadResult = {
    ok: false,
    linkType: -1,
    nanosecond: false,
    littleEndian: true,
    snapLength: 0,
    records: 0,
    tcp: [],
    arp: [],
    skipped: 0,
    truncated: false,
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 24) {
    result.truncated = true;
    result.problem = `only ${bytes.length} bytes: shorter than a pcap file header`;
    return result;
  }
  const magicLe = view.getUint32(0, true);
  switch (magicLe) {
    case 0xa1b2c3d4:
      break;
    case 0xd4c3b2a1:
      result.littleEndian = false;
      break;
    case 0xa1b23c4d:
      result.nanosecond = true;
      break;
    case 0x4d3cb2a1:
      result.littleEndian = false;
      result.nanosecond = true;
      break;
    case 0x0a0d0d0a:
      result.problem = 'this is a pcapng file; write classic pcap (tcpdump -w does by default)';
      return result;
    default:
      result.problem = `not a pcap file (magic 0x${magicLe.toString(16).padStart(8, '0')})`;
      return result;
  }
  const le = result.littleEndian;
  result.ok = true;
  result.snapLength = view.getUint32(16, le);
  // The upper bits of the link type field may carry FCS information; the type is the low 16.
  result.linkType = view.getUint32(20, le) & 0xffff;

  let off = 24;
  while (off < bytes.length) {
    if (off + 16 > bytes.length) {
      result.truncated = true;
      result.problem = `the file ends inside a record header at byte ${off}`;
      break;
    }
    const sec = view.getUint32(off, le);
    const frac = view.getUint32(off + 4, le);
    const capLen = view.getUint32(off + 8, le);
    const origLen = view.getUint32(off + 12, le);
    if (capLen > MAX_RECORD) {
      result.truncated = true;
      result.problem = `record at byte ${off} claims ${capLen} bytes: corrupt`;
      break;
    }
    if (off + 16 + capLen > bytes.length) {
      result.truncated = true;
      result.problem = `the file ends inside a record at byte ${off}`;
      break;
    }
    const timeUs = sec * 1_000_000 + (result.nanosecond ? Math.floor(frac / 1000) : frac);
    const frame = bytes.subarray(off + 16, off + 16 + capLen);
    off += 16 + capLen;
    result.records++;
    if (!decodeFrame(result, timeUs, frame, origLen)) result.skipped++;
  }
  return result;
}

/** Adds the frame's event to the result; false when it holds nothing the demo uses. */
function decodeFrame(result: PcapReadResult, timeUs: number, frame: Uint8Array, origLen: number): boolean {
  const lt = result.linkType;
  let etherType: number;
  let l3: number;
  if (lt === LINKTYPE_ETHERNET) {
    if (frame.length < 14) return false;
    l3 = 14;
    etherType = u16(frame, 12);
    // 802.1Q / 802.1ad tags, possibly stacked.
    while (ETHERTYPE_VLAN.includes(etherType)) {
      if (frame.length < l3 + 4) return false;
      etherType = u16(frame, l3 + 2);
      l3 += 4;
    }
  } else if (lt === LINKTYPE_LINUX_SLL) {
    if (frame.length < 16) return false;
    etherType = u16(frame, 14);
    l3 = 16;
  } else if (lt === LINKTYPE_LINUX_SLL2) {
    if (frame.length < 20) return false;
    etherType = u16(frame, 0);
    l3 = 20;
  } else if (lt === LINKTYPE_RAW || DLT_RAW_ALT.includes(lt)) {
    if (frame.length < 1) return false;
    etherType = frame[0]! >> 4 === 4 ? ETHERTYPE_IPV4 : 0;
    l3 = 0;
  } else {
    return false;
  }
  // Bytes that were on the wire from the network header on, for IP packets whose length field is 0.
  const wireL3 = origLen - l3;
  if (etherType === ETHERTYPE_IPV4) return decodeIpv4(result, timeUs, frame.subarray(l3), wireL3);
  if (etherType === ETHERTYPE_ARP) return decodeArp(result, timeUs, frame.subarray(l3));
  return false;
}

function decodeIpv4(result: PcapReadResult, timeUs: number, ip: Uint8Array, wireLength: number): boolean {
  if (ip.length < 20 || ip[0]! >> 4 !== 4) return false;
  const ihl = (ip[0]! & 0x0f) * 4;
  if (ihl < 20 || ip[9] !== 6) return false;
  // A non-first fragment has no TCP header.
  if ((u16(ip, 6) & 0x1fff) !== 0) return false;
  // Captured TSO/GRO super-packets can carry a total length of 0; the frame's own length holds then.
  const totalLength = u16(ip, 2) || wireLength;
  if (ip.length < ihl + 20) return false;
  const tcp = ip.subarray(ihl);
  const dataOffset = (tcp[12]! >> 4) * 4;
  result.tcp.push({
    timeUs,
    src: ipv4(ip, 12),
    srcPort: u16(tcp, 0),
    dst: ipv4(ip, 16),
    dstPort: u16(tcp, 2),
    flags: tcp[13]!,
    seq: u32(tcp, 4),
    ack: u32(tcp, 8),
    payloadLength: Math.max(0, totalLength - ihl - dataOffset),
    window: u16(tcp, 14),
  });
  return true;
}

function decodeArp(result: PcapReadResult, timeUs: number, arp: Uint8Array): boolean {
  // Ethernet/IPv4 ARP only: hardware type 1, protocol 0x0800, sizes 6 and 4.
  if (arp.length < 28 || u16(arp, 0) !== 1 || u16(arp, 2) !== ETHERTYPE_IPV4 || arp[4] !== 6 || arp[5] !== 4) return false;
  const mac = [...arp.subarray(8, 14)].map((b) => b.toString(16).padStart(2, '0')).join(':');
  result.arp.push({ timeUs, op: u16(arp, 6), senderMac: mac, senderIp: ipv4(arp, 14), targetIp: ipv4(arp, 24) });
  return true;
}

// Network byte order, whatever the file's own order is.
function u16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function ipv4(b: Uint8Array, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** "SA", "FPA", "R" ...: the flags as tcpdump prints them, for messages. */
export function flagString(flags: number): string {
  let s = '';
  if (flags & TCP_SYN) s += 'S';
  if (flags & TCP_FIN) s += 'F';
  if (flags & TCP_RST) s += 'R';
  if (flags & TCP_PSH) s += 'P';
  if (flags & TCP_ACK) s += '.';
  return s === '' ? 'none' : s;
}
