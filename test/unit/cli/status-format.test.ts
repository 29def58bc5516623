import { describe, expect, it } from 'vitest';
import { formatSwitchoverInfo } from '../../../src/cli/status-format.js';

describe('status: last switchover line', () => {
  it('handed over: the new primary, the epoch and both figures', () => {
    const line = formatSwitchoverInfo({ at: '2026-11-28T17:00:01.234Z', outcome: 'handed-over', stallMs: 41.2, takeoverMs: 12.5, epoch: 2, peer: 'hostb:77', reason: null });
    expect(line).toBe('2026-11-28 17:00:01Z handed-over to hostb:77 epoch 2 (stall 41.2 ms, takeover 12.5 ms)');
  });

  it('took over names where from; refused gives the reason and no figures', () => {
    expect(formatSwitchoverInfo({ at: '2026-11-28T17:00:01Z', outcome: 'took-over', stallMs: null, takeoverMs: 9, epoch: 3, peer: 'a', reason: null })).toBe(
      '2026-11-28 17:00:01Z took-over from a epoch 3 (takeover 9 ms)',
    );
    expect(formatSwitchoverInfo({ at: '2026-11-28T17:00:01Z', outcome: 'refused', stallMs: null, takeoverMs: null, epoch: 1, peer: null, reason: 'no backup attached' })).toBe(
      '2026-11-28 17:00:01Z refused epoch 1: no backup attached',
    );
  });
});
