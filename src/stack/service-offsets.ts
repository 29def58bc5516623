// Where a Duplex's user (the service) stands in both streams, for service boundaries
// (ARCHITECTURE.md 5.5): bytes it has consumed and bytes it has written. Node buffers on both
// sides of a stream, so neither figure is a plain counter: pushed bytes still in the readable
// buffer are not consumed yet, and written bytes may wait in the writable buffer before the
// stream's _write sees them.

import type { Duplex } from 'node:stream';

export class ServiceOffsets {
  /** Bytes pushed into the readable side (consumed ones plus what readableLength still holds). */
  pushed = 0;
  /** Bytes handed to _write/_writev so far. */
  private handed = 0;
  /** Bytes of the batch whose write callback has not run: writableLength still counts them. */
  private inWrite = 0;

  constructor(
    /** Offsets of the first byte this stream carries in each direction (a replica may start mid-stream). */
    private readonly inputBase = 0,
    private readonly outputBase = 0,
  ) {}

  /** Called by _write/_writev with the batch; returns the callback to give the writer. */
  writing<C extends (err?: Error | null) => void>(bytes: number, cb: C): (err?: Error | null) => void {
    this.handed += bytes;
    this.inWrite = bytes;
    return (err?: Error | null) => {
      this.inWrite = 0;
      cb(err);
    };
  }

  /** Input stream offset the service has consumed up to. */
  consumed(d: Duplex): number {
    return this.inputBase + this.pushed - d.readableLength;
  }

  /**
   * Output stream offset the service has written up to. Node counts a chunk in writableLength from
   * write() until its callback, so the batch being written is subtracted once (it is in `handed`).
   */
  written(d: Duplex): number {
    return this.outputBase + this.handed + d.writableLength - this.inWrite;
  }
}
