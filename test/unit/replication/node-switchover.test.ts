// Planned switchover of ReplicatedNode without root (node-harness.ts): the primary hands an echo
// connection over mid-stream and rejoins as the backup; the roles swap back the same way; and
// what it refuses or gives up on leaves it serving as before.

import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { pacedEcho, startPair, until, type Pair } from './node-harness.js';

const steps = (n: Pair['a'], prefix: string): string[] => n.log.events.map((e) => e.event).filter((e) => e.startsWith(prefix));

describe('ReplicatedNode.switchover', () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('switchover: an echo stream mid-way moves to the backup intact, and the roles swap back once it is done', async () => {
    const pair = await startPair(cleanup);
    const data = randomBytes(1024 * 1024);
    const echo = pacedEcho(pair.client, data, cleanup);
    await until('a third of the echo is back', () => echo.received().length >= data.length / 3);

    const r = await pair.a.rn.switchover(3000);
    expect(r, JSON.stringify(pair.a.log.events.slice(-10))).toMatchObject({ ok: true, epoch: 2, newPrimary: { nodeId: 'b' } });
    if (!r.ok) return;
    expect(r.stallMs).toBeGreaterThan(0);
    expect(r.takeoverMs).not.toBeNull();
    expect(r.stallMs).toBeGreaterThanOrEqual(r.takeoverMs ?? 0);
    expect(pair.holder()).toBe('b');
    // (switchover.higher-epoch may come in between: the new primary's epoch, heard before its reply.)
    expect(steps(pair.a, 'switchover.').filter((e) => e !== 'switchover.higher-epoch')).toEqual(['switchover.hold', 'switchover.drained', 'switchover.vip-released', 'switchover.handover-sent', 'switchover.handed-over', 'switchover.stepped-down', 'switchover.backup']);
    expect(steps(pair.b, 'switchover.')).toEqual(['switchover.handover-received', 'switchover.done']);
    // No failure detection: the takeover started from the handover.
    expect(steps(pair.b, 'takeover.')[0]).toBe('takeover.handover');

    await until('the echo to end', () => echo.ended(), 20_000);
    expect(echo.received().equals(data)).toBe(true);
    await until('a rejoined as the backup of b', () => pair.b.rn.status().protected && pair.a.rn.status().peer.state === 'connected');
    const a = pair.a.rn.status();
    expect(a).toMatchObject({ role: 'backup', epoch: 2, fenced: false, switchover: { outcome: 'handed-over', epoch: 2 } });
    expect(pair.b.rn.status()).toMatchObject({ role: 'primary', epoch: 2, switchover: { outcome: 'took-over', peer: 'a' } });

    // Back again, with a connection opened under b's protection: it moves to a.
    const data2 = randomBytes(512 * 1024);
    const echo2 = pacedEcho(pair.client, data2, cleanup);
    await until('a third of the second echo is back', () => echo2.received().length >= data2.length / 3);
    // The first connection, promoted on b, is not replicated to a (no snapshot): it must be over.
    await until('only the new connection is open on b', () => [...pair.b.stack.host.connections.values()].filter((c) => c.state !== 'TIME-WAIT').length === 1);
    const back = await pair.b.rn.switchover(3000);
    expect(back, JSON.stringify(pair.b.log.events.slice(-10))).toMatchObject({ ok: true, epoch: 3, newPrimary: { nodeId: 'a' } });
    expect(pair.holder()).toBe('a');
    await until('the second echo to end', () => echo2.ended(), 20_000);
    const got2 = echo2.received();
    const diff = got2.findIndex((b, i) => b !== data2[i]);
    expect({ length: got2.length, firstDifference: diff }, JSON.stringify(pair.a.log.events.filter((e) => e.event.startsWith('takeover.') || e.event.includes('divergence')).slice(-12))).toEqual({ length: data2.length, firstDifference: -1 });
    expect(pair.a.rn.status()).toMatchObject({ role: 'primary', epoch: 3 });
  }, 40_000);

  it('switchover back during the gratuitous ARP repeats of a takeover: the node that stepped down sends no more of them', async () => {
    const pair = await startPair(cleanup);
    expect((await pair.a.rn.switchover()).ok).toBe(true);
    await until('a rejoined as the backup of b', () => pair.b.rn.status().protected);
    expect((await pair.b.rn.switchover()).ok).toBe(true);
    const atStepDown = pair.b.garps;
    expect(atStepDown).toBeGreaterThan(0);
    // The repeats would have gone on for 5 x 300 ms after b's takeover.
    await new Promise((r) => setTimeout(r, 1700));
    expect(pair.b.garps).toBe(atStepDown);
    expect(pair.a.garps).toBeGreaterThan(1);
  }, 40_000);

  it('switchover refused by a backup; after a switchover the old primary rejoins, gets the promoted connection by snapshot, and a switchover back keeps it', async () => {
    const pair = await startPair(cleanup);
    expect(await pair.b.rn.switchover()).toEqual({ ok: false, outcome: 'refused', reason: 'this node is the backup; ask the primary' });
    const data = randomBytes(4 * 1024 * 1024);
    const echo = pacedEcho(pair.client, data, cleanup);
    await until('the echo flows', () => echo.received().length > 0);
    expect((await pair.a.rn.switchover()).ok).toBe(true);
    // b serves a promoted connection that a, rejoining with an empty log, brings over by snapshot
    // (reintegration, 5.5): only then is b protected.
    await until('a rejoined as the backup of b', () => pair.b.rn.status().protected);
    expect(pair.b.rn.status().reintegration.snapshots).toBe(1);
    const r = await pair.b.rn.switchover();
    expect(r.ok).toBe(true);
    expect(pair.holder()).toBe('a');
    await until('the echo to end', () => echo.ended(), 30_000);
    expect(echo.received().equals(data)).toBe(true);
  }, 60_000);

  it('switchover aborted: a backup that cannot acknowledge in time leaves the primary serving, output released', async () => {
    const pair = await startPair(cleanup);
    const data = randomBytes(512 * 1024);
    const echo = pacedEcho(pair.client, data, cleanup);
    await until('the echo flows', () => echo.received().length > 0);
    // The backup goes away: the log cannot drain, the primary gives up and serves on.
    await pair.b.rn.close();
    const r = await pair.a.rn.switchover(200);
    expect(r).toMatchObject({ ok: false, outcome: 'aborted' });
    expect(pair.holder()).toBe('a');
    expect(pair.a.rn.status()).toMatchObject({ role: 'primary', epoch: 1, fenced: false, switchover: { outcome: 'aborted' } });
    await until('the echo to end on the old primary', () => echo.ended(), 20_000);
    expect(echo.received().equals(data)).toBe(true);
  }, 40_000);
});
