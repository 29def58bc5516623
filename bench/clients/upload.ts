// Bulk upload over one connection: sends N bytes to the sink, half-closes, and stops the clock when
// the sink reports the count it received (so every byte is known to have arrived).
// Usage: upload.ts --host H [--port 5002] [--mib 256] [--timeout-ms 60000]

import { MiB, patternChunk, SINK_PORT } from '../protocol.js';
import { connect, flags, nowUs, numFlag, runClient, strFlag } from './common.js';

const f = flags();
const host = strFlag(f, 'host');
const port = numFlag(f, 'port', SINK_PORT);
const bytes = Math.round(numFlag(f, 'mib', 256) * MiB);
const CHUNK = 256 * 1024;
const chunk = patternChunk(CHUNK);

runClient(
  'upload',
  async () => {
    const sock = await connect(host, port);
    const t0 = nowUs();
    let reply = '';
    await new Promise<void>((resolve, reject) => {
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        reply += d;
      });
      sock.once('end', () => resolve());
      sock.once('error', reject);
      let remaining = bytes;
      const pump = (): void => {
        while (remaining > 0) {
          const n = Math.min(CHUNK, remaining);
          remaining -= n;
          if (!sock.write(n === CHUNK ? chunk : chunk.subarray(0, n))) {
            sock.once('drain', pump);
            return;
          }
        }
        sock.end();
      };
      pump();
    });
    const t1 = nowUs();
    const counted = Number(reply.trim());
    if (counted !== bytes) throw new Error(`sink counted ${reply.trim() || 'nothing'} bytes, expected ${bytes}`);
    const seconds = (t1 - t0) / 1e6;
    return { bytes, seconds, gbps: (bytes * 8) / seconds / 1e9 };
  },
  numFlag(f, 'timeout-ms', 60_000),
);
