// Connection handlers for the bench servers, written against Node's Duplex so that the same code
// runs on a `net.Socket` (Linux TCP) and on an understudy socket (a net-like Duplex).

import type { Duplex } from 'node:stream';
import { decodeSourceRequest, encodeSinkReply, patternChunk, SOURCE_REQUEST_LEN } from '../protocol.js';

const CHUNK = 256 * 1024;
const chunk = patternChunk(CHUNK);

export type BenchHandler = (sock: Duplex) => void;

/**
 * Reads the byte count, then writes that many bytes honouring backpressure and ends. Any byte the
 * client sends after the request stops the stream early (timed downloads use that to end cleanly).
 */
export const sourceHandler: BenchHandler = (sock) => {
  let header = Buffer.alloc(0);
  let remaining = -1;
  let ended = false;
  sock.on('error', () => sock.destroy());
  const finish = (): void => {
    if (ended) return;
    ended = true;
    sock.end();
  };
  const pump = (): void => {
    while (remaining > 0) {
      const n = Math.min(CHUNK, remaining);
      remaining -= n;
      // The chunk is never modified, so sharing it across pending writes is safe.
      if (!sock.write(n === CHUNK ? chunk : chunk.subarray(0, n))) {
        sock.once('drain', pump);
        return;
      }
    }
    finish();
  };
  sock.on('data', (d: Buffer) => {
    if (remaining >= 0) {
      // A stop request: what is already queued still goes out, then FIN.
      remaining = 0;
      if (sock.writableNeedDrain) return; // pump() ends the stream at the next 'drain'
      finish();
      return;
    }
    header = Buffer.concat([header, d]);
    if (header.length < SOURCE_REQUEST_LEN) return;
    remaining = decodeSourceRequest(header);
    if (header.length > SOURCE_REQUEST_LEN) remaining = 0;
    pump();
  });
};

/** Counts bytes until the client's FIN, then reports the count and ends. */
export const sinkHandler: BenchHandler = (sock) => {
  let count = 0;
  sock.on('error', () => sock.destroy());
  sock.on('data', (d: Buffer) => {
    count += d.length;
  });
  sock.on('end', () => {
    sock.end(encodeSinkReply(count));
  });
};

/** Echoes everything; half-closes after the client does. */
export const echoHandler: BenchHandler = (sock) => {
  sock.on('error', () => sock.destroy());
  sock.pipe(sock);
};
