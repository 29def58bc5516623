import { describe, expect, it } from 'vitest';
import { handoverLsnRefusal } from '../../../src/replication/node/switchover.js';

describe('backup: handover against the applied log', () => {
  it('level with the drained log: takes over', () => {
    expect(handoverLsnRefusal(270, 270)).toBeNull();
  });

  it('ahead of it (records the primary logged while withdrawing the VIP): takes over', () => {
    expect(handoverLsnRefusal(271, 270)).toBeNull();
  });

  it('behind it (missing records the client may have seen the effect of): refuses, naming both LSNs', () => {
    expect(handoverLsnRefusal(269, 270)).toBe('this backup applied up to LSN 269, the handover names 270');
  });
});
