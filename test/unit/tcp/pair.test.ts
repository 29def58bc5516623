import { describe, expect, it } from 'vitest';
import { plainConfig } from './harness.js';
import { defaultTcpConfig, freebsdProfileConfig } from '../../../src/stack/tcp/config.js';
import { Pair, concat, mulberry32, pattern, sameBytes, streamer } from './pair.js';

const MS = 1000;

function transfer(p: Pair, size: number, seed: number, until = 120_000 * MS): Uint8Array {
  const data = pattern(size, seed);
  const w = streamer(p, 'a', data);
  let bClosed = false;
  p.run(until, () => {
    w();
    if (p.b && p.b.state === 'CLOSE-WAIT' && !bClosed) {
      bClosed = true;
      p.drain();
      p.b.close(p.now);
    }
  });
  p.drain();
  return data;
}

describe('two connections over a simulated link', () => {
  it('established: 2 MB one way without loss arrives byte-exact and both sides close', () => {
    const p = new Pair(defaultTcpConfig(), defaultTcpConfig(), { delayUs: 5 * MS }, { delayUs: 5 * MS });
    const data = transfer(p, 2_000_000, 1);
    expect(sameBytes(concat(p.readB), data)).toBe('equal');
    // A went through TIME-WAIT (60 s) within the 120 s run.
    expect(p.a.state).toBe('CLOSED');
    expect(p.b!.state).toBe('CLOSED');
    // Full-sized segments: 1448 bytes of payload with timestamps, so about size/1448 data segments.
    expect(p.segmentsSent.a).toBeLessThan(Math.ceil(2_000_000 / 1448) + 20);
  });

  it('established: 1 MB with 2% loss and SACK recovers byte-exact', () => {
    const r = mulberry32(7);
    const p = new Pair(defaultTcpConfig(), defaultTcpConfig(), { delayUs: 10 * MS, drop: (n) => n > 2 && r() < 0.02 }, { delayUs: 10 * MS });
    const data = transfer(p, 1_000_000, 2);
    expect(sameBytes(concat(p.readB), data)).toBe('equal');
    expect(p.b!.state).toBe('CLOSED');
  });

  it('established: 1 MB with 2% loss in both directions, NewReno without SACK or timestamps', () => {
    const r = mulberry32(11);
    const cfg = plainConfig({ rcvBuf: 256 * 1024, sndBuf: 256 * 1024, windowScale: 7 });
    const p = new Pair(cfg, cfg, { delayUs: 10 * MS, drop: (n) => n > 2 && r() < 0.02 }, { delayUs: 10 * MS, drop: (n) => n > 2 && r() < 0.02 });
    const data = transfer(p, 1_000_000, 3);
    expect(sameBytes(concat(p.readB), data)).toBe('equal');
  });

  it('established: reordering and duplication-free jitter still deliver in order', () => {
    const r = mulberry32(5);
    const p = new Pair(defaultTcpConfig(), defaultTcpConfig(), { delayUs: 5 * MS, jitter: () => Math.floor(r() * 8 * MS) }, { delayUs: 5 * MS });
    const data = transfer(p, 500_000, 4);
    expect(sameBytes(concat(p.readB), data)).toBe('equal');
  });

  it('sequence wrap: ISS just below 2^32 on both sides, data crosses the wrap both ways', () => {
    const p = new Pair(defaultTcpConfig(), defaultTcpConfig(), { delayUs: 2 * MS }, { delayUs: 2 * MS }, 0xffffff00, 0xfffff000);
    const up = pattern(300_000, 8);
    const down = pattern(300_000, 9);
    const wa = streamer(p, 'a', up, false);
    const wb = streamer(p, 'b', down, false);
    p.run(60_000 * MS, () => {
      wa();
      wb();
    });
    p.drain();
    expect(sameBytes(concat(p.readB), up)).toBe('equal');
    expect(sameBytes(concat(p.readA), down)).toBe('equal');
  });

  it('established: zero window when the reader stalls, persist probes, then resumes when it reads', () => {
    const cfgB = { ...defaultTcpConfig(), rcvBuf: 64 * 1024 };
    const p = new Pair(defaultTcpConfig(), cfgB, { delayUs: 5 * MS }, { delayUs: 5 * MS });
    const data = pattern(300_000, 10);
    let off = 0;
    let reading = false;
    const got: Uint8Array[] = [];
    p.run(20_000 * MS, () => {
      if (p.a.state === 'ESTABLISHED' && off < data.length) off += p.a.write(p.now, data.subarray(off, off + 65536));
      if (reading && p.b) for (let x = p.b.read(p.now); x; x = p.b.read(p.now)) got.push(x.slice());
      if (!reading && p.now > 5_000 * MS) reading = true;
    });
    expect(sameBytes(concat(got), data)).toBe('equal');
  });

  it('established: CUBIC as the congestion controller also recovers byte-exact under loss', () => {
    const r = mulberry32(13);
    const cfg = { ...defaultTcpConfig(), congestionControl: 'cubic' as const };
    const p = new Pair(cfg, cfg, { delayUs: 10 * MS, drop: (n) => n > 2 && r() < 0.02 }, { delayUs: 10 * MS });
    const data = transfer(p, 1_000_000, 14);
    expect(sameBytes(concat(p.readB), data)).toBe('equal');
    expect(p.a.cc.name).toBe('cubic');
  });

  it('established: FreeBSD profile on one side, Linux-like on the other, with loss', () => {
    const r = mulberry32(17);
    const p = new Pair(defaultTcpConfig(), freebsdProfileConfig(), { delayUs: 3 * MS, drop: (n) => n > 2 && r() < 0.01 }, { delayUs: 3 * MS, drop: (n) => n > 2 && r() < 0.01 });
    const data = transfer(p, 500_000, 15);
    expect(sameBytes(concat(p.readB), data)).toBe('equal');
  });
});
