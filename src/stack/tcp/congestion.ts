// The congestion controller seam. The connection owns loss detection (duplicate-ACK counting, the
// SACK scoreboard, NewReno's partial-ACK bookkeeping) and calls these hooks; the controller owns
// only cwnd and ssthresh. All windows are in bytes.

import type { CongestionControlName, Micros } from './api.js';
import { CubicController } from './congestion-cubic.js';
import { NewRenoController } from './congestion-newreno.js';

export interface CongestionController {
  readonly name: CongestionControlName;
  /** Congestion window in bytes (integral, at least one SMSS). */
  readonly cwnd: number;
  /** Slow-start threshold in bytes; INITIAL_SSTHRESH until the first loss. */
  readonly ssthresh: number;
  /** True between onEnterRecovery and onExitRecovery (or an RTO). */
  readonly inRecovery: boolean;

  /**
   * An ACK advanced SND.UNA by `ackedBytes`. `rttUs` is this ACK's RTT sample (null when Karn's
   * rule forbids one). `inFlight` is FlightSize after the ACK: the window does not grow while the
   * sender uses less than half of it (application-limited, in the spirit of RFC 7661). Does not
   * grow cwnd during recovery.
   */
  onAck(now: Micros, ackedBytes: number, rttUs: number | null, inFlight: number): void;
  /** Fast retransmit: loss detected by duplicate ACKs or SACK. `inFlight` is FlightSize. */
  onEnterRecovery(now: Micros, inFlight: number): void;
  /** A full ACK (covering the recovery point) ended recovery. */
  onExitRecovery(now: Micros): void;
  /**
   * The retransmission timer fired. Repeated timeouts without an ACK in between keep ssthresh
   * (RFC 5681 section 3.1, see the implementation).
   */
  onRetransmitTimeout(now: Micros, inFlight: number): void;
  /** The connection is about to send after an idle period longer than the RTO. */
  onIdleRestart?(now: Micros): void;
  /**
   * NewReno without SACK (RFC 5681 3.2 steps 3-4): artificially inflate cwnd by `bytes`, e.g.
   * 3*SMSS on entering recovery and SMSS per further duplicate ACK.
   */
  inflate(bytes: number): void;
  /**
   * RFC 6582 section 3.2 step 3, partial ACK: deflate cwnd by the newly acknowledged bytes and add
   * back SMSS when at least SMSS was acknowledged.
   */
  onPartialAck(now: Micros, ackedBytes: number): void;
  setMss(mss: number): void;
  snapshot(): CongestionSnapshot;
}

/** CUBIC's memory across epochs (RFC 9438 section 4), all in bytes. */
export interface CubicSnapshot {
  /** W_max: the window just before the last reduction (after fast convergence). */
  wMax: number;
  /** cwnd_prior: cwnd before the last reduction, where the Reno-friendly alpha switches to 1. */
  cwndPrior: number;
  /** The RTT used in W_cubic(t + RTT), smoothed from samples; null before the first. */
  srttUs: number | null;
  /** The next congestion-avoidance epoch follows an RTO: K = 0 and W_max = cwnd_epoch. */
  afterTimeout: boolean;
}

/**
 * Plain data, safe to serialise (no Infinity). The epoch start time of CUBIC is not carried:
 * clocks differ between nodes, so a restored controller opens a new epoch at its first ACK with K
 * computed from the restored cwnd and W_max, which continues the same curve.
 */
export interface CongestionSnapshot {
  name: CongestionControlName;
  cwnd: number;
  ssthresh: number;
  /** RFC 3465 bytes_acked counter of congestion avoidance. */
  bytesAcked: number;
  inRecovery: boolean;
  /** A timeout has happened and no ACK of new data followed yet. */
  inTimeoutLoss: boolean;
  cubic?: CubicSnapshot;
}

/**
 * "The initial value of ssthresh SHOULD be set arbitrarily high (e.g., to the size of the largest
 * possible advertised window)" (RFC 5681 section 3.1); finite so that snapshots serialise.
 */
export const INITIAL_SSTHRESH = 0x7fffffff;

export function createCongestionController(
  name: CongestionControlName,
  mss: number,
  initialWindowSegments: number,
  slowStartAckLimitSegments?: number,
): CongestionController {
  switch (name) {
    case 'newreno':
      return new NewRenoController(mss, initialWindowSegments, slowStartAckLimitSegments);
    case 'cubic':
      return new CubicController(mss, initialWindowSegments, slowStartAckLimitSegments);
  }
}

export function restoreCongestionController(
  snapshot: CongestionSnapshot,
  mss: number,
  initialWindowSegments = 10,
  slowStartAckLimitSegments?: number,
): CongestionController {
  const c =
    snapshot.name === 'cubic'
      ? new CubicController(mss, initialWindowSegments, slowStartAckLimitSegments)
      : new NewRenoController(mss, initialWindowSegments, slowStartAckLimitSegments);
  c.restore(snapshot);
  return c;
}
