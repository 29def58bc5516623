// Connection handlers for the bench servers, written against Node's Duplex so that the same code
// runs on a `net.Socket` (Linux TCP) and on an understudy socket (a net-like Duplex).

import type { Duplex } from 'node:stream';
import { decodeSourceRequest, encodeSinkReply, patternChunk, SOURCE_REQUEST_LEN } from '../protocol.js';

const CHUNK = 256 * 1024;
const chunk = patternChunk(CHUNK);

export type BenchHandler = (sock: Duplex) => void;

/** Reads the byte count, writes that many bytes honouring backpressure, then ends. */
export const sourceHandler: BenchHandler = (sock) => {
  let header = Buffer.alloc(0);
  let started = false;
  sock.on('error', () => sock.destroy());
  const onData = (d: Buffer): void => {
    if (started) return;
    header = Buffer.concat([header, d]);
    if (header.length < SOURCE_REQUEST_LEN) return;
    started = true;
    sock.off('data', onData);
    // Keep the readable side flowing so a FIN from the client is noticed.
    sock.resume();
    let remaining = decodeSourceRequest(header);
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
      sock.end();
    };
    pump();
  };
  sock.on('data', onData);
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
