// Bulk upload over one connection: sends to the sink (--mib bytes, or for --seconds), half-closes,
// and stops the clock when the sink reports the count it received, so every byte counted is known
// to have arrived.
// Usage: upload.ts --host H [--port 5002] (--seconds 5 | --mib 256) [--timeout-ms 60000]

import { MiB, patternChunk, SINK_PORT } from '../protocol.js';
import { connect, flags, nowUs, numFlag, runClient, strFlag } from './common.js';

const f = flags();
const host = strFlag(f, 'host');
const port = numFlag(f, 'port', SINK_PORT);
const seconds = numFlag(f, 'seconds', 0);
const limit = seconds > 0 ? Number.MAX_SAFE_INTEGER : Math.round(numFlag(f, 'mib', 256) * MiB);
const CHUNK = 256 * 1024;
const chunk = patternChunk(CHUNK);

runClient(
  'upload',
  async () => {
    const sock = await connect(host, port);
    const t0 = nowUs();
    let reply = '';
    let sent = 0;
    await new Promise<void>((resolve, reject) => {
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        reply += d;
      });
      sock.once('end', () => resolve());
      sock.once('error', reject);
      let remaining = limit;
      const stopAt = t0 + seconds * 1e6;
      const pump = (): void => {
        while (remaining > 0) {
          if (seconds > 0 && nowUs() >= stopAt) break;
          const n = Math.min(CHUNK, remaining);
          remaining -= n;
          sent += n;
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
    if (counted !== sent) throw new Error(`sink counted ${reply.trim() || 'nothing'} bytes, expected ${sent}`);
    const s = (t1 - t0) / 1e6;
    return { bytes: sent, seconds: s, gbps: (sent * 8) / s / 1e9 };
  },
  numFlag(f, 'timeout-ms', 60_000),
);
