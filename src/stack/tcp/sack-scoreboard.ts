// The sender's SACK scoreboard (RFC 6675). It remembers which ranges above SND.UNA the peer has
// reported as received, as a short sorted list of disjoint blocks in modulo-2^32 order, and answers
// RFC 6675's IsLost, SetPipe and NextSeg questions. It holds no data and no per-byte state.
//
// Convention: every range is half-open [left, right), as on the wire (RFC 2018: "Right Edge of
// Block: This is the sequence number immediately following the last sequence number of this
// block"). HighRxt is likewise the sequence number after the last retransmitted octet; at the
// start of recovery the caller sets it to SND.UNA (nothing retransmitted yet).

import {
  seqAdd,
  seqDiff,
  seqGe,
  seqGt,
  seqInRange,
  seqLe,
  seqLt,
  seqMax,
  seqMin,
  type SeqNum,
} from '../wire/seq.js';
import type { SackBlock } from '../wire/types.js';

/**
 * RFC 6675 section 2, DupThresh: "The number of duplicate acknowledgments required to trigger a
 * fast retransmission. Per [RFC5681], this threshold is defined to be 3 duplicate
 * acknowledgments."
 */
export const DUP_THRESH = 3;

/**
 * A peer can describe at most one block per hole, so the list is bounded by the holes in flight;
 * this cap only defends against a peer that fragments the window on purpose. Forgetting SACK
 * information is always safe: it makes the sender retransmit more, never less (RFC 2018 section 8
 * already requires senders to cope with receivers that renege).
 */
export const MAX_SCOREBOARD_BLOCKS = 128;

interface Hole {
  start: SeqNum;
  end: SeqNum;
}

export class SackScoreboard {
  private list: SackBlock[] = [];
  private una: SeqNum | null = null;

  /**
   * Takes the cumulative ACK and the SACK blocks of one arriving ACK. `sndNxt`, when given, rejects
   * blocks that reach beyond what was sent.
   */
  update(sndUna: SeqNum, blocks: readonly SackBlock[], sndNxt?: SeqNum): void {
    this.advance(sndUna);
    for (const b of blocks) {
      let left = b.left >>> 0;
      const right = b.right >>> 0;
      if (!seqLt(left, right)) continue; // empty, inverted, or wider than 2^31
      // RFC 2883: a D-SACK block reports a duplicate below the cumulative ACK; it tells
      // nothing about what is missing, so it is not an error and not a scoreboard entry.
      if (seqLe(right, sndUna)) continue;
      // Only (SND.UNA, SND.NXT] can hold data the peer has and we have not seen acknowledged.
      if (sndNxt !== undefined && seqGt(right, sndNxt)) continue;
      if (seqLt(left, sndUna)) left = sndUna;
      this.insert(left, right);
    }
  }

  isSacked(seq: SeqNum): boolean {
    for (const b of this.list) if (seqInRange(seq, b.left, b.right)) return true;
    return false;
  }

  sackedBytes(): number {
    let n = 0;
    for (const b of this.list) n += seqDiff(b.right, b.left);
    return n;
  }

  /** The right edge (exclusive) of the highest SACKed block, or null with no SACK information. */
  highestSacked(): SeqNum | null {
    const last = this.list[this.list.length - 1];
    return last === undefined ? null : last.right;
  }

  /**
   * RFC 6675 section 4, IsLost (SeqNum): "returns true when either DupThresh discontiguous SACKed
   * sequences have arrived above 'SeqNum' or more than (DupThresh - 1) * SMSS bytes with sequence
   * numbers greater than 'SeqNum' have been SACKed. Otherwise, the routine returns false." A
   * SACKed octet is never lost.
   */
  isLost(seq: SeqNum, mss: number): boolean {
    let blocksAbove = 0;
    let bytesAbove = 0;
    for (let i = this.list.length - 1; i >= 0; i--) {
      const b = this.list[i]!;
      if (seqLe(b.right, seq)) break;
      if (seqLe(b.left, seq)) return false; // seq itself is SACKed
      blocksAbove++;
      bytesAbove += seqDiff(b.right, b.left);
    }
    return lostBy(blocksAbove, bytesAbove, mss);
  }

  /**
   * RFC 6675 section 4, NextSeg (), as far as the scoreboard can answer it. Returns where the next
   * retransmission starts, or null.
   *
   * Rule (1): "the smallest unSACKed sequence number 'S2' that meets the following three criteria
   * ... (1.a) S2 is greater than HighRxt. (1.b) S2 is less than the highest octet covered by any
   * received SACK. (1.c) IsLost (S2) returns true."
   * Rule (2): "If no sequence number 'S2' per rule (1) exists but there exists available unsent
   * data and the receiver's advertised window allows" -- new data; the scoreboard cannot know, so
   * the caller says so with `canSendNewData` and gets null (send new data from SND.NXT).
   * Rule (3): "If the conditions for rules (1) and (2) fail, but there exists an unSACKed sequence
   * number 'S3' that meets the criteria for detecting loss given in steps (1.a) and (1.b) above
   * (specifically excluding step (1.c)), then one segment of up to SMSS octets starting with S3
   * SHOULD be returned."
   * Rule (4): otherwise "NextSeg () MUST indicate failure": null.
   *
   * IsLost only weakens as the sequence number grows (fewer SACKed bytes above it), so only the
   * first candidate needs the test. retransmitEnd() gives where that segment must stop.
   */
  nextSegmentToRetransmit(
    sndUna: SeqNum,
    sndNxt: SeqNum,
    highRxt: SeqNum,
    mss: number,
    canSendNewData = false,
  ): SeqNum | null {
    const highest = this.highestSacked();
    if (highest === null) return null;
    const from = seqMax(sndUna, highRxt);
    let candidate: SeqNum | null = null;
    for (const h of this.holes(sndUna, sndNxt)) {
      if (seqLe(h.end, from)) continue;
      const s = seqMax(h.start, from);
      if (seqLt(s, highest)) candidate = s;
      break;
    }
    if (candidate === null) return null;
    if (this.isLost(candidate, mss)) return candidate;
    return canSendNewData ? null : candidate;
  }

  /**
   * Where a retransmission starting at `seq` must end: one SMSS at most, never into SACKed data
   * and never past SND.NXT.
   */
  retransmitEnd(seq: SeqNum, sndNxt: SeqNum, mss: number): SeqNum {
    let end = seqMin(seqAdd(seq, mss), sndNxt);
    for (const b of this.list) {
      if (seqGt(b.left, seq)) {
        end = seqMin(end, b.left);
        break;
      }
    }
    return end;
  }

  /**
   * RFC 6675 section 4, SetPipe (): for each octet S1 from HighACK to HighData that has not been
   * SACKed, "(a) If IsLost (S1) returns false: Pipe is incremented by 1 octet." and "(b) If S1 <=
   * HighRxt: Pipe is incremented by 1 octet." (HighRxt exclusive here, see the file comment.)
   * Computed per hole: between two SACKed blocks the answer of IsLost cannot change, so a hole
   * counts wholly or not at all.
   */
  pipe(sndUna: SeqNum, sndNxt: SeqNum, highRxt: SeqNum, mss: number): number {
    const holes = [...this.holes(sndUna, sndNxt)];
    let pipe = 0;
    let blocksAbove = 0;
    let bytesAbove = 0;
    let bi = this.list.length - 1;
    for (let i = holes.length - 1; i >= 0; i--) {
      const h = holes[i]!;
      while (bi >= 0 && seqGe(this.list[bi]!.left, h.end)) {
        const b = this.list[bi]!;
        blocksAbove++;
        bytesAbove += seqDiff(seqMin(b.right, sndNxt), b.left);
        bi--;
      }
      if (!lostBy(blocksAbove, bytesAbove, mss)) pipe += seqDiff(h.end, h.start);
      if (seqLt(h.start, highRxt)) pipe += seqDiff(seqMin(h.end, highRxt), h.start);
    }
    return pipe;
  }

  clear(): void {
    this.list = [];
  }

  blocks(): readonly SackBlock[] {
    return this.list.map((b) => ({ left: b.left, right: b.right }));
  }

  /** The unSACKed ranges of [sndUna, sndNxt), lowest first. */
  private *holes(sndUna: SeqNum, sndNxt: SeqNum): Generator<Hole> {
    let cursor = sndUna;
    for (const b of this.list) {
      if (!seqLt(cursor, sndNxt)) return;
      if (seqLe(b.right, cursor)) continue;
      if (seqGt(b.left, cursor)) yield { start: cursor, end: seqMin(b.left, sndNxt) };
      cursor = seqMax(cursor, b.right);
    }
    if (seqLt(cursor, sndNxt)) yield { start: cursor, end: sndNxt };
  }

  /** Drops everything the cumulative ACK now covers. */
  private advance(sndUna: SeqNum): void {
    if (this.una !== null && !seqGt(sndUna, this.una)) {
      this.una = sndUna;
      return;
    }
    this.una = sndUna;
    const kept: SackBlock[] = [];
    for (const b of this.list) {
      if (seqLe(b.right, sndUna)) continue;
      kept.push(seqLt(b.left, sndUna) ? { left: sndUna, right: b.right } : b);
    }
    this.list = kept;
  }

  /** Merges [left, right) into the sorted list; touching blocks are joined too. */
  private insert(left: SeqNum, right: SeqNum): void {
    const out: SackBlock[] = [];
    let l = left;
    let r = right;
    let placed = false;
    for (const b of this.list) {
      if (seqLt(b.right, l)) {
        out.push(b);
      } else if (seqGt(b.left, r)) {
        if (!placed) {
          out.push({ left: l, right: r });
          placed = true;
        }
        out.push(b);
      } else {
        l = seqMin(l, b.left);
        r = seqMax(r, b.right);
      }
    }
    if (!placed) out.push({ left: l, right: r });
    // Keep the lowest blocks: they decide the next retransmissions.
    if (out.length > MAX_SCOREBOARD_BLOCKS) out.length = MAX_SCOREBOARD_BLOCKS;
    this.list = out;
  }
}

function lostBy(blocksAbove: number, bytesAbove: number, mss: number): boolean {
  return blocksAbove >= DUP_THRESH || bytesAbove > (DUP_THRESH - 1) * mss;
}
