// Read buffers for the node that receives the log (the dialler): every socket read lands right
// after the previous one in a large slab, handed to Node through `net.connect`'s `onread`. A frame
// split across reads is then one contiguous view (FrameDecoder joins adjacent pieces) instead of a
// reassembly copy, and one allocation serves a megabyte of reads instead of one per 64 KiB read:
// on the backup, those allocations and copies were a large share of its time in garbage
// collection. A slab is never written again once handed out, so views into it stay valid for as
// long as anyone holds them, as with Node's own read buffers.

/** Room below which the next read starts a new slab. */
const MIN_READ_BYTES = 64 * 1024;

export class ReadSlabs {
  private slab: Buffer;
  private used = 0;

  constructor(private readonly slabBytes = 1024 * 1024) {
    if (!(slabBytes >= MIN_READ_BYTES)) throw new RangeError(`a read slab must hold at least ${MIN_READ_BYTES} bytes`);
    this.slab = Buffer.allocUnsafeSlow(slabBytes);
  }

  /** The buffer for the next read: the unused rest of the current slab, or a fresh slab. */
  next(): Buffer {
    if (this.slab.length - this.used < MIN_READ_BYTES) {
      this.slab = Buffer.allocUnsafeSlow(this.slabBytes);
      this.used = 0;
    }
    return this.slab.subarray(this.used);
  }

  /** The read into the last buffer from next() filled n bytes; returns a view of them. */
  filled(buf: Uint8Array, n: number): Uint8Array {
    if (buf.buffer === this.slab.buffer && buf.byteOffset === this.slab.byteOffset + this.used) this.used += n;
    return buf.subarray(0, n);
  }
}
