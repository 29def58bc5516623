// New connections per second: each connection connects, exchanges one small message with echo and
// closes (the client closes first, so TIME-WAIT stays on the client side). `--parallel` workers run
// such connections back to back until `--count` connections or `--seconds` have elapsed.
// Usage: cps.ts --host H [--port 5003] [--parallel 1] [--count 5000] [--seconds 3] [--size 64]

import { ECHO_PORT, patternChunk } from '../protocol.js';
import { connect, flags, nowUs, numFlag, runClient, strFlag } from './common.js';

const f = flags();
const host = strFlag(f, 'host');
const port = numFlag(f, 'port', ECHO_PORT);
const parallel = numFlag(f, 'parallel', 1);
const maxCount = numFlag(f, 'count', 5_000);
const seconds = numFlag(f, 'seconds', 3);
const size = numFlag(f, 'size', 64);
const msg = patternChunk(size);

async function oneConnection(): Promise<void> {
  const sock = await connect(host, port);
  await new Promise<void>((resolve, reject) => {
    let got = 0;
    sock.on('data', (d: Buffer) => {
      got += d.length;
      if (got === size) sock.end();
    });
    sock.once('error', reject);
    sock.once('close', () => {
      if (got === size) resolve();
      else reject(new Error(`echo returned ${got} bytes, expected ${size}`));
    });
    sock.write(msg);
  });
}

runClient(
  'cps',
  async () => {
    const t0 = nowUs();
    const deadline = t0 + seconds * 1e6;
    let started = 0;
    let done = 0;
    const errors: string[] = [];
    const worker = async (): Promise<void> => {
      while (started < maxCount && nowUs() < deadline) {
        started++;
        try {
          await oneConnection();
          done++;
        } catch (e) {
          errors.push(e instanceof Error ? e.message : String(e));
        }
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    const elapsed = (nowUs() - t0) / 1e6;
    if (done === 0) throw new Error(`all ${errors.length} connection(s) failed; first: ${errors[0]}`);
    // A failed connection still cost its time (often a connect timeout), which the rate shows;
    // the count and first error go into the notes.
    return {
      parallel,
      connections: done,
      seconds: elapsed,
      perSecond: done / elapsed,
      failed: errors.length,
      ...(errors.length > 0 ? { firstError: errors[0] } : {}),
    };
  },
  numFlag(f, 'timeout-ms', 60_000),
);
