// Reno/NewReno window arithmetic (RFC 5681, RFC 3465, RFC 6582). The connection detects loss and
// tracks the recovery point; this class only moves cwnd and ssthresh. CUBIC extends it, replacing
// congestion avoidance and the multiplicative decrease.

import type { CongestionControlName, Micros } from './api.js';
import type { CongestionController, CongestionSnapshot } from './congestion.js';

// Duplicated from congestion.ts (which imports this module) to keep the import graph acyclic.
const INITIAL_SSTHRESH = 0x7fffffff;

/**
 * Slow start counts the bytes each ACK acknowledges (RFC 3465, appropriate byte counting). Its
 * section 2.2 also bounds the increase per ACK by L: "TCP implementations MAY use L=2*SMSS bytes
 * and MUST NOT use L > 2*SMSS bytes" -- a bound for receivers that acknowledge every other
 * segment. A Linux client receiving through GRO acknowledges a whole 64 KiB super-segment at once
 * (45 segments): with L = 2*SMSS each round trip then grows cwnd by about 4% instead of doubling
 * it, and a replicated download, whose round trip includes the backup's acknowledgement, took
 * 120-170 ms to open its window from IW10 to 1 MiB (bench/RESULTS.md, session 5). So, as Linux's
 * tcp_slow_start does, the default counts every byte acknowledged; `slowStartAckLimitSegments`
 * restores an L (the FreeBSD conformance profile uses net.inet.tcp.abc_l_var's 2).
 */
const NO_LIMIT = Number.POSITIVE_INFINITY;

export class NewRenoController implements CongestionController {
  get name(): CongestionControlName {
    return 'newreno';
  }

  protected mss: number;
  protected readonly initialWindow: number;
  protected cwndBytes: number;
  protected ssthreshBytes = INITIAL_SSTHRESH;
  protected bytesAcked = 0;
  protected recovering = false;
  protected timeoutLoss = false;

  /** Slow start's growth per ACK at most, in segments (RFC 3465's L). */
  protected readonly ackLimitSegments: number;

  constructor(mss: number, initialWindowSegments: number, slowStartAckLimitSegments: number = NO_LIMIT) {
    this.mss = mss;
    this.initialWindow = Math.max(1, initialWindowSegments) * mss;
    this.cwndBytes = this.initialWindow;
    this.ackLimitSegments = slowStartAckLimitSegments > 0 ? slowStartAckLimitSegments : NO_LIMIT;
  }

  get cwnd(): number {
    return this.cwndBytes;
  }

  get ssthresh(): number {
    return this.ssthreshBytes;
  }

  get inRecovery(): boolean {
    return this.recovering;
  }

  onAck(now: Micros, ackedBytes: number, rttUs: number | null, inFlight: number): void {
    this.timeoutLoss = false;
    this.observeRtt(rttUs);
    if (ackedBytes <= 0 || this.recovering) return;
    // RFC 7661 spirit (Linux does the same): a window the sender is not using is not validated by
    // this ACK, so do not grow it.
    if ((inFlight + ackedBytes) * 2 < this.cwndBytes) {
      this.onApplicationLimited(now);
      return;
    }

    let left = ackedBytes;
    if (this.cwndBytes < this.ssthreshBytes) {
      // RFC 5681 section 3.1: "During slow start, a TCP increments cwnd by at most SMSS bytes for
      // each ACK received that cumulatively acknowledges new data"; RFC 3465 counts the bytes
      // acknowledged instead, up to L per ACK (none by default, see NO_LIMIT above).
      const room = this.ssthreshBytes - this.cwndBytes;
      const inc = Math.min(left, this.ackLimitSegments * this.mss, room);
      this.cwndBytes += inc;
      left -= inc;
      // Bytes acknowledged beyond the point where slow start ends count towards avoidance.
      if (left <= 0 || this.cwndBytes < this.ssthreshBytes) return;
    }
    this.congestionAvoidance(now, left);
  }

  /**
   * RFC 5681 section 3.1 recommends byte counting here, RFC 3465 section 2.1: "When the number of
   * bytes acknowledged reaches cwnd, then cwnd can be incremented by up to SMSS bytes."
   */
  protected congestionAvoidance(_now: Micros, ackedBytes: number): void {
    this.bytesAcked += ackedBytes;
    if (this.bytesAcked >= this.cwndBytes) {
      this.bytesAcked -= this.cwndBytes;
      this.cwndBytes += this.mss;
    }
  }

  protected observeRtt(_rttUs: number | null): void {}

  /** An ACK arrived while the sender was not using its window; cwnd does not grow. */
  protected onApplicationLimited(_now: Micros): void {}

  /**
   * RFC 5681 equation (4): "ssthresh = max (FlightSize / 2, 2*SMSS)". RFC 6675 section 5 step
   * (4.2): "ssthresh = cwnd = (FlightSize / 2)". The window is not inflated by the duplicate ACKs
   * here: SACK's pipe accounts for them, and without SACK the connection calls inflate().
   */
  onEnterRecovery(_now: Micros, inFlight: number): void {
    this.ssthreshBytes = this.lossThreshold(inFlight);
    this.cwndBytes = Math.max(this.ssthreshBytes, this.mss);
    this.bytesAcked = 0;
    this.recovering = true;
  }

  /** RFC 5681 equation (4), overridden by CUBIC's beta. */
  protected lossThreshold(inFlight: number): number {
    return Math.max(Math.floor(inFlight / 2), 2 * this.mss);
  }

  /**
   * RFC 6582 section 3.2 step 3, full acknowledgment: "Set cwnd to either (1) min (ssthresh,
   * max(FlightSize, SMSS) + SMSS) or (2) ssthresh"; option (2).
   */
  onExitRecovery(_now: Micros): void {
    if (!this.recovering) return;
    this.recovering = false;
    this.cwndBytes = Math.max(this.ssthreshBytes, this.mss);
    this.bytesAcked = 0;
  }

  /**
   * RFC 5681 section 3.1: "When a TCP sender detects segment loss using the retransmission timer
   * and the given segment has not yet been resent by way of the retransmission timer, the value of
   * ssthresh MUST be set to no more than the value given in equation (4) ... when a TCP sender
   * detects segment loss using the retransmission timer and the given segment has already been
   * retransmitted by way of the retransmission timer at least once, the value of ssthresh is held
   * constant." And: "upon a timeout cwnd MUST be set to no more than the loss window, LW, which
   * equals 1 full-sized segment".
   */
  onRetransmitTimeout(now: Micros, inFlight: number): void {
    if (!this.timeoutLoss) this.reduceOnTimeout(now, inFlight);
    this.timeoutLoss = true;
    this.recovering = false;
    this.cwndBytes = this.mss;
    this.bytesAcked = 0;
  }

  protected reduceOnTimeout(_now: Micros, inFlight: number): void {
    this.ssthreshBytes = this.lossThreshold(inFlight);
  }

  /**
   * RFC 5681 section 4.1: "a TCP SHOULD set cwnd to no more than RW before beginning transmission
   * if the TCP has not sent data in an interval exceeding the retransmission timeout", with
   * "RW = min(IW,cwnd)".
   */
  onIdleRestart(_now: Micros): void {
    this.cwndBytes = Math.min(this.initialWindow, this.cwndBytes);
    this.bytesAcked = 0;
  }

  /** RFC 5681 section 3.2 step 4: "cwnd MUST be incremented by SMSS" per further duplicate ACK. */
  inflate(bytes: number): void {
    if (bytes > 0) this.cwndBytes += bytes;
  }

  /**
   * RFC 6582 section 3.2 step 3, partial acknowledgments: "Deflate the congestion window by the
   * amount of new data acknowledged by the Cumulative Acknowledgment field. If the partial ACK acknowledges at least
   * one SMSS of new data, then add back SMSS bytes to the congestion window."
   */
  onPartialAck(_now: Micros, ackedBytes: number): void {
    let w = this.cwndBytes - Math.max(0, ackedBytes);
    if (ackedBytes >= this.mss) w += this.mss;
    this.cwndBytes = Math.max(w, this.mss);
  }

  setMss(mss: number): void {
    if (mss <= 0) return;
    this.mss = mss;
    if (this.cwndBytes < mss) this.cwndBytes = mss;
  }

  snapshot(): CongestionSnapshot {
    return {
      name: this.name,
      cwnd: this.cwndBytes,
      ssthresh: this.ssthreshBytes,
      bytesAcked: this.bytesAcked,
      inRecovery: this.recovering,
      inTimeoutLoss: this.timeoutLoss,
    };
  }

  /** Loads a snapshot taken by snapshot() (used by restoreCongestionController). */
  restore(s: CongestionSnapshot): void {
    this.cwndBytes = Math.max(s.cwnd, this.mss);
    this.ssthreshBytes = s.ssthresh;
    this.bytesAcked = s.bytesAcked;
    this.recovering = s.inRecovery;
    this.timeoutLoss = s.inTimeoutLoss;
  }
}
