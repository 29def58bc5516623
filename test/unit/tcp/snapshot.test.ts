import { describe, expect, it } from 'vitest';
import { MS, bytes, established, seg, testEnv, plainConfig } from './harness.js';
import { restoreConnection, type TcbSnapshot } from '../../../src/stack/tcp/snapshot.js';
import { defaultTcpConfig } from '../../../src/stack/tcp/config.js';
import { Pair, concat, pattern, sameBytes } from './pair.js';

/** Round-trips the plain parts through JSON, as a replication channel would. */
function viaJson(s: TcbSnapshot): TcbSnapshot {
  const plain = JSON.parse(JSON.stringify({ ...s, sendBuffer: null, recvBuffer: null, outOfOrder: null }));
  return { ...plain, sendBuffer: s.sendBuffer, recvBuffer: s.recvBuffer, outOfOrder: s.outOfOrder };
}

describe('snapshot and restore', () => {
  it('established: a restored TCB has the same variables, buffers and deadlines', () => {
    const c = established();
    c.write(20 * MS, bytes(3000));
    c.onSegment(21 * MS, seg('.', 5001, 1001, { data: 100 }));
    c.onSegment(22 * MS, seg('.', 5201, 1001, { data: 100 }));
    const s = viaJson(c.snapshot());
    const r = restoreConnection(s, plainConfig(), testEnv());
    expect(r.state).toBe('ESTABLISHED');
    expect(r.v).toEqual(c.v);
    expect(r.readableLength).toBe(100);
    expect(r.nextDeadline()).toBe(c.nextDeadline());
    expect(r.read(30 * MS)).toEqual(bytes(100, 5001));
    // The out-of-order segment survives: filling the hole delivers it.
    r.onSegment(31 * MS, seg('.', 5101, 1001, { data: 100 }));
    expect(r.readableLength).toBe(200);
    expect(r.rto.srttUs).toBe(c.rto.srttUs);
    expect(r.cc.cwnd).toBe(c.cc.cwnd);
  });

  it('established: a transfer continues byte-exact after the receiver is replaced by its restored snapshot', () => {
    const cfg = defaultTcpConfig();
    const p = new Pair(cfg, cfg, { delayUs: 5 * MS }, { delayUs: 5 * MS });
    const data = pattern(600_000, 21);
    let off = 0;
    let swapped = false;
    const got: Uint8Array[] = [];
    p.run(30_000 * MS, () => {
      if (p.a.state === 'ESTABLISHED' && off < data.length) off += p.a.write(p.now, data.subarray(off, off + 65536));
      if (p.b) for (let x = p.b.read(p.now); x; x = p.b.read(p.now)) got.push(x.slice());
      if (!swapped && p.b && concat(got).length > 200_000) {
        swapped = true;
        p.b = restoreConnection(viaJson(p.b.snapshot()), cfg, testEnv());
      }
    });
    expect(swapped).toBe(true);
    expect(sameBytes(concat(got), data)).toBe('equal');
  });
});
