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

export type ReceiveHandler = (packets: Uint8Array[]) => void;

export interface Link {
  /** Largest IPv4 packet, in bytes, the link carries in either direction. */
  readonly mtu: number;
  /**
   * Transmits packets. Never throws for per-packet trouble: oversize or undeliverable packets are
   * counted in `stats.txDropped`. The link does not keep references to the arrays after returning
   * unless documented by the implementation, so callers may reuse their buffers.
   */
  send(packets: readonly Uint8Array[]): void;
  /**
   * Sets the single receive handler (a later call replaces the earlier one). Each packet handed over
   * is a fresh buffer that the handler may keep.
   */
  onReceive(handler: ReceiveHandler): void;
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
