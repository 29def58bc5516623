// The virtio-net header (struct virtio_net_hdr, <linux/virtio_net.h>) that prefixes every read and
// write on a tun opened with IFF_VNET_HDR. It carries the two offloads we use:
//
//   offset 0  u8   flags        NEEDS_CSUM (1): the checksum at csum_start + csum_offset holds only
//                                the pseudo-header sum, someone downstream completes it;
//                                DATA_VALID (2): the kernel already verified the checksum.
//   offset 1  u8   gso_type     NONE (0), TCPV4 (1), ... (| ECN 0x80)
//   offset 2  le16 hdr_len      bytes of headers (IP + TCP for a tun) repeated in every segment
//   offset 4  le16 gso_size     payload bytes per segment
//   offset 6  le16 csum_start   where checksumming starts (the TCP header, from the IP header)
//   offset 8  le16 csum_offset  where the checksum field sits, from csum_start (16 for TCP)
//   offset 10 le16 num_buffers  only in the 12-byte form (virtio_net_hdr_mrg_rxbuf); unused by tun
//
// The fields are "__virtio16": little-endian for a tun unless TUNSETVNETBE/LE says otherwise, and
// we only run on little-endian Linux (x86-64, AArch64), so plain LE reads and writes.
//
// We use the 12-byte form (TUNSETVNETHDRSZ 12): with it the IPv4 header that follows starts on a
// 4-byte boundary of the buffer, which keeps the word-wise checksum loop on its aligned path.

export const VNET_HDR_LEN = 12;

export const VNET_F_NEEDS_CSUM = 1;
export const VNET_F_DATA_VALID = 2;

export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_UDP = 3;
export const VNET_GSO_TCPV6 = 4;
export const VNET_GSO_ECN = 0x80;

export interface VnetHeader {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

export function readVnetHeader(b: Uint8Array, at = 0): VnetHeader {
  return {
    flags: b[at]!,
    gsoType: b[at + 1]!,
    hdrLen: b[at + 2]! | (b[at + 3]! << 8),
    gsoSize: b[at + 4]! | (b[at + 5]! << 8),
    csumStart: b[at + 6]! | (b[at + 7]! << 8),
    csumOffset: b[at + 8]! | (b[at + 9]! << 8),
  };
}

function put16le(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
}

/** Writes all VNET_HDR_LEN bytes (num_buffers zeroed). */
export function writeVnetHeader(b: Uint8Array, at: number, h: VnetHeader): void {
  b[at] = h.flags;
  b[at + 1] = h.gsoType;
  put16le(b, at + 2, h.hdrLen);
  put16le(b, at + 4, h.gsoSize);
  put16le(b, at + 6, h.csumStart);
  put16le(b, at + 8, h.csumOffset);
  b[at + 10] = 0;
  b[at + 11] = 0;
}

/** A header that asks for nothing: a complete packet with its checksums filled in. */
export function writePlainVnetHeader(b: Uint8Array, at: number): void {
  b.fill(0, at, at + VNET_HDR_LEN);
}

const TCP_CSUM_OFFSET = 16;

/**
 * The header for a TCP/IPv4 packet whose TCP checksum field holds the pseudo-header sum (the
 * kernel finishes it: NEEDS_CSUM), cut by the kernel into segments of `gsoSize` payload bytes when
 * the payload is longer than that (TSO). `ipHeaderLen` and `tcpHeaderLen` are the packet's own.
 */
export function writeTcpOffloadHeader(
  b: Uint8Array,
  at: number,
  ipHeaderLen: number,
  tcpHeaderLen: number,
  payloadLen: number,
  gsoSize: number,
): void {
  const gso = payloadLen > gsoSize;
  b[at] = VNET_F_NEEDS_CSUM;
  b[at + 1] = gso ? VNET_GSO_TCPV4 : VNET_GSO_NONE;
  // hdr_len is a hint for how much to pull into the linear part; the kernel wants it for GSO.
  put16le(b, at + 2, ipHeaderLen + tcpHeaderLen);
  put16le(b, at + 4, gso ? gsoSize : 0);
  put16le(b, at + 6, ipHeaderLen);
  put16le(b, at + 8, TCP_CSUM_OFFSET);
  b[at + 10] = 0;
  b[at + 11] = 0;
}
