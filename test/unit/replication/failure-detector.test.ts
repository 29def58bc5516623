import { describe, expect, it } from 'vitest';
import { FailureDetector } from '../../../src/replication/failure-detector.js';

function detector(): { d: FailureDetector; advance: (ms: number) => void } {
  let t = 1000;
  const d = new FailureDetector({ paths: ['replication', 'lan'], deadAfterMs: 300, now: () => t });
  return { d, advance: (ms) => (t += ms) };
}

describe('FailureDetector', () => {
  it('declares the primary dead only when every path has been silent beyond the limit', () => {
    const { d, advance } = detector();
    advance(250);
    d.heard('replication');
    d.heard('lan');
    advance(300);
    expect(d.check()).toBe('alive');
    advance(1);
    expect(d.check()).toBe('dead');
  });

  it('keeps a primary heard on one path suspect, never dead (a cut replication link)', () => {
    const { d, advance } = detector();
    for (let i = 0; i < 10; i++) {
      advance(100);
      d.heard('lan');
    }
    expect(d.check()).toBe('suspect');
    expect(d.silences()).toEqual([
      { path: 'replication', silentMs: 1000 },
      { path: 'lan', silentMs: 0 },
    ]);
  });

  it('refuses a heartbeat on a path it was not told of', () => {
    expect(() => detector().d.heard('carrier-pigeon')).toThrow(/unknown heartbeat path/);
  });
});
