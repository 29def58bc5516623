// Bulk download over one connection: asks the source server for N bytes and counts them.
// Usage: download.ts --host H [--port 5001] [--mib 256] [--timeout-ms 60000]

import { encodeSourceRequest, MiB, SOURCE_PORT } from '../protocol.js';
import { connect, flags, nowUs, numFlag, runClient, strFlag } from './common.js';

const f = flags();
const host = strFlag(f, 'host');
const port = numFlag(f, 'port', SOURCE_PORT);
const bytes = Math.round(numFlag(f, 'mib', 256) * MiB);

runClient(
  'download',
  async () => {
    const sock = await connect(host, port);
    const t0 = nowUs();
    let received = 0;
    let tFirst = 0;
    await new Promise<void>((resolve, reject) => {
      sock.on('data', (d: Buffer) => {
        if (received === 0) tFirst = nowUs();
        received += d.length;
      });
      sock.once('end', () => resolve());
      sock.once('error', reject);
      sock.write(encodeSourceRequest(bytes));
    });
    const t1 = nowUs();
    sock.end();
    if (received !== bytes) throw new Error(`received ${received} bytes, expected ${bytes}`);
    const seconds = (t1 - t0) / 1e6;
    return { bytes, seconds, gbps: (bytes * 8) / seconds / 1e9, firstByteUs: tFirst - t0 };
  },
  numFlag(f, 'timeout-ms', 60_000),
);
