// Bulk download over one connection. With --seconds the client asks for an endless stream, counts
// what arrives during that time, then asks the server to stop and drains the rest; without it, it
// downloads exactly --mib and times the whole transfer.
// Usage: download.ts --host H [--port 5001] (--seconds 5 | --mib 256) [--timeout-ms 60000]

import { encodeSourceRequest, MiB, SOURCE_PORT } from '../protocol.js';
import { connect, flags, nowUs, numFlag, runClient, strFlag } from './common.js';

const f = flags();
const host = strFlag(f, 'host');
const port = numFlag(f, 'port', SOURCE_PORT);
const seconds = numFlag(f, 'seconds', 0);
const bytes = seconds > 0 ? Number.MAX_SAFE_INTEGER : Math.round(numFlag(f, 'mib', 256) * MiB);

runClient(
  'download',
  async () => {
    const sock = await connect(host, port);
    const t0 = nowUs();
    let received = 0;
    let atStop = 0;
    let tStop = 0;
    await new Promise<void>((resolve, reject) => {
      sock.on('data', (d: Buffer) => {
        received += d.length;
      });
      sock.once('end', () => resolve());
      sock.once('error', reject);
      sock.write(encodeSourceRequest(bytes));
      if (seconds > 0)
        setTimeout(() => {
          tStop = nowUs();
          atStop = received;
          sock.write(Buffer.from([0]));
        }, seconds * 1000);
    });
    const t1 = nowUs();
    sock.end();
    if (seconds > 0) {
      const s = (tStop - t0) / 1e6;
      return { bytes: atStop, seconds: s, gbps: (atStop * 8) / s / 1e9, drained: received - atStop };
    }
    if (received !== bytes) throw new Error(`received ${received} bytes, expected ${bytes}`);
    const s = (t1 - t0) / 1e6;
    return { bytes, seconds: s, gbps: (bytes * 8) / s / 1e9 };
  },
  numFlag(f, 'timeout-ms', 60_000),
);
