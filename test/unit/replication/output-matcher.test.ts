import { describe, expect, it } from 'vitest';
import { OutputMatcher, type Divergence } from '../../../src/replication/output-matcher.js';
import { OutputStore } from '../../../src/replication/output-store.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

function setup(): { primary: OutputStore; m: OutputMatcher; seen: Divergence[] } {
  const primary = new OutputStore();
  const seen: Divergence[] = [];
  return { primary, seen, m: new OutputMatcher(primary, (d) => seen.push(d)) };
}

describe('OutputMatcher', () => {
  it('matches equal streams whichever side is ahead, and keeps what the replica wrote beyond the primary', () => {
    const { primary, m, seen } = setup();
    m.replicaWrote(enc('hello '));
    primary.append(enc('hel'));
    m.primaryWrote(false);
    expect(m.compared).toBe(3);
    expect(m.aheadBytes).toBe(3);
    expect(m.behindBytes).toBe(0);
    primary.append(enc('lo world'));
    m.primaryWrote(false);
    // The primary is 5 bytes further on: the replica is behind, not "-5 ahead".
    expect(m.aheadBytes).toBe(0);
    expect(m.behindBytes).toBe(5);
    m.replicaWrote(enc('world and more'));
    expect(seen).toEqual([]);
    expect(dec(m.takeAhead())).toBe(' and more');
  });

  it('reports the first differing offset once', () => {
    const { primary, m, seen } = setup();
    primary.append(enc('abcdef'));
    m.primaryWrote(false);
    m.replicaWrote(enc('abXdeY'));
    m.replicaWrote(enc('ZZ'));
    expect(seen).toHaveLength(1);
    expect(seen[0]!.offset).toBe(2);
    expect(m.differingBytes).toBe(2);
  });

  it('reports streams that end at different offsets', () => {
    const { primary, m, seen } = setup();
    primary.append(enc('abc'));
    m.primaryWrote(true);
    m.replicaWrote(enc('abc'));
    expect(seen).toEqual([]);
    m.replicaWrote(enc('d'));
    expect(seen[0]?.what).toMatch(/past the primary's end/);
  });
});

describe('OutputStore', () => {
  it('slices across chunks and trims from the front', () => {
    const s = new OutputStore();
    s.append(enc('abc'));
    s.append(enc('defg'));
    expect(dec(s.slice(2, 5))).toBe('cde');
    s.trimTo(4);
    expect(s.start).toBe(4);
    expect(dec(s.slice(4, 7))).toBe('efg');
    expect(() => s.slice(3, 5)).toThrow(RangeError);
  });
});
