// The primary's capture: the core observer reports each event of a connection, and the tap turns
// them into records in the order they happened.

import { describe, expect, it } from 'vitest';
import type { LogRecord } from '../../../src/replication/log-records.js';
import { PrimaryTap } from '../../../src/replication/primary-tap.js';
import { createPassiveConnection } from '../../../src/stack/tcp/connection.js';
import { emptyLinkStats } from '../../../src/tun/link.js';
import { SpyLog } from './spy-log.js';
import { bytes, plainConfig, seg, testEnv, TUPLE } from '../tcp/harness.js';


function setup(protect: boolean): { log: SpyLog; tap: PrimaryTap } {
  const log = new SpyLog();
  let now = 0;
  const tap = new PrimaryTap({ log, clock: () => (now += 1000) });
  if (protect) tap.protect();
  return { log, tap };
}

describe('PrimaryTap', () => {
  it('logs a passive connection from its SYN to its close: open, input, output, acks and close in order', () => {
    const { log, tap } = setup(true);
    const env = tap.wrapEnv(testEnv());
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig(), env, 1000);
    expect(log.records).toEqual([
      expect.objectContaining({ kind: 'open', lsn: 1, conn: 1, iss: 1000, irs: 5000, tuple: TUPLE, options: expect.objectContaining({ rcvWindow: 65535, timestamps: false }) }),
    ]);
    c.onSegment(1000, seg('.', 5001, 1001));
    c.onSegment(2000, seg('.P', 5001, 1001, { data: bytes(100, 1) }));
    expect(c.write(3000, bytes(300, 7))).toBe(300);
    // The bytes leave once the backup has their record (the connection's send limit).
    expect(c.takeOutput().filter((s) => s.payload.length > 0)).toEqual([]);
    log.ackAll();
    expect(c.takeOutput().map((s) => s.payload.length)).toEqual([300]);
    c.onSegment(4000, seg('F.', 5101, 1301, { data: bytes(10, 2) }));
    tap.heartbeat();
    while (c.read(5000) !== null);
    c.close(5000);
    log.ackAll();
    c.onSegment(6000, seg('.', 5112, 1302));
    expect(c.state).toBe('CLOSED');
    const kinds = log.records.map((r) => r.kind);
    // The ACK of our FIN closes the connection: the close record says all there is.
    // The first ack record went with the message the backup acknowledged (the handshake's ACK).
    expect(kinds).toEqual(['open', 'input', 'output', 'ack', 'input', 'input', 'ack', 'heartbeat', 'output', 'close']);
    const [, in1, out1, ack0, in2, fin, ack1, hb, outFin] = log.records;
    expect(ack0).toMatchObject({ ack: 1001 });
    expect(in1).toMatchObject({ offset: 0, rcvNxt: 5101, fin: false, data: bytes(100, 1) });
    expect(out1).toMatchObject({ offset: 0, fin: false, data: bytes(300, 7) });
    expect(in2).toMatchObject({ offset: 100, rcvNxt: 5111, fin: false });
    expect(fin).toMatchObject({ offset: 110, rcvNxt: 5112, fin: true, data: new Uint8Array(0) });
    // The ACK of our data, written when the heartbeat sealed a message.
    expect(ack1).toMatchObject({ ack: 1301, window: 65535 });
    expect(hb).toMatchObject({ congestion: [expect.objectContaining({ conn: 1 })] });
    expect(outFin).toMatchObject({ offset: 300, fin: true });
    expect(tap.connectionCount).toBe(0);
  });

  it('protected: output leaves once the backup acknowledged its record; losing the backup lets the rest go', () => {
    const { log, tap } = setup(true);
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig(), tap.wrapEnv(testEnv()), 1000);
    c.onSegment(1000, seg('.', 5001, 1001));
    c.takeOutput();
    c.write(2000, bytes(100));
    expect(c.takeOutput()).toEqual([]);
    log.ackAll();
    expect(c.takeOutput().map((s) => s.payload.length)).toEqual([100]);
    c.onSegment(2500, seg('.', 5001, 1101));
    c.write(3000, bytes(200));
    expect(c.takeOutput()).toEqual([]);
    tap.unprotect('the test took the backup away');
    expect(c.takeOutput().map((s) => s.payload.length)).toEqual([200]);
  });

  it('records a reset when the application aborts', () => {
    const { log, tap } = setup(true);
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig(), tap.wrapEnv(testEnv()), 1000);
    c.onSegment(1000, seg('.', 5001, 1001));
    c.abort(2000);
    expect(log.records.at(-1)).toMatchObject({ kind: 'reset', reason: 'aborted' });
  });

  it('carries the client TS.Recent on ack records when timestamps are on', () => {
    const { log, tap } = setup(true);
    const ts = (tsval: number, tsecr: number) => ({ timestamp: { tsval, tsecr } });
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0, { options: ts(777, 0) }), plainConfig({ timestamps: true }), tap.wrapEnv(testEnv()), 1000);
    c.onSegment(1000, seg('.', 5001, 1001, { options: ts(780, 1) }));
    c.onSegment(2000, seg('.', 5001, 1001, { data: 5, options: ts(790, 1) }));
    tap.heartbeat();
    expect(log.records.filter((r) => r.kind === 'ack').at(-1)).toMatchObject({ tsRecent: 790 });
  });

  it('logs nothing while unprotected and counts the connection as unreplicated', () => {
    const { log, tap } = setup(false);
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig(), tap.wrapEnv(testEnv()), 1000);
    c.onSegment(1000, seg('.', 5001, 1001, { data: 10 }));
    c.write(2000, bytes(10));
    tap.heartbeat();
    expect(log.records).toEqual([]);
    expect(tap.stats).toMatchObject({ replicated: 0, unreplicated: 1 });
  });

  it('stops logging a connection once protection is dropped', () => {
    const { log, tap } = setup(true);
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig(), tap.wrapEnv(testEnv()), 1000);
    tap.unprotect('test');
    const before = log.records.length;
    c.onSegment(1000, seg('.', 5001, 1001, { data: 10 }));
    expect(log.records.length).toBe(before);
  });
});

describe('PrimaryTap ack records', () => {
  it('client ACKs become one ack record per connection per message, and packets do not wait for it', () => {
    const turns: Array<() => void> = [];
    const log = new SpyLog({ scheduleFlush: (run) => turns.push(run) });
    const batches: number[][] = [];
    log.attach((b) => batches.push(b.records.map((r) => r.lsn)), 0);
    const tap = new PrimaryTap({ log, clock: () => 0 });
    const sent: number[] = [];
    const gate = tap.wrapLink({ mtu: 1500, stats: emptyLinkStats(), send: (ps) => ps.forEach((p) => sent.push(p[0]!)), onReceive: () => undefined, close: () => undefined });
    tap.protect();
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig(), tap.wrapEnv(testEnv()), 1000);
    c.onSegment(1000, seg('.', 5001, 1001));
    expect(c.write(1000, bytes(3000, 7))).toBe(3000);
    const endTurn = (): void => turns.splice(0).forEach((run) => run());
    endTurn();
    log.onAck(log.lastLsn);
    const before = log.records.length;
    // Two client ACKs of our data, each followed by a pass that sends something.
    c.onSegment(2000, seg('.', 5001, 2001));
    gate.send([Uint8Array.of(1)]);
    c.onSegment(3000, seg('.', 5001, 3001));
    gate.send([Uint8Array.of(2)]);
    // Nothing they depend on is unacknowledged: both leave at once, before any ack record exists.
    expect(sent).toEqual([1, 2]);
    expect(log.records.length).toBe(before);
    endTurn();
    const acks = log.records.slice(before).filter((r) => r.kind === 'ack');
    expect(acks).toEqual([expect.objectContaining({ conn: 1, ack: 3001 })]);
    expect(batches.at(-1)).toEqual([acks[0]!.lsn]);
  });
});

describe('PrimaryTap heartbeats', () => {
  it('carry a connection congestion hint only when it moved since the last one', () => {
    const { log, tap } = setup(true);
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig(), tap.wrapEnv(testEnv()), 1000);
    c.onSegment(1000, seg('.', 5001, 1001));
    tap.heartbeat();
    tap.heartbeat();
    const hbs = log.records.filter((r) => r.kind === 'heartbeat');
    expect(hbs.map((h) => (h.kind === 'heartbeat' ? h.congestion.length : -1))).toEqual([1, 0]);
    // Clock values go forward with the tap's clock.
    expect(hbs[1]!.kind === 'heartbeat' && hbs[0]!.kind === 'heartbeat' && hbs[1]!.clockUs > hbs[0]!.clockUs).toBe(true);
  });
});

describe('PrimaryTap and SYN cookies', () => {
  it('logs a SYN-cookie connection as established from its first record, with the data its ACK carried', async () => {
    const { createCookieConnection } = await import('../../../src/stack/tcp/connection.js');
    const { ShadowTable, shadowState } = await import('../../../src/replication/shadow.js');
    const { log, tap } = setup(true);
    const c = createCookieConnection(0, TUPLE, seg('.', 5001, 1001, { data: 20 }), { mss: 1460, wscale: null, sackPermitted: false, timestamps: false }, plainConfig(), tap.wrapEnv(testEnv()));
    tap.heartbeat();
    expect(c.state).toBe('ESTABLISHED');
    expect(log.records.map((r) => r.kind)).toEqual(['open', 'input', 'ack', 'heartbeat']);
    const shadows = new ShadowTable(() => 0);
    for (const r of log.records) shadows.apply(r);
    expect(shadowState(shadows.get(1)!)).toBe('ESTABLISHED');
    expect(shadows.get(1)!.rcvNxt).toBe(5021);
  });
});

describe('PrimaryTap shutdown', () => {
  it('stops quietly when its log was closed under it, instead of throwing into the stack', () => {
    const { log, tap } = setup(true);
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig(), tap.wrapEnv(testEnv()), 1000);
    c.onSegment(1000, seg('.', 5001, 1001));
    log.close();
    expect(() => c.onSegment(2000, seg('.', 5001, 1001, { data: 10 }))).not.toThrow();
    expect(() => c.abort(3000)).not.toThrow();
    expect(tap.isProtected).toBe(false);
    expect(tap.connectionCount).toBe(0);
  });
});
