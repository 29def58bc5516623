// The backup's shadow connections: built from records, then promoted into a live connection that
// resumes with the primary's sequence numbers and at once retransmits and acknowledges.

import { describe, expect, it } from 'vitest';
import type { NewRecord } from '../../../src/replication/log-records.js';
import { clientWaits, promote, ShadowTable, shadowState, type Shadow } from '../../../src/replication/shadow.js';
import { TCP_ACK, TCP_FIN, TCP_SYN } from '../../../src/stack/wire/types.js';
import { bytes, plainConfig, testEnv, TUPLE } from '../tcp/harness.js';
import { logApplier, OPEN } from './replica-fixtures.js';

function table(records: NewRecord[], clock = () => 0): { t: ShadowTable; s: Shadow | undefined } {
  const t = new ShadowTable(clock);
  records.forEach(logApplier(t));
  return { t, s: t.get(1) };
}

describe('ShadowTable', () => {
  it('follows input, output and the client ACK, trimming acknowledged output', () => {
    const { s } = table([
      OPEN,
      { kind: 'ack', conn: 1, ack: 1001, window: 60000 },
      { kind: 'input', conn: 1, offset: 0, data: bytes(100), rcvNxt: 5101, fin: false },
      { kind: 'output', conn: 1, offset: 0, data: bytes(3000), fin: false },
      { kind: 'ack', conn: 1, ack: 2001, window: 50000 },
    ]);
    expect(s).toBeDefined();
    expect(s!.rcvNxt).toBe(5101);
    expect(s!.inputEnd).toBe(100);
    expect(s!.ackedOutput).toBe(1000);
    expect(s!.sndWnd).toBe(50000);
    // Until the replica compared it (keepFrom), acknowledged output stays.
    expect(s!.output.start).toBe(0);
    s!.keepFrom = 3000;
    s!.trim();
    expect(s!.output.start).toBe(1000);
    expect(shadowState(s!)).toBe('ESTABLISHED');
  });

  it('refuses input that does not continue the stream', () => {
    const { t } = table([OPEN]);
    expect(() => t.apply({ kind: 'input', lsn: 2, conn: 1, offset: 5, data: bytes(1), rcvNxt: 5007, fin: false })).toThrow(/offset 5, expected 0/);
  });

  it('derives the TCP state from which FINs were logged and acknowledged', () => {
    const st = (recs: NewRecord[]): string | null => shadowState(table([OPEN, ...recs]).s!);
    const ack = (n: number): NewRecord => ({ kind: 'ack', conn: 1, ack: n, window: 1000 });
    const peerFin: NewRecord = { kind: 'input', conn: 1, offset: 0, data: new Uint8Array(0), rcvNxt: 5002, fin: true };
    const ourFin: NewRecord = { kind: 'output', conn: 1, offset: 0, data: new Uint8Array(0), fin: true };
    expect(st([])).toBe('SYN-RECEIVED');
    expect(st([ack(1001), peerFin])).toBe('CLOSE-WAIT');
    expect(st([ack(1001), ourFin])).toBe('FIN-WAIT-1');
    expect(st([ack(1001), ourFin, ack(1002)])).toBe('FIN-WAIT-2');
    expect(st([ack(1001), peerFin, ourFin])).toBe('LAST-ACK');
    expect(st([ack(1001), peerFin, ourFin, ack(1002)])).toBeNull();
    expect(st([ack(1001), ourFin, peerFin])).toBe('CLOSING');
    expect(st([ack(1001), ourFin, peerFin, ack(1002)])).toBe('TIME-WAIT');
  });

  it('takeover order: a client waits for a SYN-ACK, unacknowledged output or FIN, or a reply only the replica wrote; an idle one does not', () => {
    const waits = (recs: NewRecord[], replicaAhead = 0): boolean => clientWaits(table([OPEN, ...recs]).s!, replicaAhead);
    const ack = (n: number): NewRecord => ({ kind: 'ack', conn: 1, ack: n, window: 1000 });
    const out = (n: number, fin = false): NewRecord => ({ kind: 'output', conn: 1, offset: 0, data: bytes(n), fin });
    expect(waits([])).toBe(true);
    expect(waits([ack(1001)])).toBe(false);
    expect(waits([ack(1001), out(100)])).toBe(true);
    expect(waits([ack(1001), out(100), ack(1101)])).toBe(false);
    expect(waits([ack(1001), out(0, true)])).toBe(true);
    expect(waits([ack(1001), out(0, true), ack(1002)])).toBe(false);
    expect(waits([ack(1001)], 64)).toBe(true);
  });

  it('forgets a connection on close and ignores an ack that trails it', () => {
    const { t } = table([OPEN, { kind: 'close', conn: 1, reason: 'closed' }, { kind: 'ack', conn: 1, ack: 1001, window: 1 }]);
    expect(t.size).toBe(0);
  });
});

describe('promote', () => {
  it('resumes with the same sequence numbers, retransmits from SND.UNA and acknowledges RCV.NXT', () => {
    const { s } = table([
      OPEN,
      { kind: 'ack', conn: 1, ack: 1001, window: 65535 },
      { kind: 'input', conn: 1, offset: 0, data: bytes(100), rcvNxt: 5101, fin: false },
      { kind: 'output', conn: 1, offset: 0, data: bytes(3000), fin: false },
      { kind: 'ack', conn: 1, ack: 2001, window: 65535 },
    ]);
    s!.keepFrom = 3000;
    const c = promote(s!, plainConfig(), testEnv(), { now: 10_000, primaryClockUs: null });
    expect(c).not.toBeNull();
    const out = c!.takeOutput();
    expect(out.length).toBeGreaterThan(0);
    // The first segment starts at SND.UNA (client acked 1000 bytes) and carries those bytes.
    expect(out[0]).toMatchObject({ seq: 2001, ack: 5101 });
    expect(out[0]!.payload).toEqual(bytes(3000).subarray(1000, 1000 + out[0]!.payload.length));
    const sent = out.reduce((n, x) => n + x.payload.length, 0);
    expect(sent).toBe(2000);
    expect(c!.state).toBe('ESTABLISHED');
    expect(c!.vars.sndMax).toBe(4001);
  });

  it('time-wait: promoted silently (the client has closed), and acknowledges a retransmitted FIN', () => {
    const { s } = table([
      OPEN,
      { kind: 'ack', conn: 1, ack: 1001, window: 65535 },
      { kind: 'output', conn: 1, offset: 0, data: new Uint8Array(0), fin: true },
      { kind: 'input', conn: 1, offset: 0, data: new Uint8Array(0), rcvNxt: 5002, fin: true },
      { kind: 'ack', conn: 1, ack: 1002, window: 65535 },
    ]);
    const c = promote(s!, plainConfig(), testEnv(), { now: 10_000, primaryClockUs: null });
    expect(c!.state).toBe('TIME-WAIT');
    expect(c!.takeOutput()).toEqual([]);
    c!.onSegment(20_000, { srcPort: TUPLE.remotePort, dstPort: TUPLE.localPort, seq: 5001, ack: 1002, flags: TCP_FIN | TCP_ACK, window: 65535, urgent: 0, options: {}, payload: new Uint8Array(0) });
    expect(c!.takeOutput()).toMatchObject([{ seq: 1002, ack: 5002, flags: TCP_ACK }]);
  });

  it('repeats the SYN-ACK with the logged ISS for a connection still in SYN-RECEIVED', () => {
    const { s } = table([OPEN]);
    const c = promote(s!, plainConfig(), testEnv(), { now: 10_000, primaryClockUs: null });
    const out = c!.takeOutput();
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ seq: 1000, ack: 5001, flags: TCP_SYN | TCP_ACK });
  });

  it('sends its TSvals above the primary clock estimate plus the logged offset', () => {
    const { s } = table([
      { ...OPEN, options: { ...OPEN.options, timestamps: true, tsOffset: 500_000 } },
      { kind: 'ack', conn: 1, ack: 1001, window: 65535, tsRecent: 42 },
    ]);
    // The backup's own clock reads 10 ms; the primary's stood at 90 s.
    const c = promote(s!, plainConfig({ timestamps: true }), testEnv(), { now: 10_000, primaryClockUs: 90_000_000 });
    const out = c!.takeOutput();
    const ts = out[0]!.options.timestamp!;
    expect(ts.tsval).toBeGreaterThan(90_000 + 500_000);
    expect(ts.tsecr).toBe(42);
  });

  it('resumes a half-closed connection with its FIN queued after the unacknowledged bytes', () => {
    const { s } = table([
      OPEN,
      { kind: 'ack', conn: 1, ack: 1001, window: 65535 },
      { kind: 'output', conn: 1, offset: 0, data: bytes(10), fin: true },
    ]);
    s!.keepFrom = 10;
    const c = promote(s!, plainConfig(), testEnv(), { now: 0, primaryClockUs: null });
    const out = c!.takeOutput();
    expect(c!.state).toBe('FIN-WAIT-1');
    expect(out.some((x) => (x.flags & TCP_FIN) !== 0 && x.seq + x.payload.length === 1011)).toBe(true);
  });
});
