// ReplicatedNode without root: a client stack, a primary and a backup, each on an in-memory link
// through a tiny "switch" that sends the client's packets to whichever node holds the VIP (the
// backup's addRoute moves it). The replication channel is real TCP on loopback. The primary is
// "killed" by closing its channel and cutting its link, mid-stream: the echo on the client's
// connection must come back complete and in order through the backup.

import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { HoldLink } from '../../../src/replication/node/hold-link.js';
import type { Link } from '../../../src/tun/link.js';
import { pacedEcho, startPair, until, VIP } from './node-harness.js';

describe('ReplicatedNode', () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('HoldLink keeps packets in order while holding and sends them on release', () => {
    const sent: number[] = [];
    const inner: Link = {
      mtu: 1500,
      stats: { rxPackets: 0, rxBytes: 0, rxBatches: 0, rxDropped: 0, txPackets: 0, txBytes: 0, txDropped: 0 },
      send: (ps) => void sent.push(...ps.map((p) => p[0]!)),
      onReceive: () => undefined,
      close: () => undefined,
    };
    const h = new HoldLink(inner);
    h.send([Uint8Array.of(1)]);
    h.hold();
    h.send([Uint8Array.of(2), Uint8Array.of(3)]);
    h.send([Uint8Array.of(4)]);
    expect(sent).toEqual([1]);
    expect(h.release()).toBe(3);
    h.send([Uint8Array.of(5)]);
    expect(sent).toEqual([1, 2, 3, 4, 5]);
  });

  it('a takeover of 600 connections in slices, the clients writing all along: every echo exact, no connection reset', async () => {
    const pair = await startPair(cleanup);
    const n = 600;
    const conns = Array.from({ length: n }, () => {
      const sock = pair.client.connect({ host: VIP, port: 7 });
      // No Nagle: a write goes out while the one before is unacknowledged (the primary is gone).
      sock.setNoDelay(true);
      const c = { sock, sent: [] as Buffer[], got: [] as Buffer[], error: null as string | null };
      sock.on('data', (d: Buffer) => void c.got.push(Buffer.from(d)));
      sock.on('error', (e: NodeJS.ErrnoException) => (c.error = e.code ?? e.message));
      return c;
    });
    const write = (i: number): void => {
      const c = conns[i]!;
      const d = randomBytes(16);
      c.sent.push(d);
      c.sock.write(d);
    };
    const echoed = (): boolean => conns.every((c) => Buffer.concat(c.got).length === c.sent.reduce((k, d) => k + d.length, 0));
    for (let i = 0; i < n; i++) write(i);
    await until('every first echo back', echoed, 20_000);
    // From here on 60 connections write every 10 ms, rotating: some segments reach the backup
    // while it is still promoting, for connections promoted and not yet promoted alike.
    let next = 0;
    const chatter = setInterval(() => {
      for (let k = 0; k < 60; k++, next = (next + 1) % n) write(next);
    }, 10);
    cleanup.push(() => clearInterval(chatter));
    // And every connection writes the moment the backup has chosen its epoch, just before it
    // promotes: those segments arrive while the promotion runs.
    const info = pair.b.log.info;
    pair.b.log.info = (event, fields) => {
      if (event === 'takeover.epoch') for (let i = 0; i < n; i++) write(i);
      info(event, fields);
    };
    pair.cut('a');
    await pair.a.rn.close();
    await until('the backup took over', () => pair.b.rn.status().role === 'primary', 20_000);
    await until('two more rounds of writes', () => next >= 0 && conns.every((c) => c.sent.length >= 3), 20_000);
    clearInterval(chatter);
    await until('every echo back', echoed, 20_000).catch((e: Error) => {
      const short = conns.filter((c) => !c.error).findIndex((c) => Buffer.concat(c.got).length !== Buffer.concat(c.sent).length);
      throw new Error(`${e.message}: connection ${short} short; errors ${conns.filter((c) => c.error).length}`);
    });
    expect(conns.filter((c) => c.error !== null).map((c) => c.error)).toEqual([]);
    for (const c of conns) expect(Buffer.concat(c.got).equals(Buffer.concat(c.sent))).toBe(true);
    const promoted = pair.b.log.events.find((e) => e.event === 'takeover.promoted')?.fields;
    expect(promoted?.connections).toBe(n);
    expect(promoted?.inputDropped).toBe(0);
    // The writes at the epoch reach the backup two turns later (two in-memory hops): from a
    // third slice on, some were for connections not yet promoted and had to wait.
    if (Number(promoted?.slices) >= 3) expect(promoted?.heldInput, JSON.stringify(promoted)).toBeGreaterThan(0);
  }, 60_000);

  it('a backup takes over an echo connection mid-stream: every byte back once, in order', async () => {
    const pair = await startPair(cleanup);
    const data = randomBytes(2 * 1024 * 1024);
    const echo = pacedEcho(pair.client, data, cleanup);
    await until('a third of the echo is back', () => echo.received().length >= data.length / 3);
    // "SIGKILL": the primary's packets stop and its channel goes silent (closed, not a goodbye the
    // backup could act on: only the dead-after silence makes it take over).
    pair.cut('a');
    await pair.a.rn.close();

    await until('the echo to end', () => echo.ended(), 20_000).catch((e: Error) => {
      const events = pair.b.log.events.map((x) => `${x.event} ${JSON.stringify(x.fields)}`).join('\n');
      throw new Error(`${e.message}: ${echo.received().length} of ${data.length} bytes back, client socket ${echo.state()}\nbackup status ${JSON.stringify(pair.b.rn.status())}\n${events}`);
    });
    const all = echo.received();
    // The tail matters most: the client's FIN reaches the backup before its service has echoed
    // the last bytes, which must still go out ahead of our FIN.
    expect(all.length).toBe(data.length);
    expect(all.equals(data)).toBe(true);
    expect(pair.holder()).toBe('b');
    const steps = pair.b.log.events.map((e) => e.event).filter((e) => e.startsWith('takeover.'));
    expect(steps[0]).toBe('takeover.detected');
    // The per-connection line (debug) is written after the output left, not before it.
    expect(steps.filter((e) => e !== 'takeover.connection').at(-1)).toBe('takeover.done');
    expect(steps).toContain('takeover.retransmit');
    expect(steps.indexOf('takeover.connection')).toBeGreaterThan(steps.indexOf('takeover.retransmit'));
    const st = pair.b.rn.status();
    expect(st.role).toBe('primary');
    expect(st.epoch).toBe(2);
    expect(st.takeover?.promoted).toBe(1);
  }, 30_000);
});
