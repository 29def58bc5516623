import { describe, expect, it } from 'vitest';
import { MAX_SCOREBOARD_BLOCKS, SackScoreboard } from '../../../../src/stack/tcp/sack-scoreboard.js';
import { seqAdd } from '../../../../src/stack/wire/seq.js';

const MSS = 100;
const blk = (left: number, right: number) => ({ left: left >>> 0, right: right >>> 0 });

describe('SackScoreboard bookkeeping', () => {
  it('keeps blocks sorted and merges overlapping and touching ones', () => {
    const sb = new SackScoreboard();
    sb.update(1000, [blk(1500, 1600)]);
    sb.update(1000, [blk(1200, 1300)]);
    sb.update(1000, [blk(1300, 1350), blk(1800, 1900)]);
    expect(sb.blocks()).toEqual([blk(1200, 1350), blk(1500, 1600), blk(1800, 1900)]);
    sb.update(1000, [blk(1340, 1850)]);
    expect(sb.blocks()).toEqual([blk(1200, 1900)]);
    expect(sb.sackedBytes()).toBe(700);
    expect(sb.highestSacked()).toBe(1900);
  });

  it('answers isSacked with half-open ranges', () => {
    const sb = new SackScoreboard();
    sb.update(0, [blk(100, 200)]);
    expect(sb.isSacked(99)).toBe(false);
    expect(sb.isSacked(100)).toBe(true);
    expect(sb.isSacked(199)).toBe(true);
    expect(sb.isSacked(200)).toBe(false);
  });

  it('discards and trims blocks as SND.UNA advances', () => {
    const sb = new SackScoreboard();
    sb.update(0, [blk(100, 200), blk(300, 400)]);
    sb.update(150, []);
    expect(sb.blocks()).toEqual([blk(150, 200), blk(300, 400)]);
    sb.update(400, []);
    expect(sb.blocks()).toEqual([]);
    expect(sb.highestSacked()).toBeNull();
  });

  it('ignores D-SACK blocks below SND.UNA and blocks beyond SND.NXT, trims straddling ones', () => {
    const sb = new SackScoreboard();
    sb.update(1000, [blk(900, 1000), blk(1500, 2500), blk(1100, 1200)], 2000);
    expect(sb.blocks()).toEqual([blk(1100, 1200)]);
    sb.update(1000, [blk(950, 1050)], 2000);
    expect(sb.blocks()).toEqual([blk(1000, 1050), blk(1100, 1200)]);
    sb.update(1000, [blk(1300, 1300), blk(1400, 1350)], 2000); // empty and inverted
    expect(sb.blocks()).toHaveLength(2);
  });

  it('orders and merges across the 2^32 wrap', () => {
    const una = 0xffffff00;
    const sb = new SackScoreboard();
    sb.update(una, [blk(0x00000080, 0x00000100), blk(0xffffff80, 0x00000010)], 0x200);
    expect(sb.blocks()).toEqual([blk(0xffffff80, 0x10), blk(0x80, 0x100)]);
    sb.update(una, [blk(0x10, 0x80)], 0x200);
    expect(sb.blocks()).toEqual([blk(0xffffff80, 0x100)]);
    expect(sb.sackedBytes()).toBe(0x180);
    expect(sb.isSacked(0xfffffff0)).toBe(true);
    expect(sb.isSacked(0x50)).toBe(true);
    sb.update(0x20, []);
    expect(sb.blocks()).toEqual([blk(0x20, 0x100)]);
  });

  it('bounds the list against a peer that fragments the window, keeping the lowest blocks', () => {
    const sb = new SackScoreboard();
    for (let i = MAX_SCOREBOARD_BLOCKS + 20; i > 0; i--) sb.update(0, [blk(i * 10, i * 10 + 5)]);
    const kept = sb.blocks();
    expect(kept).toHaveLength(MAX_SCOREBOARD_BLOCKS);
    expect(kept[0]).toEqual(blk(10, 15));
    expect(sb.highestSacked()).toBe(MAX_SCOREBOARD_BLOCKS * 10 + 5);
  });

  it('clear() forgets everything', () => {
    const sb = new SackScoreboard();
    sb.update(0, [blk(100, 200)]);
    sb.clear();
    expect(sb.sackedBytes()).toBe(0);
    expect(sb.isSacked(150)).toBe(false);
  });
});

describe('SackScoreboard RFC 6675 queries', () => {
  // Ten segments of 100 bytes, 0..1000 sent; segment k covers [100k, 100k+100).
  it('IsLost: true with DupThresh discontiguous blocks above', () => {
    const sb = new SackScoreboard();
    sb.update(0, [blk(200, 300), blk(400, 500), blk(600, 700)], 1000);
    expect(sb.isLost(0, MSS)).toBe(true); // 3 blocks above
    expect(sb.isLost(300, MSS)).toBe(false); // 2 blocks, 200 bytes: not more than 2*SMSS
    expect(sb.isLost(250, MSS)).toBe(false); // SACKed
  });

  it('IsLost: true with more than (DupThresh-1)*SMSS bytes SACKed above', () => {
    const sb = new SackScoreboard();
    sb.update(0, [blk(100, 300)], 1000);
    expect(sb.isLost(0, MSS)).toBe(false); // exactly 2*SMSS
    sb.update(0, [blk(300, 301)], 1000);
    expect(sb.isLost(0, MSS)).toBe(true);
  });

  it('pipe counts non-lost holes once and retransmitted octets again', () => {
    const sb = new SackScoreboard();
    sb.update(0, [blk(100, 200), blk(300, 400), blk(500, 600)], 1000);
    // Holes: [0,100) lost (3 blocks above), [200,300) not lost (2 blocks, 200 B),
    // [400,500) not lost, [600,1000) not lost.
    expect(sb.pipe(0, 1000, 0, MSS)).toBe(0 + 100 + 100 + 400);
    // After retransmitting [0,100): HighRxt = 100.
    expect(sb.pipe(0, 1000, 100, MSS)).toBe(600 + 100);
    // A retransmitted octet that is also not lost counts twice.
    expect(sb.pipe(0, 1000, 250, MSS)).toBe(600 + 100 + 50);
  });

  it('pipe without SACK information is the whole flight', () => {
    const sb = new SackScoreboard();
    expect(sb.pipe(5000, 8000, 5000, MSS)).toBe(3000);
  });

  it('NextSeg rule 1 picks the lowest lost hole above HighRxt', () => {
    const sb = new SackScoreboard();
    sb.update(0, [blk(100, 200), blk(300, 400), blk(500, 600), blk(700, 800)], 1000);
    expect(sb.nextSegmentToRetransmit(0, 1000, 0, MSS)).toBe(0);
    expect(sb.retransmitEnd(0, 1000, MSS)).toBe(100);
    expect(sb.nextSegmentToRetransmit(0, 1000, 100, MSS)).toBe(200);
    // Partially retransmitted hole: continue where HighRxt stands.
    expect(sb.nextSegmentToRetransmit(0, 1000, 250, MSS)).toBe(250);
    expect(sb.retransmitEnd(250, 1000, MSS)).toBe(300);
  });

  it('NextSeg prefers new data (rule 2) over rule 3, and falls back to rule 3 otherwise', () => {
    const sb = new SackScoreboard();
    sb.update(0, [blk(100, 200)], 1000);
    // [0,100) is not lost: one block, 100 bytes above.
    expect(sb.nextSegmentToRetransmit(0, 1000, 0, MSS, true)).toBeNull();
    expect(sb.nextSegmentToRetransmit(0, 1000, 0, MSS, false)).toBe(0);
    // Nothing below the highest SACKed octet remains above HighRxt: failure.
    expect(sb.nextSegmentToRetransmit(0, 1000, 100, MSS, false)).toBeNull();
  });

  it('NextSeg works across the wrap', () => {
    const una = 0xffffffc0; // 64 bytes before the wrap
    const sb = new SackScoreboard();
    const at = (n: number) => seqAdd(una, n);
    sb.update(una, [blk(at(100), at(200)), blk(at(300), at(400)), blk(at(500), at(600))], at(1000));
    expect(sb.nextSegmentToRetransmit(una, at(1000), una, MSS)).toBe(una);
    expect(sb.retransmitEnd(una, at(1000), MSS)).toBe(at(100));
    expect(sb.pipe(una, at(1000), una, MSS)).toBe(600);
    expect(sb.isLost(at(50), MSS)).toBe(true);
  });
});
