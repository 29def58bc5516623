// CUBIC (RFC 9438) on top of the Reno machinery: slow start, recovery and the loss window are
// shared; congestion avoidance follows W_cubic(t) and the multiplicative decrease uses beta 0.7.
// Windows are kept in bytes; the RFC's formulas are in segments, hence the divisions by SMSS.

import type { CongestionControlName, Micros } from './api.js';
import type { CongestionSnapshot } from './congestion.js';
import { NewRenoController } from './congestion-newreno.js';

/** RFC 9438 section 5.1: "C SHOULD be set to 0.4". */
export const CUBIC_C = 0.4;
/** RFC 9438 section 4.6: "The parameter beta_cubic SHOULD be set to 0.7". */
export const CUBIC_BETA = 0.7;
/** RFC 9438 section 4.3, the Reno-friendly additive factor: alpha_cubic = 3 * (1 - beta) / (1 + beta). */
export const CUBIC_ALPHA = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);

const US_PER_S = 1_000_000;

export class CubicController extends NewRenoController {
  override get name(): CongestionControlName {
    return 'cubic';
  }

  private wMax = 0;
  private cwndPrior = 0;
  private srttUs: number | null = null;
  private afterTimeout = false;
  /** Start of the current congestion-avoidance epoch; null until the next ACK opens one. */
  private epochStart: Micros | null = null;
  /** K in seconds. */
  private k = 0;
  /** W_est in bytes (RFC 9438 section 4.3). */
  private wEst = 0;
  /** Fractional growth carried between ACKs so that small increments are not lost to rounding. */
  private carry = 0;
  /** When the last ACK outside recovery arrived, to measure application-limited stretches. */
  private lastAckAt: Micros | null = null;

  /** W_cubic(t) in bytes, t in seconds since the epoch start (RFC 9438 equation 1). */
  wCubic(tSeconds: number): number {
    const d = tSeconds - this.k;
    return CUBIC_C * d * d * d * this.mss + this.wMax;
  }

  get kSeconds(): number {
    return this.k;
  }

  get wMaxBytes(): number {
    return this.wMax;
  }

  protected override observeRtt(rttUs: number | null): void {
    if (rttUs === null || rttUs < 0) return;
    this.srttUs = this.srttUs === null ? rttUs : this.srttUs + (rttUs - this.srttUs) / 8;
  }

  private startEpoch(now: Micros): void {
    this.epochStart = now;
    this.carry = 0;
    const cwndEpoch = this.cwndBytes;
    if (this.afterTimeout || this.wMax <= cwndEpoch) {
      // RFC 9438 section 4.8, after a timeout: "K is set to 0, and W_max is set to the congestion
      // window size at the beginning of the current congestion avoidance stage." We do the same
      // when slow start ended above W_max (or without any loss yet, so W_max is unknown).
      this.wMax = cwndEpoch;
      this.k = 0;
      this.afterTimeout = false;
    } else {
      // RFC 9438 section 4.2, equation 2: K = cubic_root((W_max - cwnd_epoch) / C), in segments.
      this.k = Math.cbrt((this.wMax - cwndEpoch) / this.mss / CUBIC_C);
    }
    // RFC 9438 section 4.3: "W_est is set equal to cwnd_epoch at the start of the congestion
    // avoidance stage."
    this.wEst = cwndEpoch;
  }

  protected override congestionAvoidance(now: Micros, ackedBytes: number): void {
    if (this.epochStart === null) this.startEpoch(now);
    this.lastAckAt = now;
    const cwnd = this.cwndBytes;
    const t = (now - (this.epochStart as number)) / US_PER_S;
    const rttS = (this.srttUs ?? 0) / US_PER_S;

    // RFC 9438 section 4.3, equation 4: W_est = W_est + alpha_cubic * segments_acked / cwnd; "An
    // implementation that measures cwnd in bytes should adjust the equation accordingly using
    // number of acknowledged bytes and MSS." And "Once W_est has grown to reach the cwnd at the
    // time of most recently setting ssthresh, that is, W_est >= cwnd_prior, the sender SHOULD set
    // alpha_cubic to 1".
    const alpha = this.wEst >= this.cwndPrior ? 1 : CUBIC_ALPHA;
    this.wEst += (alpha * ackedBytes * this.mss) / cwnd;

    const wCubicNow = this.wCubic(t);
    let grow: number;
    if (wCubicNow < this.wEst) {
      // "CUBIC checks whether W_cubic(t) is less than W_est. If so, CUBIC is in the Reno-friendly
      // region and cwnd SHOULD be set to W_est at each reception of a new ACK."
      grow = this.wEst - cwnd;
    } else {
      // RFC 9438 section 4.2: target is W_cubic(t + RTT) bounded to [cwnd, 1.5 * cwnd], "where RTT
      // is the smoothed round-trip time"; sections 4.4 and 4.5: "cwnd MUST be incremented by
      // (target - cwnd) / cwnd for each received new ACK" (scaled here by the segments acked).
      const target = Math.min(Math.max(this.wCubic(t + rttS), cwnd), 1.5 * cwnd);
      grow = ((target - cwnd) / cwnd) * ackedBytes;
    }
    if (grow <= 0) return;
    this.carry += grow;
    const whole = Math.floor(this.carry);
    this.carry -= whole;
    this.cwndBytes += whole;
  }

  /**
   * RFC 9438 section 4.6: ssthresh = flight_size * beta_cubic, cwnd_prior = cwnd, cwnd =
   * max(ssthresh, 2) on loss, "ssthresh is at least 2 MSS". Section 4.7, fast convergence, applied
   * "before the window reduction": W_max = cwnd * (1 + beta_cubic) / 2 if cwnd < W_max, otherwise
   * W_max = cwnd ("remember cwnd before reduction").
   */
  protected override lossThreshold(inFlight: number): number {
    const cwnd = this.cwndBytes;
    this.wMax = cwnd < this.wMax ? (cwnd * (1 + CUBIC_BETA)) / 2 : cwnd;
    this.cwndPrior = cwnd;
    this.epochStart = null;
    return Math.max(Math.floor(inFlight * CUBIC_BETA), 2 * this.mss);
  }

  /**
   * RFC 9438 section 4.2: "The elapsed time t ... MUST NOT include periods during which cwnd has
   * not been updated due to application-limited behavior". Sliding the epoch start
   * forward by the limited stretch removes it from t.
   */
  protected override onApplicationLimited(now: Micros): void {
    if (this.epochStart !== null && this.lastAckAt !== null && now > this.lastAckAt) {
      this.epochStart += now - this.lastAckAt;
    }
    this.lastAckAt = now;
  }

  override onRetransmitTimeout(now: Micros, inFlight: number): void {
    super.onRetransmitTimeout(now, inFlight);
    this.epochStart = null;
  }

  /**
   * RFC 9438 section 4.8: "In case of a timeout, CUBIC follows Reno to reduce cwnd [RFC5681], but
   * sets ssthresh using beta_cubic (same as in Section 4.6)".
   */
  protected override reduceOnTimeout(now: Micros, inFlight: number): void {
    super.reduceOnTimeout(now, inFlight);
    this.afterTimeout = true;
  }

  override onExitRecovery(now: Micros): void {
    super.onExitRecovery(now);
    this.epochStart = null;
  }

  /** The curve is a function of time since the epoch; idle time must not count as growth time. */
  override onIdleRestart(now: Micros): void {
    super.onIdleRestart(now);
    this.epochStart = null;
  }

  override setMss(mss: number): void {
    super.setMss(mss);
    this.epochStart = null;
  }

  override snapshot(): CongestionSnapshot {
    return {
      ...super.snapshot(),
      cubic: {
        wMax: this.wMax,
        cwndPrior: this.cwndPrior,
        srttUs: this.srttUs,
        afterTimeout: this.afterTimeout,
      },
    };
  }

  override restore(s: CongestionSnapshot): void {
    super.restore(s);
    if (s.cubic) {
      this.wMax = s.cubic.wMax;
      this.cwndPrior = s.cubic.cwndPrior;
      this.srttUs = s.cubic.srttUs;
      this.afterTimeout = s.cubic.afterTimeout;
    }
    this.epochStart = null;
  }
}
