// From a capture and the nodes' logs to the report's numbers: which connection is the download,
// relative sequence numbers across the 2^32 wrap, RSTs, the stall around the kill, takeover steps.

import { describe, expect, it } from 'vitest';
import { analyzeCapture, parseNodeLog, takeoverMoment, takeoverSteps } from '../../../src/demo/analysis.js';
import { TCP_ACK, TCP_PSH, TCP_RST, TCP_SYN, type TcpEvent } from '../../../src/demo/pcap.js';

const SERVER = { ip: '198.18.0.100', port: 80 };
const CLIENT = { ip: '198.18.0.10', port: 41000 };
const T0 = 1_800_000_000_000_000; // µs
const MIB = 1024 * 1024;

function s2c(tUs: number, seq: number, len: number, flags = TCP_ACK | TCP_PSH, client = CLIENT): TcpEvent {
  return { timeUs: T0 + tUs, src: SERVER.ip, srcPort: SERVER.port, dst: client.ip, dstPort: client.port, flags, seq: seq >>> 0, ack: 1000, payloadLength: len, window: 500 };
}
function c2s(tUs: number, ack: number, flags = TCP_ACK, client = CLIENT): TcpEvent {
  return { timeUs: T0 + tUs, src: client.ip, srcPort: client.port, dst: SERVER.ip, dstPort: SERVER.port, flags, seq: 1000, ack: ack >>> 0, payloadLength: 0, window: 500 };
}

/**
 * A download whose server ISN sits just below 2^32, one 64 KiB segment per ms; after `killAt` ms,
 * two straggler segments, then nothing for `gap` ms, then a retransmission of old data and new data.
 */
function failoverCapture(isn: number, killAt: number, gap: number): TcpEvent[] {
  const seg = 65536;
  const ev: TcpEvent[] = [c2s(0, 0, TCP_SYN), s2c(100, isn, 0, TCP_SYN | TCP_ACK), c2s(200, isn + 1)];
  let off = 0;
  let t = 1000;
  const send = (): void => {
    ev.push(s2c(t, isn + 1 + off, seg));
    off += seg;
    ev.push(c2s(t + 50, isn + 1 + off));
    t += 1000;
  };
  while (t <= killAt * 1000) send();
  // Written by the primary just before SIGKILL, seen just after.
  send();
  send();
  t += gap * 1000;
  // The backup's first segment repeats bytes the client had: not progress.
  ev.push(s2c(t, isn + 1 + off - seg, seg));
  t += 500;
  for (let i = 0; i < 5; i++) send();
  return ev;
}

describe('analyzeCapture', () => {
  it('measures the stall from the last new byte to the first new byte, not from the kill', () => {
    const a = analyzeCapture(failoverCapture(1_000_000, 50, 300), { server: SERVER, killedAtUs: T0 + 50_000 + 500 });
    expect(a.stall).toBeDefined();
    // The stragglers arrive at 51 and 52 ms; after 300 ms the repeat (not progress), 0.5 ms later new data.
    expect((a.stall!.fromUs - T0) / 1000).toBe(52);
    expect(a.stall!.ms).toBe(301.5);
    expect(a.repeatedSegments).toBe(1);
  });

  it('counts sequence numbers from the server ISN across the 2^32 wrap', () => {
    const a = analyzeCapture(failoverCapture(0xffffff00, 10, 100), { server: SERVER });
    expect(a.client).toEqual(CLIENT);
    // 10 + 2 + 5 segments of 64 KiB.
    expect(a.bytesSeen).toBe(17 * 65536);
    for (let i = 1; i < a.data.length; i++) {
      if (i === 12) continue; // the repeated segment
      expect(a.data[i]!.mib).toBeGreaterThan(a.data[i - 1]!.mib);
    }
    expect(a.data[0]).toEqual({ tMs: 1, mib: 65536 / MIB });
    expect(a.acks[0]).toEqual({ tMs: 0.2, mib: 0 });
    expect(a.acks.at(-1)!.mib).toBe((17 * 65536) / MIB);
    expect(a.stall).toBeUndefined();
  });

  it('picks the connection that carried the data and lists every RST to or from the server', () => {
    const other = { ip: CLIENT.ip, port: 41001 };
    const ev = [...failoverCapture(5, 5, 10), s2c(900_000, 7, 100, TCP_ACK, other), c2s(900_100, 0, TCP_RST, other), s2c(900_200, 9, 0, TCP_RST)];
    ev.sort((x, y) => x.timeUs - y.timeUs);
    const a = analyzeCapture(ev, { server: SERVER });
    expect(a.client).toEqual(CLIENT);
    expect(a.rsts.map((e) => e.srcPort)).toEqual([41001, 80]);
  });

  it('relates to the first data byte when the capture missed the handshake', () => {
    const ev = failoverCapture(123, 5, 10).slice(3);
    const a = analyzeCapture(ev, { server: SERVER });
    expect(a.data[0]!.mib).toBe(65536 / MIB);
  });

  it('reports nothing to measure for a capture without data', () => {
    const a = analyzeCapture([c2s(0, 0, TCP_SYN)], { server: SERVER, killedAtUs: T0 });
    expect(a).toMatchObject({ client: undefined, data: [], bytesSeen: 0, stall: undefined });
  });

  it('ignores pauses that begin after the search window', () => {
    const ev = failoverCapture(77, 20, 50);
    // A later, longer pause (say the client's own rate limit): outside the window, not the stall.
    const last = ev.at(-2)!;
    ev.push(s2c(last.timeUs - T0 + 2_000_000, last.seq + 65536, 65536));
    const a = analyzeCapture(ev, { server: SERVER, killedAtUs: T0 + 20_500, searchUntilUs: T0 + 75_000 });
    expect(a.stall!.ms).toBe(51.5);
    const b = analyzeCapture(ev, { server: SERVER, killedAtUs: T0 + 20_500 });
    expect(b.stall!.ms).toBeGreaterThan(1000);
  });
});

describe('node logs', () => {
  const log = [
    '{"level":"info","time":"2026-11-28T15:00:00.000Z","pid":7,"event":"node.ready","vip":"198.18.0.100"}',
    '{"level":"warn","time":"2026-11-28T15:00:05.310Z","pid":7,"event":"takeover.route","dev":"tun0"}',
    'understudy: something printed by the CLI',
    '{"level":"info","time":"2026-11-28T15:00:05.300Z","pid":7,"event":"takeover.start","epoch":2}',
    '{"level":"info","time":"2026-11-28T15:00:05.330Z","pid":7,"event":"takeover.done","connections":1}',
    '{"level":"info","time":"2026-11-28T15:00:05.340Z","pid":7,"event":"takeover.garp","n":3}',
    '{"level":"info","time":"2026-11-28T15:00:05.3',
    '{"event": 5, "time": "2026-11-28T15:00:06.000Z"}',
    '',
  ].join('\n');

  it('keeps every complete JSON event line and skips the rest', () => {
    const ev = parseNodeLog(log, 'backup');
    expect(ev.map((e) => e.event)).toEqual(['node.ready', 'takeover.route', 'takeover.start', 'takeover.done', 'takeover.garp']);
    expect(ev[0]).toEqual({ node: 'backup', timeMs: Date.parse('2026-11-28T15:00:00.000Z'), event: 'node.ready', level: 'info', fields: { vip: '198.18.0.100' } });
  });

  it('orders the takeover steps by time and takes the completion step as the moment of takeover', () => {
    const steps = takeoverSteps([...parseNodeLog(log, 'backup'), ...parseNodeLog('{"time":1,"event":"conn.open"}', 'primary')]);
    expect(steps.map((s) => s.event)).toEqual(['takeover.start', 'takeover.route', 'takeover.done', 'takeover.garp']);
    expect(takeoverMoment(steps)).toBe(Date.parse('2026-11-28T15:00:05.330Z'));
  });

  it('falls back to the first step when none says it is complete, and to nothing without steps', () => {
    const steps = takeoverSteps(parseNodeLog(log, 'backup')).filter((s) => s.event !== 'takeover.done');
    expect(takeoverMoment(steps)).toBe(Date.parse('2026-11-28T15:00:05.300Z'));
    expect(takeoverMoment([])).toBeUndefined();
  });
});
