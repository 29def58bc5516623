// The one interface every packet link implements: the TUN device, the in-memory wire used by tests,
// and the fault-injecting wrapper. Packets are raw IPv4 packets (no link-layer header, no packet
// info prefix). Received packets arrive in batches, one JavaScript turn per batch, so that the stack
// can process a whole wake-up's worth of input and then write its replies together.

export interface LinkStats {
  /** Packets handed to the receive handler. */
  rxPackets: number;
  rxBytes: number;
  /** Handler invocations: rxPackets / rxBatches is the mean batch size per wake-up. */
  rxBatches: number;
  /** Packets the link could not deliver upwards (no handler, truncated, read errors). */
  rxDropped: number;
  /** Packets accepted for transmission and written (or handed to the peer). */
  txPackets: number;
  txBytes: number;
  /** Packets given to send() that were not transmitted (oversize, queue full, closed, errors). */
  txDropped: number;
}

/**
 * What a link vouches for about the packets of one receive batch, parallel to the batch. Only
 * handed to handlers that asked for it (ReceiveOptions.offload).
 */
export interface ReceiveInfo {
  /**
   * checksumValid[i] !== 0: the TCP checksum of packets[i] needs no verification. The kernel either
   * verified it already (virtio-net DATA_VALID) or the packet never left this machine and its
   * checksum field holds only the pseudo-header sum (NEEDS_CSUM), so verifying would fail.
   */
  checksumValid: Uint8Array;
}

export type ReceiveHandler = (packets: Uint8Array[], info?: ReceiveInfo) => void;

export interface ReceiveOptions {
  /**
   * The handler reads ReceiveInfo and accepts TCP/IPv4 super-segments of up to 65535 bytes, larger
   * than the MTU (as any TCP receiver must): the link may then turn its receive offloads on.
   * Without it a link delivers only complete, MTU-sized packets.
   */
  offload?: boolean;
}

/** Transmit offloads a link offers (the TUN device with IFF_VNET_HDR; memory links offer none). */
export interface LinkOffload {
  /**
   * send() with `tcpChecksumPartial` merges runs of consecutive TCP data segments of one
   * connection into super-packets that the kernel cuts up again (TSO).
   */
  readonly tso: boolean;
  /** send() accepts `tcpChecksumPartial`: TCP checksum fields holding only the pseudo-header sum. */
  readonly csum: boolean;
}

export interface SendOptions {
  /**
   * Every unfragmented TCP packet of this call carries in its checksum field the folded
   * pseudo-header sum, not complemented (the emitter's checksumOffload), for the link to complete.
   * Only for links whose `offload.csum` is true.
   */
  tcpChecksumPartial?: boolean;
}

export interface Link {
  /** Largest IPv4 packet, in bytes, the link carries in either direction. */
  readonly mtu: number;
  /**
   * Transmits packets. Never throws for per-packet trouble: oversize or undeliverable packets are
   * counted in `stats.txDropped`. The link does not keep references to the arrays after returning
   * unless documented by the implementation, so callers may reuse their buffers.
   */
  send(packets: readonly Uint8Array[], opts?: SendOptions): void;
  /**
   * Sets the single receive handler (a later call replaces the earlier one). Each packet handed over
   * is a fresh buffer that the handler may keep.
   */
  onReceive(handler: ReceiveHandler, opts?: ReceiveOptions): void;
  /** Transmit offloads; absent on links without any. */
  readonly offload?: LinkOffload;
  /** Stops delivery and releases resources. Idempotent. */
  close(): void;
  readonly stats: LinkStats;
}

export function emptyLinkStats(): LinkStats {
  return { rxPackets: 0, rxBytes: 0, rxBatches: 0, rxDropped: 0, txPackets: 0, txBytes: 0, txDropped: 0 };
}

/**
 * A copy of a packet in a fresh, plain Uint8Array. Not `p.slice()`: on a Node Buffer that returns
 * a view sharing memory, which is exactly what a copy is meant to avoid.
 */
export function copyPacket(p: Uint8Array): Uint8Array {
  return new Uint8Array(p);
}
