// Retransmission timeout per RFC 6298 sections 2 and 5. Karn's rule (RFC 6298 section 3: no
// samples from retransmitted segments) is the caller's: it simply does not call sample() then.

/** Plain data for replication: enough to resume with the same RTO on another node. */
export interface RtoSnapshot {
  srttUs: number | null;
  rttvarUs: number;
  /** The RTO before backoff, already clamped to [min, max]. */
  baseRtoUs: number;
  /** How many times the timer has been backed off since the last sample or reset. */
  backoffCount: number;
}

/** RFC 6298 section 2: "alpha=1/8 and beta=1/4 (as suggested in [JK88])" and "K = 4". */
const ALPHA = 1 / 8;
const BETA = 1 / 4;
const K = 4;
/** Doubling beyond 2^30 cannot matter: every sane maximum is reached long before. */
const MAX_BACKOFF_SHIFT = 30;

export class RtoEstimator {
  private srtt: number | null = null;
  private rttvar = 0;
  private baseRto: number;
  private backoffs = 0;

  /**
   * RFC 6298 section 2.4 asks for a 1 s floor; minRtoUs lets the stack use Linux's 200 ms instead.
   * granularityUs is G, the clock granularity (1 ms by default).
   */
  constructor(
    private readonly initialRtoUs: number,
    private readonly minRtoUs: number,
    private readonly maxRtoUs: number,
    private readonly granularityUs = 1000,
  ) {
    // (2.1) "Until a round-trip time (RTT) measurement has been made for a segment sent between the
    // sender and receiver, the sender SHOULD set RTO <- 1 second".
    this.baseRto = this.clamp(initialRtoUs);
  }

  /** The timeout to arm now: the computed RTO doubled once per backoff, at most maxRtoUs. */
  get rtoUs(): number {
    return Math.min(this.baseRto * 2 ** this.backoffs, this.maxRtoUs);
  }

  get srttUs(): number | null {
    return this.srtt;
  }

  get rttvarUs(): number {
    return this.rttvar;
  }

  get backoffCount(): number {
    return this.backoffs;
  }

  /**
   * A valid RTT measurement R (microseconds). Clears any backoff: RFC 6298 section 5, "once a new
   * RTT measurement is obtained ... the computations outlined in Section 2 are performed,
   * including the computation of RTO, which may result in "collapsing" RTO back down after it has
   * been subject to exponential back off (rule 5.5)."
   */
  sample(rttUs: number): void {
    const r = Math.max(0, rttUs);
    if (this.srtt === null) {
      // (2.2) "When the first RTT measurement R is made, the host MUST set
      //   SRTT <- R
      //   RTTVAR <- R/2
      //   RTO <- SRTT + max (G, K*RTTVAR)"
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      // (2.3) "When a subsequent RTT measurement R' is made, a host MUST set
      //   RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|
      //   SRTT <- (1 - alpha) * SRTT + alpha * R'
      // The value of SRTT used in the update to RTTVAR is its value before updating SRTT itself".
      this.rttvar = (1 - BETA) * this.rttvar + BETA * Math.abs(this.srtt - r);
      this.srtt = (1 - ALPHA) * this.srtt + ALPHA * r;
    }
    // "After the computation, a host MUST update RTO <- SRTT + max (G, K*RTTVAR)".
    this.baseRto = this.clamp(this.srtt + Math.max(this.granularityUs, K * this.rttvar));
    this.backoffs = 0;
  }

  /** (5.5) "The host MUST set RTO <- RTO * 2 ("back off the timer")." */
  backoff(): void {
    if (this.backoffs < MAX_BACKOFF_SHIFT) this.backoffs++;
  }

  resetBackoff(): void {
    this.backoffs = 0;
  }

  /**
   * (5.7) "If the timer expires awaiting the ACK of a SYN segment and the TCP implementation is
   * using an RTO less than 3 seconds, the RTO MUST be re-initialized to 3 seconds when data
   * transmission begins (i.e., after the three-way handshake completes)." Applies only when no
   * sample has been taken since; a later sample replaces it through (2.2).
   */
  onHandshakeCompleteAfterSynTimeout(): void {
    this.backoffs = 0;
    if (this.srtt === null && this.baseRto < 3_000_000) this.baseRto = Math.min(3_000_000, this.maxRtoUs);
  }

  /**
   * RFC 6298 section 5: "a TCP implementation MAY clear SRTT and RTTVAR after backing off the
   * timer multiple times as it is likely that the current SRTT and RTTVAR are bogus in this
   * situation. Once SRTT and RTTVAR are cleared, they should be initialized with the next RTT
   * sample taken per (2.2) rather than using (2.3)." The backed-off RTO is kept.
   */
  clearEstimate(): void {
    this.srtt = null;
    this.rttvar = 0;
  }

  snapshot(): RtoSnapshot {
    return { srttUs: this.srtt, rttvarUs: this.rttvar, baseRtoUs: this.baseRto, backoffCount: this.backoffs };
  }

  static restore(
    s: RtoSnapshot,
    initialRtoUs: number,
    minRtoUs: number,
    maxRtoUs: number,
    granularityUs = 1000,
  ): RtoEstimator {
    const e = new RtoEstimator(initialRtoUs, minRtoUs, maxRtoUs, granularityUs);
    e.srtt = s.srttUs;
    e.rttvar = s.rttvarUs;
    e.baseRto = e.clamp(s.baseRtoUs);
    e.backoffs = Math.min(Math.max(0, Math.floor(s.backoffCount)), MAX_BACKOFF_SHIFT);
    return e;
  }

  /**
   * (2.4) "Whenever RTO is computed, if it is less than 1 second, then the RTO SHOULD be rounded
   * up to 1 second" (here: to minRtoUs); (2.5) "A maximum value MAY be placed on RTO provided it
   * is at least 60 seconds."
   */
  private clamp(rto: number): number {
    return Math.min(Math.max(rto, this.minRtoUs), this.maxRtoUs);
  }
}
