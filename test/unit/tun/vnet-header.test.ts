import { describe, expect, it } from 'vitest';
import {
  readVnetHeader,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_HDR_LEN,
  writePlainVnetHeader,
  writeTcpOffloadHeader,
  writeVnetHeader,
} from '../../../src/tun/vnet-header.js';

describe('virtio-net header', () => {
  it('is 12 bytes with little-endian 16-bit fields in the order of struct virtio_net_hdr', () => {
    const b = new Uint8Array(VNET_HDR_LEN + 2).fill(0xee);
    writeVnetHeader(b, 1, { flags: 1, gsoType: 1, hdrLen: 0x0034, gsoSize: 0x05a8, csumStart: 20, csumOffset: 16 });
    expect(Array.from(b)).toEqual([0xee, 1, 1, 0x34, 0, 0xa8, 0x05, 20, 0, 16, 0, 0, 0, 0xee]);
    expect(readVnetHeader(b, 1)).toEqual({ flags: 1, gsoType: 1, hdrLen: 52, gsoSize: 1448, csumStart: 20, csumOffset: 16 });
  });

  it('reads what the kernel writes for a received super-segment', () => {
    // flags NEEDS_CSUM, GSO_TCPV4, hdr_len 52, gso_size 1448, csum_start 20, csum_offset 16
    const b = Uint8Array.from([1, 1, 52, 0, 0xa8, 5, 20, 0, 16, 0, 0, 0]);
    expect(readVnetHeader(b)).toEqual({ flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_TCPV4, hdrLen: 52, gsoSize: 1448, csumStart: 20, csumOffset: 16 });
  });

  it('asks for nothing on a plain packet', () => {
    const b = new Uint8Array(VNET_HDR_LEN).fill(0xff);
    writePlainVnetHeader(b, 0);
    expect(Array.from(b)).toEqual(new Array(VNET_HDR_LEN).fill(0));
  });

  it('asks for TSO only when the payload is longer than one segment, and always for the checksum', () => {
    const b = new Uint8Array(VNET_HDR_LEN);
    writeTcpOffloadHeader(b, 0, 20, 32, 1448 * 3, 1448);
    expect(readVnetHeader(b)).toEqual({ flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_TCPV4, hdrLen: 52, gsoSize: 1448, csumStart: 20, csumOffset: 16 });
    writeTcpOffloadHeader(b, 0, 24, 20, 1000, 1448);
    expect(readVnetHeader(b)).toEqual({ flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_NONE, hdrLen: 44, gsoSize: 0, csumStart: 24, csumOffset: 16 });
  });
});
