// The tiny wire protocol shared by the bench clients and servers. Both server flavours (Node on
// Linux TCP, and understudy) run the same handlers on the same ports, so the only variable between
// the two columns of the results table is the TCP stack.

/** Server sends the requested number of bytes, then closes its side. */
export const SOURCE_PORT = 5001;
/** Server swallows everything until the client's FIN, then answers with the byte count. */
export const SINK_PORT = 5002;
/** Server echoes every byte and closes its side after the client's FIN. */
export const ECHO_PORT = 5003;

/** The source request: the byte count as an unsigned 64-bit big-endian integer. */
export const SOURCE_REQUEST_LEN = 8;

export function encodeSourceRequest(bytes: number): Buffer {
  const b = Buffer.alloc(SOURCE_REQUEST_LEN);
  b.writeBigUInt64BE(BigInt(bytes));
  return b;
}

export function decodeSourceRequest(b: Buffer): number {
  return Number(b.readBigUInt64BE(0));
}

/** The sink's answer: the decimal byte count and a newline. */
export function encodeSinkReply(bytes: number): string {
  return `${bytes}\n`;
}

export const MiB = 1024 * 1024;

/**
 * A deterministic byte pattern for payloads: cheap to produce, and not all zeros so that a stack
 * that mixes up offsets produces visibly wrong bytes when a client chooses to verify.
 */
export function patternChunk(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 131 + (i >>> 8) * 7) & 0xff;
  return b;
}
