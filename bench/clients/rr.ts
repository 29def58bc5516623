// Request/response latency: sequential round-trips of a small message over one echo connection.
// Usage: rr.ts --host H [--port 5003] [--count 20000] [--warmup 2000] [--size 64]

import { ECHO_PORT, patternChunk } from '../protocol.js';
import { connect, flags, nowUs, numFlag, runClient, strFlag } from './common.js';
import { percentile } from './stats.js';

const f = flags();
const host = strFlag(f, 'host');
const port = numFlag(f, 'port', ECHO_PORT);
const count = numFlag(f, 'count', 20_000);
const warmup = numFlag(f, 'warmup', 2_000);
const size = numFlag(f, 'size', 64);

runClient(
  'rr',
  async () => {
    const sock = await connect(host, port);
    const msg = patternChunk(size);
    const lat = new Float64Array(count);
    let tStart = 0;
    await new Promise<void>((resolve, reject) => {
      let i = 0;
      let got = 0;
      let t = 0;
      const send = (): void => {
        got = 0;
        t = nowUs();
        sock.write(msg);
      };
      sock.on('data', (d: Buffer) => {
        got += d.length;
        if (got < size) return;
        if (got > size) {
          reject(new Error(`round-trip ${i}: echo returned ${got} bytes, expected ${size}`));
          return;
        }
        if (i === warmup) tStart = t;
        if (i >= warmup) lat[i - warmup] = nowUs() - t;
        i++;
        if (i === warmup + count) resolve();
        else send();
      });
      sock.once('error', reject);
      sock.once('end', () => reject(new Error(`echo closed after ${i} round-trips`)));
      send();
    });
    sock.removeAllListeners('end');
    sock.end();
    lat.sort();
    let sum = 0;
    for (const v of lat) sum += v;
    return {
      count,
      seconds: (nowUs() - tStart) / 1e6,
      size,
      p50Us: percentile(lat, 0.5),
      p99Us: percentile(lat, 0.99),
      meanUs: sum / count,
      maxUs: lat[count - 1],
    };
  },
  numFlag(f, 'timeout-ms', 120_000),
);
