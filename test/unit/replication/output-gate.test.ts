import { describe, expect, it } from 'vitest';
import { OutputGate } from '../../../src/replication/output-gate.js';
import { ReplicationLog } from '../../../src/replication/replication-log.js';
import { emptyLinkStats, type Link } from '../../../src/tun/link.js';

function fakeLink(): Link & { sent: number[] } {
  const sent: number[] = [];
  return { mtu: 1500, stats: emptyLinkStats(), sent, send: (ps) => ps.forEach((p) => sent.push(p[0]!)), onReceive: () => undefined, close: () => undefined };
}

const pkt = (n: number): Uint8Array => new Uint8Array([n]);

/** A gate on an attached log over a link that records the first byte of what it sends. */
function gated(): { log: ReplicationLog; link: Link & { sent: number[] }; gate: OutputGate } {
  const log = new ReplicationLog();
  log.attach(() => undefined, 0);
  const link = fakeLink();
  const gate = new OutputGate(link, log);
  gate.setGating(true);
  return { log, link, gate };
}
const rec = { kind: 'close', conn: 1, reason: 'x' } as const;

describe('OutputGate', () => {
  it('holds packets until the LSN logged before them is acknowledged, and releases them in order', () => {
    const { log, link, gate } = gated();
    log.append(rec);
    gate.send([pkt(1), pkt(2)]);
    log.append(rec);
    gate.send([pkt(3)]);
    log.flush();
    expect(link.sent).toEqual([]);
    log.onAck(1);
    expect(link.sent).toEqual([1, 2]);
    log.onAck(2);
    expect(link.sent).toEqual([1, 2, 3]);
    // Nothing new logged: a packet goes at once.
    gate.send([pkt(4)]);
    expect(link.sent).toEqual([1, 2, 3, 4]);
    expect(gate.gateStats).toMatchObject({ held: 3, passed: 1 });
  });

  it('backup lost, undecided: even acknowledged packets wait; going on alone releases them, fencing drops them', () => {
    for (const end of ['alone', 'fenced', 'backup back'] as const) {
      const { log, link, gate } = gated();
      log.append(rec);
      log.flush();
      log.onAck(1);
      // A retransmission of acknowledged data: it would go at once...
      gate.send([pkt(1)]);
      expect(link.sent).toEqual([1]);
      // ...but not while the node does not know whether its backup took over.
      gate.holdAll(true);
      gate.send([pkt(2)]);
      expect(link.sent).toEqual([1]);
      if (end === 'alone') {
        gate.setGating(false);
        expect(link.sent).toEqual([1, 2]);
      } else if (end === 'fenced') {
        gate.fence();
        gate.holdAll(false);
        expect(link.sent).toEqual([1]);
      } else {
        gate.holdAll(false);
        expect(link.sent).toEqual([1, 2]);
      }
    }
  });

  it('sends the passes one acknowledgement releases as one send per run of equal send options, in order', () => {
    const log = new ReplicationLog();
    log.attach(() => undefined, 0);
    const calls: { packets: number[]; partial: boolean }[] = [];
    const link: Link = {
      mtu: 1500,
      stats: emptyLinkStats(),
      send: (ps, opts) => void calls.push({ packets: ps.map((p) => p[0]!), partial: opts?.tcpChecksumPartial === true }),
      onReceive: () => undefined,
      close: () => undefined,
    };
    const gate = new OutputGate(link, log);
    gate.setGating(true);
    log.append(rec);
    gate.send([pkt(1), pkt(2)], { tcpChecksumPartial: true });
    log.append(rec);
    gate.send([pkt(3)], { tcpChecksumPartial: true });
    gate.send([pkt(4)]);
    gate.send([pkt(5)], { tcpChecksumPartial: false });
    log.append(rec);
    gate.send([pkt(6)], { tcpChecksumPartial: true });
    log.flush();
    log.onAck(2);
    // A TUN merges TSO runs only within one send: passes 1-2 and 3 go together, then 4 and 5.
    expect(calls).toEqual([
      { packets: [1, 2, 3], partial: true },
      { packets: [4, 5], partial: false },
    ]);
    log.onAck(3);
    expect(calls.at(-1)).toEqual({ packets: [6], partial: true });
  });

  it('lets everything pass, held packets first, once gating is off', () => {
    const log = new ReplicationLog();
    const link = fakeLink();
    const gate = new OutputGate(link, log);
    gate.setGating(true);
    log.append(rec);
    gate.send([pkt(1)]);
    gate.setGating(false);
    gate.send([pkt(2)]);
    expect(link.sent).toEqual([1, 2]);
    expect(gate.gateStats.releasedUnprotected).toBe(1);
  });
});

describe('OutputGate on a fresh log', () => {
  it('follows the new log once switched, and no longer the old one', () => {
    const old = new ReplicationLog();
    const link = fakeLink();
    const gate = new OutputGate(link, old);
    const fresh = new ReplicationLog();
    fresh.attach(() => undefined, 0);
    gate.setLog(fresh);
    gate.setGating(true);
    fresh.append(rec);
    gate.send([pkt(7)]);
    fresh.flush();
    expect(link.sent).toEqual([]);
    fresh.onAck(1);
    expect(link.sent).toEqual([7]);
  });

  it('refuses to switch logs while it gates', () => {
    const gate = new OutputGate(fakeLink(), new ReplicationLog());
    gate.setGating(true);
    expect(() => gate.setLog(new ReplicationLog())).toThrow(/cannot change logs/);
  });
});

describe('OutputGate fencing', () => {
  it('drops what it holds and everything after, and hands nothing received up', () => {
    const log = new ReplicationLog();
    log.attach(() => undefined, 0);
    const link = fakeLink();
    let handler: ((p: Uint8Array[]) => void) | null = null;
    link.onReceive = (h) => {
      handler = h;
    };
    const gate = new OutputGate(link, log);
    const received: number[] = [];
    gate.onReceive((ps) => ps.forEach((p) => received.push(p[0]!)));
    gate.setGating(true);
    log.append(rec);
    gate.send([pkt(1)]);
    gate.fence();
    log.flush();
    log.onAck(1);
    gate.send([pkt(2)]);
    gate.setGating(false);
    handler!([pkt(9)]);
    expect(link.sent).toEqual([]);
    expect(received).toEqual([]);
    expect(gate.gateStats.fenced).toBe(1);
  });
});
