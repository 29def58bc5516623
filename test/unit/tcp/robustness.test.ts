import { describe, expect, it } from 'vitest';
import { MS, bytes, established, seg } from './harness.js';
import { defaultTcpConfig, freebsdProfileConfig } from '../../../src/stack/tcp/config.js';
import { mulberry32 } from './pair.js';
import { seqGe, seqLe } from '../../../src/stack/wire/seq.js';
import type { TcpSegment } from '../../../src/stack/wire/types.js';

const FLAG_SETS = ['.', 'P.', 'F.', 'R', 'R.', 'S', 'S.', 'SF', 'FP.', '', 'F', 'SR'];

/** Random segments near and far from the connection's sequence space. */
function randomSegment(r: () => number, rcvNxt: number, sndUna: number): TcpSegment {
  const near = (base: number) => (base + Math.floor((r() - 0.5) * (r() < 0.8 ? 140_000 : 2 ** 32))) >>> 0;
  const flags = FLAG_SETS[Math.floor(r() * FLAG_SETS.length)]!;
  const len = r() < 0.5 ? 0 : Math.floor(r() * 3000);
  const options = r() < 0.5 ? { timestamp: { tsval: Math.floor(r() * 2 ** 32), tsecr: 0 } } : r() < 0.5 ? { sack: [{ left: near(sndUna), right: near(sndUna) }] } : {};
  return seg(flags, near(rcvNxt), near(sndUna), { win: Math.floor(r() * 65536), data: len, options });
}

describe('random segments never break the TCB invariants', () => {
  for (const [name, cfg] of [['linux', defaultTcpConfig()], ['freebsd', freebsdProfileConfig()]] as const) {
    it(`established (${name}): 30 runs of 100 random segments, user calls and timers keep SND.UNA <= SND.NXT <= SND.MAX and never throw`, () => {
      const r = mulberry32(name === 'linux' ? 1 : 2);
      for (let run = 0; run < 30; run++) {
        const c = established({ ...cfg, windowScale: null, timestamps: false });
        let now = 20 * MS;
        for (let i = 0; i < 100 && c.state !== 'CLOSED'; i++) {
          now += Math.floor(r() * 50 * MS);
          const x = r();
          if (x < 0.6) c.onSegment(now, randomSegment(r, c.v.rcvNxt, c.v.sndUna));
          else if (x < 0.7) c.write(now, bytes(Math.floor(r() * 5000)));
          else if (x < 0.75) c.read(now, Math.floor(r() * 4000));
          else if (x < 0.77) c.shutdown(now);
          else {
            const d = c.nextDeadline();
            if (d !== null) {
              now = Math.max(now, d);
              c.onTimer(now);
            }
          }
          const v = c.v;
          expect(seqLe(v.sndUna, v.sndNxt) && seqLe(v.sndNxt, v.sndMax)).toBe(true);
          expect(seqGe(v.rcvAdv, v.rcvNxt) || String(c.state) === 'CLOSED').toBe(true);
          expect(c.readableLength).toBeLessThanOrEqual(c.cfg.rcvBuf + 3000);
          for (const s of c.takeOutput()) {
            expect(s.payload.length).toBeLessThanOrEqual(c.sendMss);
            expect(s.window).toBeLessThanOrEqual(65535);
          }
        }
      }
    });
  }
});
