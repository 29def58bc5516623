import { describe, expect, it } from 'vitest';
import { createTcpEnv } from '../../../src/stack/env.js';

const tuple = { localAddr: 0xc6120001, localPort: 80, remoteAddr: 0xc6120002, remotePort: 40000 };

describe('TCP env', () => {
  it('ISNs: the same key gives the same ISN for a tuple and time, another key or tuple a different one', () => {
    const key = new Uint8Array(16).fill(9);
    const a = createTcpEnv({ isnKey: key });
    const b = createTcpEnv({ isnKey: key });
    const c = createTcpEnv({ isnKey: new Uint8Array(16).fill(1) });
    expect(a.isn(tuple, 1_000_000)).toBe(b.isn(tuple, 1_000_000));
    expect(a.isn(tuple, 1_000_000)).not.toBe(c.isn(tuple, 1_000_000));
    expect(a.isn(tuple, 1_000_000)).not.toBe(a.isn({ ...tuple, remotePort: 40001 }, 1_000_000));
  });

  it('ISNs advance with the clock (RFC 6528: a timer plus the keyed hash)', () => {
    const env = createTcpEnv({ isnKey: new Uint8Array(16) });
    const d = (env.isn(tuple, 4_000_000) - env.isn(tuple, 0)) >>> 0;
    expect(d).toBeGreaterThan(0);
  });

  it('the timestamp clock ticks in milliseconds from the given offset', () => {
    const env = createTcpEnv({ tsOffset: 100 });
    expect(env.tsClock(0)).toBe(100);
    expect(env.tsClock(2_500_000)).toBe(2600);
  });

  it('challenge ACKs: each second allows between half and one and a half times the limit, then refills', () => {
    const env = createTcpEnv({ challengeAckPerSecond: 100 });
    const budgets: number[] = [];
    for (let second = 0; second < 20; second++) {
      let n = 0;
      for (let i = 0; i < 300; i++) if (env.allowChallengeAck(second * 1_000_000 + i)) n++;
      budgets.push(n);
    }
    for (const b of budgets) {
      expect(b).toBeGreaterThanOrEqual(50);
      expect(b).toBeLessThan(150);
    }
    // Randomised per window (CVE-2016-5696): not the same count every second.
    expect(new Set(budgets).size).toBeGreaterThan(1);
  });

  it('random() gives unsigned 32-bit integers, and the injected source is used', () => {
    const env = createTcpEnv();
    for (let i = 0; i < 2000; i++) {
      const r = env.random();
      expect(Number.isInteger(r) && r >= 0 && r < 2 ** 32).toBe(true);
    }
    expect(createTcpEnv({ random: () => 42 }).random()).toBe(42);
  });
});
