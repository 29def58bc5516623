// What the demo learns from its evidence: the client's capture (one download through a failover)
// and the nodes' JSON logs. Pure functions over parsed data, so that the numbers in the report
// can be checked against made-up captures.

import { TCP_ACK, TCP_RST, TCP_SYN, type TcpEvent } from './pcap.js';
import type { TimelinePoint } from './timeline.js';

export interface Endpoint {
  ip: string;
  port: number;
}

export interface CaptureAnalysis {
  /** The client side of the connection analysed (the one that carried most data), if any. */
  client: Endpoint | undefined;
  /** Time of the connection's first packet (µs since the epoch): the origin of the timeline. */
  originUs: number;
  /** Server to client data: sequence number past each segment, relative to the server's ISN+1. */
  data: TimelinePoint[];
  /** Client to server: cumulative ACK, relative likewise. */
  acks: TimelinePoint[];
  /** Highest relative sequence number the server's data reached (bytes of the stream seen). */
  bytesSeen: number;
  /** Data segments that brought nothing beyond what had already been seen (retransmissions). */
  repeatedSegments: number;
  /** Every RST in the capture to or from the server, whatever the connection. */
  rsts: TcpEvent[];
  /** The stall around the kill, when a kill time was given and data flowed on both sides of it. */
  stall: { fromUs: number; toUs: number; ms: number } | undefined;
}

const MIB = 1024 * 1024;

/**
 * Analyses the capture of the client's interface. The stall is the longest pause in *new* data
 * (segments that carry bytes beyond any seen before) that ends after the kill: packets the primary
 * wrote just before its death may still land a moment after the kill, so "the first packet after
 * the kill" would measure nothing; the pause that the failover causes is the longest one. The
 * search stops at `searchUntilUs` (default: end of capture), so that a pause long after the
 * takeover is not blamed on it.
 *
 * With `failoverAtUs` (when the backup decided the primary was dead), the stall is instead the
 * pause that spans that moment: nothing new can reach the client between the kill and that
 * decision, so that pause is the failover's, whatever its length. The longest pause could be
 * another one: curl's --limit-rate stops reading for half a second at times, which closes the
 * window and makes a pause longer than a failover's, and such a pause right after the takeover
 * would otherwise be reported (and drawn) as the stall.
 */
export function analyzeCapture(
  events: readonly TcpEvent[],
  opts: { server: Endpoint; killedAtUs?: number; searchUntilUs?: number; failoverAtUs?: number },
): CaptureAnalysis {
  const { server } = opts;
  const fromServer = (e: TcpEvent): boolean => e.src === server.ip && e.srcPort === server.port;
  const toServer = (e: TcpEvent): boolean => e.dst === server.ip && e.dstPort === server.port;
  const rsts = events.filter((e) => (e.flags & TCP_RST) !== 0 && (fromServer(e) || toServer(e)));

  // The connection that carried the most bytes from the server is the download.
  const bytesBy = new Map<string, number>();
  for (const e of events) if (fromServer(e) && e.payloadLength > 0) bytesBy.set(`${e.dst}:${e.dstPort}`, (bytesBy.get(`${e.dst}:${e.dstPort}`) ?? 0) + e.payloadLength);
  let best: string | undefined;
  for (const [k, n] of bytesBy) if (best === undefined || n > bytesBy.get(best)!) best = k;
  const empty: CaptureAnalysis = { client: undefined, originUs: events[0]?.timeUs ?? 0, data: [], acks: [], bytesSeen: 0, repeatedSegments: 0, rsts, stall: undefined };
  if (best === undefined) return empty;
  const sep = best.lastIndexOf(':');
  const client: Endpoint = { ip: best.slice(0, sep), port: Number(best.slice(sep + 1)) };
  const conn = events.filter(
    (e) => (fromServer(e) && e.dst === client.ip && e.dstPort === client.port) || (toServer(e) && e.src === client.ip && e.srcPort === client.port),
  );

  // The server's ISN from its SYN-ACK; without one (capture started late), its first data byte.
  const synAck = conn.find((e) => fromServer(e) && (e.flags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK));
  const firstData = conn.find((e) => fromServer(e) && e.payloadLength > 0)!;
  const base = synAck !== undefined ? (synAck.seq + 1) >>> 0 : firstData.seq;
  const originUs = conn[0]!.timeUs;
  const rel = (seq: number): number => (seq - base) >>> 0;
  const tMs = (e: TcpEvent): number => (e.timeUs - originUs) / 1000;

  const data: TimelinePoint[] = [];
  const acks: TimelinePoint[] = [];
  // Times of segments that advanced the stream, for the stall.
  const progress: number[] = [];
  let highest = 0;
  let repeated = 0;
  for (const e of conn) {
    if (fromServer(e) && e.payloadLength > 0) {
      const end = rel(e.seq) + e.payloadLength;
      data.push({ tMs: tMs(e), mib: end / MIB });
      if (end > highest) {
        highest = end;
        progress.push(e.timeUs);
      } else {
        repeated++;
      }
    } else if (toServer(e) && (e.flags & TCP_ACK) !== 0 && (synAck === undefined || e.timeUs >= synAck.timeUs)) {
      // ACK numbers before the SYN-ACK refer to nothing; the handshake's ACK is relative 0.
      acks.push({ tMs: tMs(e), mib: rel(e.ack) / MIB });
    }
  }

  let stall: CaptureAnalysis['stall'];
  if (opts.killedAtUs !== undefined && opts.failoverAtUs !== undefined) {
    const t = opts.failoverAtUs;
    for (let i = 1; i < progress.length && stall === undefined; i++) {
      const a = progress[i - 1]!;
      const b = progress[i]!;
      if (a <= t && t < b && b > opts.killedAtUs) stall = { fromUs: a, toUs: b, ms: (b - a) / 1000 };
    }
  }
  // No pause spans the decision (the log's clock is only to the millisecond, or no takeover was
  // logged): the longest pause after the kill, as before.
  if (stall === undefined && opts.killedAtUs !== undefined) {
    const until = opts.searchUntilUs ?? Number.POSITIVE_INFINITY;
    for (let i = 1; i < progress.length; i++) {
      const a = progress[i - 1]!;
      const b = progress[i]!;
      if (b <= opts.killedAtUs || a > until) continue;
      if (stall === undefined || b - a > stall.toUs - stall.fromUs) stall = { fromUs: a, toUs: b, ms: (b - a) / 1000 };
    }
  }
  return { client, originUs, data, acks, bytesSeen: highest, repeatedSegments: repeated, rsts, stall };
}

export interface LogEvent {
  /** Which node's log: "primary", "backup". */
  node: string;
  /** Milliseconds since the epoch. */
  timeMs: number;
  event: string;
  level: string | undefined;
  /** The line's other fields. */
  fields: Record<string, unknown>;
}

/**
 * The events of a node's JSON log (pino: one object per line with `time` and `event`). Anything
 * else — a pretty line, a one-line error the CLI printed, a line cut by SIGKILL — is skipped.
 */
export function parseNodeLog(text: string, node: string): LogEvent[] {
  const out: LogEvent[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    let rec: unknown;
    try {
      rec = JSON.parse(t);
    } catch {
      continue;
    }
    if (typeof rec !== 'object' || rec === null) continue;
    const { time, event, level, pid: _pid, ...fields } = rec as Record<string, unknown>;
    if (typeof event !== 'string') continue;
    const timeMs = typeof time === 'number' ? time : typeof time === 'string' ? Date.parse(time) : Number.NaN;
    if (!Number.isFinite(timeMs)) continue;
    out.push({ node, timeMs, event, level: typeof level === 'string' ? level : undefined, fields });
  }
  return out;
}

/** The takeover steps (events named `takeover.*`) of all logs, oldest first. */
export function takeoverSteps(events: readonly LogEvent[]): LogEvent[] {
  return events.filter((e) => e.event.startsWith('takeover.')).sort((a, b) => a.timeMs - b.timeMs);
}

/**
 * When the backup took over, for the picture: the step that says the takeover is complete if
 * there is one, else the first step (the decision). Undefined without steps.
 */
export function takeoverMoment(steps: readonly LogEvent[]): number | undefined {
  const done = steps.find((s) => /\.(done|complete|completed|finished|end|ended)$/.test(s.event));
  return (done ?? steps[0])?.timeMs;
}
