import { describe, expect, it } from 'vitest';
import { CUBIC_BETA, CUBIC_C, CubicController } from '../../../../src/stack/tcp/congestion-cubic.js';
import {
  type CongestionController,
  createCongestionController,
  restoreCongestionController,
} from '../../../../src/stack/tcp/congestion.js';

const MSS = 1000;
const S = 1_000_000;
const BIG = 1e12;

/** Grows a fresh controller in slow start to `segments` segments. */
function grown(segments: number): CubicController {
  const cc = createCongestionController('cubic', MSS, 10) as CubicController;
  while (cc.cwnd < segments * MSS) cc.onAck(0, MSS, null, BIG);
  return cc;
}

/** A cwnd-limited sender: each RTT, one ACK per segment of the window, spread over the RTT. */
function run(cc: CongestionController, from: number, until: number, rttUs: number): Map<number, number> {
  const trace = new Map<number, number>(); // time (us) -> cwnd, at each RTT start
  let now = from;
  while (now < until) {
    trace.set(now, cc.cwnd);
    const n = Math.max(1, Math.floor(cc.cwnd / MSS));
    for (let i = 0; i < n; i++) cc.onAck(now + Math.floor((i * rttUs) / n), MSS, rttUs, BIG);
    now += rttUs;
  }
  trace.set(now, cc.cwnd);
  return trace;
}

function at(trace: Map<number, number>, t: number): number {
  let best = 0;
  for (const [k, v] of trace) if (k <= t) best = v;
  return best;
}

describe('cubic multiplicative decrease', () => {
  it('reduces to beta * FlightSize and remembers W_max', () => {
    const cc = grown(100);
    cc.onEnterRecovery(0, 100 * MSS);
    expect(cc.name).toBe('cubic');
    expect(cc.ssthresh).toBe(CUBIC_BETA * 100 * MSS);
    expect(cc.cwnd).toBe(70 * MSS);
    expect(cc.wMaxBytes).toBe(100 * MSS);
  });

  it('applies fast convergence when losing below the previous W_max', () => {
    const cc = grown(100);
    cc.onEnterRecovery(0, 100 * MSS);
    cc.onExitRecovery(0); // cwnd 70 segments < W_max 100
    cc.onEnterRecovery(1, 70 * MSS);
    expect(cc.wMaxBytes).toBeCloseTo((70 * MSS * (1 + CUBIC_BETA)) / 2, 6);
    expect(cc.cwnd).toBe(49 * MSS);
  });

  it('goes to one segment on RTO and restarts the curve with K = 0 from there', () => {
    const cc = grown(100);
    cc.onRetransmitTimeout(0, 100 * MSS);
    expect(cc.cwnd).toBe(MSS);
    expect(cc.ssthresh).toBe(70 * MSS);
    while (cc.cwnd < cc.ssthresh) cc.onAck(0, MSS, null, BIG);
    cc.onAck(10, MSS, 100_000, BIG); // first ACK in avoidance opens the epoch
    expect(cc.kSeconds).toBe(0);
    expect(cc.wMaxBytes).toBe(70 * MSS);
  });
});

describe('cubic window growth curve', () => {
  it('is concave up to W_max at t = K, flat around K, then convex', () => {
    const cc = grown(1000);
    cc.onEnterRecovery(0, 1000 * MSS);
    cc.onExitRecovery(0);
    const rtt = 200_000;
    const trace = run(cc, 0, 16 * S, rtt);
    const k = Math.cbrt((1000 - 700) / CUBIC_C); // 9.09 s
    expect(cc.kSeconds).toBeCloseTo(k, 6);

    const growth = (a: number, b: number) => (at(trace, b * S) - at(trace, a * S)) / MSS;
    const early = growth(0, 1);
    const plateau = growth(k - 0.5, k + 0.5);
    const late = growth(k + 5, k + 6);
    expect(early).toBeGreaterThan(40); // W_cubic'(0) = 3C*K^2 = 99 seg/s
    expect(plateau).toBeLessThan(early / 10);
    expect(late).toBeGreaterThan(plateau * 5);
    // The window reaches W_max one RTT before t = K (the target is W_cubic(t + RTT)).
    expect(at(trace, k * S) / MSS).toBeGreaterThan(990);
    expect(at(trace, k * S) / MSS).toBeLessThan(1010);
    // And it tracks the curve itself in the concave region.
    expect(at(trace, 3 * S)).toBeGreaterThan(cc.wCubic(3) * 0.97);
    expect(at(trace, 3 * S)).toBeLessThan(cc.wCubic(3 + rtt / S) * 1.03);
  });

  it('follows the Reno-friendly estimate when it beats W_cubic (small window, short RTT)', () => {
    const cc = grown(20);
    cc.onEnterRecovery(0, 20 * MSS);
    cc.onExitRecovery(0);
    expect(cc.cwnd).toBe(14 * MSS);
    const rtt = 10_000;
    const trace = run(cc, 0, 500_000, rtt);
    const w = at(trace, 500_000) / MSS;
    // W_cubic(0.5 + RTT) stays below W_max = 20 segments (K = 2.47 s) ...
    expect(cc.wCubic(0.51)).toBeLessThan(20 * MSS);
    // ... while Reno's AIMD estimate: 14 -> 20 at alpha = 0.53 per RTT (about 11 RTTs), then one
    // segment per RTT for the remaining ~39 RTTs: about 59 segments.
    expect(w).toBeGreaterThan(50);
    expect(w).toBeLessThan(65);
  });

  it('leaves application-limited stretches out of the curve time t', () => {
    const steady = grown(1000);
    const limited = grown(1000);
    for (const cc of [steady, limited]) {
      cc.onEnterRecovery(0, 1000 * MSS);
      cc.onExitRecovery(0);
    }
    const rtt = 100_000;
    run(steady, 0, 2 * S, rtt);
    run(limited, 0, 1 * S, rtt);
    const before = limited.cwnd;
    for (let t = 1 * S; t < 6 * S; t += rtt) limited.onAck(t, MSS, rtt, 0); // sender idle-ish
    expect(limited.cwnd).toBe(before);
    run(limited, 6 * S, 7 * S, rtt);
    // Without the correction t would jump by 5 s and the window would be near W_max already.
    expect(limited.cwnd / steady.cwnd).toBeGreaterThan(0.99);
    expect(limited.cwnd / steady.cwnd).toBeLessThan(1.01);
  });

  it('grows like NewReno in slow start', () => {
    const cubic = createCongestionController('cubic', MSS, 10);
    const reno = createCongestionController('newreno', MSS, 10);
    for (let i = 0; i < 50; i++) {
      cubic.onAck(i, MSS, 1000, BIG);
      reno.onAck(i, MSS, 1000, BIG);
    }
    expect(cubic.cwnd).toBe(60 * MSS);
    expect(cubic.cwnd).toBe(reno.cwnd);
  });

  it('continues the same curve after snapshot and restore', () => {
    const cc = grown(1000);
    cc.onEnterRecovery(0, 1000 * MSS);
    cc.onExitRecovery(0);
    run(cc, 0, 3 * S, 200_000);
    const snap = JSON.parse(JSON.stringify(cc.snapshot()));
    expect(snap.cubic.wMax).toBe(1000 * MSS);
    const back = restoreCongestionController(snap, MSS) as CubicController;
    expect(back.cwnd).toBe(cc.cwnd);
    back.onAck(100 * S, MSS, 200_000, BIG); // another node's clock: a new epoch opens
    // K from the restored window reaches W_max at the same remaining time as the original.
    const remaining = Math.cbrt((1000 * MSS - cc.cwnd) / MSS / CUBIC_C);
    expect(back.kSeconds).toBeCloseTo(remaining, 1);
    expect(back.wMaxBytes).toBe(1000 * MSS);
  });
});
