// Cuts a received replication byte stream at frame boundaries, from the length field of each
// header, without verifying anything: the fault pipe on the receive side (message-faults.ts) must
// act on whole frames before the FrameDecoder checks their MAC and counter, so that a frame it
// duplicates, swaps or corrupts is refused by the authentication exactly as one from the wire would
// be. A stream that does not look like frames (bad magic, a length over the limit) is handed on
// unframed, and the decoder refuses it.

import { DEFAULT_MAX_FRAME_BODY, FRAME_HEADER_BYTES, tagBytesFor } from './framing.js';

/** A piece of one frame; `end` marks its last piece. Pieces are views into the received chunks. */
export type PieceSink = (piece: Uint8Array, end: boolean) => void;

export class FrameCutter {
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerHave = 0;
  /** Body and MAC bytes still to come of the current frame, once its header is complete. */
  private remaining = 0;
  /** Not a frame stream: everything goes on as one endless piece. */
  private unframed = false;

  constructor(private readonly maxBody: number = DEFAULT_MAX_FRAME_BODY) {}

  cut(chunk: Uint8Array, emit: PieceSink): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.unframed) {
        emit(chunk.subarray(at), false);
        return;
      }
      const start = at;
      if (this.remaining === 0) {
        const n = Math.min(FRAME_HEADER_BYTES - this.headerHave, chunk.length - at);
        this.header.set(chunk.subarray(at, at + n), this.headerHave);
        this.headerHave += n;
        at += n;
        if (this.headerHave < FRAME_HEADER_BYTES) {
          emit(chunk.subarray(start, at), false);
          return;
        }
        const h = this.header;
        const bodyLen = new DataView(h.buffer).getUint32(4, true);
        // Same magic as framing.ts ('U', 'S'): anything else is left for the decoder to refuse.
        if (h[0] !== 0x55 || h[1] !== 0x53 || bodyLen > this.maxBody) {
          this.unframed = true;
          emit(chunk.subarray(start), false);
          return;
        }
        this.remaining = bodyLen + tagBytesFor(h[3]!);
      }
      const take = Math.min(this.remaining, chunk.length - at);
      this.remaining -= take;
      at += take;
      const end = this.remaining === 0;
      if (end) this.headerHave = 0;
      emit(chunk.subarray(start, at), end);
    }
  }
}
