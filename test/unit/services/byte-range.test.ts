import { describe, expect, it } from 'vitest';
import { parseRange, type RangeRequest } from '../../../src/services/byte-range.js';

describe('parseRange', () => {
  const size = 1000;
  const cases: [string | undefined, RangeRequest][] = [
    [undefined, { kind: 'none' }],
    ['bytes=0-99', { kind: 'range', start: 0, end: 99 }],
    ['bytes=10-10', { kind: 'range', start: 10, end: 10 }],
    ['bytes=900-5000', { kind: 'range', start: 900, end: 999 }],
    ['bytes=500-', { kind: 'range', start: 500, end: 999 }],
    ['bytes=-100', { kind: 'range', start: 900, end: 999 }],
    ['bytes=-5000', { kind: 'range', start: 0, end: 999 }],
    ['Bytes = 1-2', { kind: 'range', start: 1, end: 2 }],
    ['bytes=1000-', { kind: 'unsatisfiable' }],
    ['bytes=1000-2000', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=0-1,5-6', { kind: 'multiple' }],
    ['bytes=5-1', { kind: 'none' }],
    ['bytes=-', { kind: 'none' }],
    ['bytes=a-b', { kind: 'none' }],
    ['items=0-1', { kind: 'none' }],
    ['bytes=', { kind: 'none' }],
  ];
  it.each(cases)('%s', (header, expected) => {
    expect(parseRange(header, size)).toEqual(expected);
  });

  it('treats every range of an empty file as unsatisfiable', () => {
    expect(parseRange('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-1', 0)).toEqual({ kind: 'unsatisfiable' });
  });
});
