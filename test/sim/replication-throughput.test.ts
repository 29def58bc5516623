// What replication costs in the simulation: the same bulk echo through a primary without a backup
// and through a protected one (records, output commit, the backup applying and its replica
// echoing too). Figures are printed, never asserted; the bytes are.

import { afterAll, describe, expect, it } from 'vitest';
import { createEchoService } from '../../src/services/echo.js';
import { ReplicationSim, VIP, randomBytes } from './replication-harness.js';

const rows: Record<string, string | number>[] = [];
afterAll(() => {
  console.log('\nbulk echo through a primary, in memory (one process runs every node):');
  console.table(rows);
});

async function bulk(noBackup: boolean): Promise<number> {
  const s = new ReplicationSim({ seed: 91, port: 7, service: createEchoService, noBackup, replicationDelayMs: () => 0 });
  try {
    const datas = Array.from({ length: 4 }, () => randomBytes(s.prng, 1024 * 1024));
    const started = performance.now();
    await Promise.all(
      datas.map(async (d) => {
        const sock = s.client.connect({ host: VIP, port: 7 });
        const chunks: Buffer[] = [];
        sock.on('data', (c: Buffer) => chunks.push(c));
        const ended = new Promise<void>((resolve, reject) => {
          sock.once('end', resolve);
          sock.once('error', reject);
        });
        sock.end(d);
        await ended;
        expect(Buffer.concat(chunks).equals(d)).toBe(true);
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const mib = (2 * datas.length * 1024 * 1024) / 2 ** 20;
    rows.push({ primary: noBackup ? 'unprotected' : 'protected', MiB: mib, seconds: seconds.toFixed(2), 'MiB/s': (mib / seconds).toFixed(1), 'log records': s.primary.status().lastLsn });
    return mib / seconds;
  } finally {
    await s.close();
  }
}

describe('replication cost in simulation', () => {
  it('echoes 4 MiB each way byte-exact with and without a backup', async () => {
    const plain = await bulk(true);
    const replicated = await bulk(false);
    rows.push({ primary: 'ratio', 'MiB/s': (replicated / plain).toFixed(2) });
  }, 120_000);
});
