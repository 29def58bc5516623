import { describe, expect, it } from 'vitest';
import { defaultTcpConfig, freebsdProfileConfig } from '../../../src/stack/tcp/config.js';
import type { TcpConfig } from '../../../src/stack/tcp/api.js';
import { Pair, concat, mulberry32, pattern, sameBytes, streamer } from './pair.js';

const MS = 1000;

/** Bidirectional transfers over links that lose, reorder and duplicate, many seeds. */
describe('established: bidirectional transfer over a hostile link, seeded', () => {
  for (let seed = 1; seed <= 24; seed++) {
    it(`seed ${seed}: both directions arrive byte-exact and both sides reach CLOSED`, () => {
      const r = mulberry32(seed * 7919);
      const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
      const base = (): TcpConfig => {
        const c = pick([defaultTcpConfig(), freebsdProfileConfig()]);
        return {
          ...c,
          sack: r() < 0.7,
          timestamps: r() < 0.7,
          windowScale: r() < 0.7 ? c.windowScale : null,
          rcvBuf: pick([8 * 1024, 64 * 1024, 256 * 1024]),
          sndBuf: pick([8 * 1024, 64 * 1024]),
          nagle: r() < 0.5,
          congestionControl: pick(['newreno', 'cubic'] as const),
        };
      };
      const loss = pick([0, 0.01, 0.05]);
      const link = () => ({
        delayUs: pick([1, 5, 20]) * MS,
        drop: (n: number) => n > 3 && r() < loss,
        jitter: () => (r() < 0.2 ? Math.floor(r() * 10 * MS) : 0),
        duplicate: () => r() < 0.02,
      });
      const issA = Math.floor(r() * 2 ** 32);
      const issB = Math.floor(r() * 2 ** 32);
      const p = new Pair(base(), base(), link(), link(), issA, issB);
      const up = pattern(20_000 + Math.floor(r() * 200_000), seed);
      const down = pattern(Math.floor(r() * 100_000), seed + 1000);
      const wa = streamer(p, 'a', up);
      const wb = streamer(p, 'b', down);
      p.run(600_000 * MS, () => {
        wa();
        wb();
      });
      p.drain();
      expect(sameBytes(concat(p.readB), up)).toBe('equal');
      expect(sameBytes(concat(p.readA), down)).toBe('equal');
      expect(p.a.state).toBe('CLOSED');
      expect(p.b!.state).toBe('CLOSED');
    });
  }
});
