import { describe, expect, it } from 'vitest';
import { HEAP_GROWING_PERCENT, tuneHeapGrowth } from '../../../src/cli/heap-tuning.js';

function tune(execArgv: string[], nodeOptions?: string): string[] {
  const set: string[] = [];
  tuneHeapGrowth(execArgv, nodeOptions, (f) => set.push(f));
  return set;
}

describe('heap tuning', () => {
  it('heap-tuning: a node started without a growth flag gets the fixed factor', () => {
    expect(tune(['--enable-source-maps'], '--max-old-space-size=512')).toEqual([`--heap-growing-percent=${HEAP_GROWING_PERCENT}`]);
  });

  it("heap-tuning: a growth flag on node's command line is left alone (also spelt with underscores)", () => {
    expect(tune(['--heap-growing-percent=0'])).toEqual([]);
    expect(tune(['--heap_growing_percent=50'])).toEqual([]);
  });

  it('heap-tuning: a growth flag in NODE_OPTIONS is left alone', () => {
    expect(tune([], '--trace-gc --heap-growing-percent=100')).toEqual([]);
  });

  it('heap-tuning: a flag that only starts like it does not count', () => {
    expect(tune(['--heap-growing-percentage=5'])).toHaveLength(1);
  });
});
