// The replica socket: fed from the log, its output compared and held back, then attached to the
// promoted connection's socket at takeover.

import { describe, expect, it } from 'vitest';
import type { NewRecord } from '../../../src/replication/log-records.js';
import { ReplicaSocket, ServiceReplica, type AttachedSocket } from '../../../src/replication/service-replica.js';
import { ShadowTable, type Shadow } from '../../../src/replication/shadow.js';
import type { Service, ServiceSocket } from '../../../src/services/service.js';
import { TUPLE } from '../tcp/harness.js';
import { logApplier, OPEN, StackSocketStandIn } from './replica-fixtures.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function shadowWith(records: NewRecord[]): { t: ShadowTable; s: Shadow; apply: (r: NewRecord) => void } {
  const t = new ShadowTable(() => 0);
  const apply = logApplier(t);
  records.forEach(apply);
  return { t, s: t.get(1)!, apply };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * A stack socket whose send buffer is full: a write completes only when `room()` is called (the
 * promoted connection's buffer holds the primary's unacknowledged output at takeover).
 */
function slowStackSocket(): { real: StackSocketStandIn; room: () => void } {
  let pending: (() => void) | null = null;
  const real = new (class extends StackSocketStandIn {
    override _write(chunk: Buffer, e: BufferEncoding, cb: () => void): void {
      pending = () => super._write(chunk, e, cb);
    }
  })();
  return { real, room: () => pending?.() };
}

describe('ReplicaSocket', () => {
  it('after a takeover while behind the primary, sends only what lies beyond the primary output', async () => {
    const { s } = shadowWith([OPEN, { kind: 'output', conn: 1, offset: 0, data: enc('abcdef'), fin: false }]);
    const sock = new ReplicaSocket(s);
    sock.write('abc');
    await tick();
    const real = new StackSocketStandIn();
    sock.attach(real as unknown as AttachedSocket);
    sock.write('defXYZ');
    sock.write('!');
    await tick();
    expect(real.written).toBe('XYZ!');
    expect(sock.matcher.divergence).toBeNull();
  });

  it('hands over what it wrote beyond the primary at takeover, then its end of stream', async () => {
    const { s, apply } = shadowWith([OPEN]);
    const sock = new ReplicaSocket(s);
    sock.end('hello world');
    await tick();
    apply({ kind: 'output', conn: 1, offset: 0, data: enc('hello'), fin: false });
    sock.primaryWrote(false);
    const real = new StackSocketStandIn();
    sock.attach(real as unknown as AttachedSocket);
    await tick();
    expect(real.written).toBe(' world');
    expect(real.ended).toBe(true);
  });

  it('a replica that finished before takeover still hands over its bytes beyond the primary when the stack socket is slow to take them', async () => {
    const { s, apply } = shadowWith([OPEN]);
    const sock = new ReplicaSocket(s);
    sock.feed(new Uint8Array(0), true);
    sock.resume();
    sock.end('hello world');
    apply({ kind: 'output', conn: 1, offset: 0, data: enc('hello'), fin: false });
    sock.primaryWrote(false);
    await tick();
    expect(sock.destroyed).toBe(true);
    // The promoted connection's send buffer is full: the write completes only later.
    const { real, room } = slowStackSocket();
    sock.attach(real as unknown as AttachedSocket);
    await tick();
    expect(real.destroyed).toBe(false);
    room();
    await tick();
    expect(real.written).toBe(' world');
    expect(real.ended).toBe(true);
  });

  // CI (d88e74b) and a local loop: a keep-alive HTTP replica finished its response before the
  // takeover, and its server destroyed the idle socket 6 s later (keepAliveTimeout + 1 s) while
  // its last bytes still waited for room in the promoted connection's send buffer: the client got
  // a FIN 128-896 KiB short of the body.
  for (const when of ['after', 'before'] as const) {
    it(`takeover: a keep-alive replica (written, not ended) destroyed by its service ${when} the takeover still hands over its bytes beyond the primary, then closes`, async () => {
      const { s, apply } = shadowWith([OPEN]);
      const sock = new ReplicaSocket(s);
      sock.write('hello world');
      apply({ kind: 'output', conn: 1, offset: 0, data: enc('hello'), fin: false });
      sock.primaryWrote(false);
      await tick();
      // The HTTP server's keep-alive timeout: destroy(), no error, nothing ended.
      const timeout = async (): Promise<void> => {
        sock.destroy();
        await tick();
      };
      if (when === 'before') await timeout();
      const { real, room } = slowStackSocket();
      sock.attach(real as unknown as AttachedSocket);
      await tick();
      if (when === 'after') await timeout();
      expect(real.destroyed).toBe(false);
      room();
      await tick();
      expect(real.written).toBe(' world');
      expect(real.ended).toBe(true);
    });
  }

  it('holds its writer while it is too far ahead of the primary, and lets it go as the primary catches up', async () => {
    const { s, apply } = shadowWith([OPEN]);
    const sock = new ReplicaSocket(s, { maxAheadBytes: 4 });
    let done = false;
    sock.write('12345678', () => (done = true));
    await tick();
    expect(done).toBe(false);
    apply({ kind: 'output', conn: 1, offset: 0, data: enc('1234'), fin: false });
    sock.primaryWrote(false);
    await tick();
    expect(done).toBe(true);
  });
});

describe('ServiceReplica', () => {
  it('runs the service on a replica socket per open record and feeds it the input in order', async () => {
    const got: string[] = [];
    const service: Service = {
      name: 'collect',
      onConnection(socket: ServiceSocket): void {
        socket.on('data', (d: Buffer) => got.push(d.toString()));
      },
      close: async () => undefined,
    };
    const replica = new ServiceReplica(service);
    const apply = logApplier(new ShadowTable(() => 0, replica));
    apply(OPEN);
    apply({ kind: 'input', conn: 1, offset: 0, data: enc('GET '), rcvNxt: 5005, fin: false });
    apply({ kind: 'input', conn: 1, offset: 4, data: enc('/'), rcvNxt: 5006, fin: false });
    await tick();
    expect(got.join('')).toBe('GET /');
    expect(replica.stats.connections).toBe(1);
    expect(replica.socketOf(1)?.remotePort).toBe(TUPLE.remotePort);
  });
});

describe('a replica reset by its service before takeover', () => {
  /** A service that fails on this node only: it reports why, then resets (as proxy: does when its backend is down). */
  const failing: Service = {
    name: 'failing',
    onConnection(socket: ServiceSocket): void {
      setImmediate(() => {
        if (socket.destroyed) return;
        socket.emit('error', new Error('proxy: cannot connect to backend 127.0.0.1:8081 (ECONNREFUSED)'));
        socket.resetAndDestroy?.();
      });
    },
    close: async () => undefined,
  };

  function replicaWith(service: Service): { replica: ServiceReplica; apply: (r: NewRecord) => void; failed: string[] } {
    const failed: string[] = [];
    const replica = new ServiceReplica(service, { sayFailed: (line) => failed.push(line) });
    const t = new ShadowTable(() => 0, replica);
    return { replica, apply: logApplier(t), failed };
  }

  it('takeover: the promoted connection is reset, not ended with a FIN after the primary bytes', async () => {
    const { s, apply } = shadowWith([OPEN]);
    const sock = new ReplicaSocket(s);
    apply({ kind: 'output', conn: 1, offset: 0, data: enc('HTTP/1.0 200 OK\r\nContent-Length: 1000\r\n\r\npart'), fin: false });
    sock.primaryWrote(false);
    sock.resetAndDestroy();
    await tick();
    const real = new StackSocketStandIn();
    let resets = 0;
    (real as StackSocketStandIn & { resetAndDestroy(): void }).resetAndDestroy = () => {
      resets++;
      real.destroy();
    };
    sock.attach(real as unknown as AttachedSocket);
    await tick();
    expect(resets).toBe(1);
    expect(real.ended).toBe(false);
    expect(real.written).toBe('');
  });

  it('takeover: a replica destroyed without a reset still closes the promoted connection the ordinary way', async () => {
    const { s } = shadowWith([OPEN]);
    const sock = new ReplicaSocket(s);
    sock.destroy();
    await tick();
    const real = new StackSocketStandIn();
    let resets = 0;
    (real as StackSocketStandIn & { resetAndDestroy(): void }).resetAndDestroy = () => void resets++;
    sock.attach(real as unknown as AttachedSocket);
    await tick();
    expect(resets).toBe(0);
    expect(real.ended).toBe(true);
    expect(real.destroyed).toBe(true);
  });

  it('is said once with the service reason and counted, while the primary connection goes on', async () => {
    const { replica, apply, failed } = replicaWith(failing);
    apply(OPEN);
    await tick();
    await tick();
    expect(replica.stats.failed).toBe(1);
    // The primary's output is no longer compared (no divergence) nor kept once acknowledged.
    apply({ kind: 'output', conn: 1, offset: 0, data: enc('0123456789'), fin: false });
    apply({ kind: 'ack', conn: 1, ack: 1011, window: 65535 });
    expect(replica.stats.divergences).toBe(0);
    expect(replica.socketOf(1)?.shadow.output.start).toBe(10);
    expect(failed).toEqual([expect.stringMatching(/^replication: the service's copy of connection 1 \(.+\) was reset on this node \(proxy: cannot connect to backend 127\.0\.0\.1:8081 \(ECONNREFUSED\)\) while the primary's goes on: it is not protected, a takeover resets it$/)]);
  });

  it('is not reported when the primary connection was reset or closed first', async () => {
    const { replica, apply, failed } = replicaWith(failing);
    apply(OPEN);
    apply({ kind: 'reset', conn: 1, reason: 'reset by the client' });
    await tick();
    await tick();
    expect(replica.stats.failed).toBe(0);
    expect(failed).toEqual([]);
  });
});

describe('ReplicaSocket options', () => {
  it('applies the no-delay and keepalive settings the service chose before takeover to the promoted socket', () => {
    const { s } = shadowWith([OPEN]);
    const sock = new ReplicaSocket(s);
    sock.setNoDelay(true);
    sock.setKeepAlive(true, 5000);
    const calls: string[] = [];
    const real = new StackSocketStandIn();
    real.setNoDelay = (v?: boolean) => (calls.push(`noDelay ${v}`), real);
    real.setKeepAlive = (e?: boolean, d?: number) => (calls.push(`keepAlive ${e} ${d}`), real);
    sock.attach(real as unknown as AttachedSocket);
    expect(calls).toEqual(['noDelay true', 'keepAlive true 5000']);
  });
});

describe('ReplicaSocket behind the primary', () => {
  it('abandons the comparison once the primary is too far ahead, so the backup stops keeping its bytes', async () => {
    const { s, apply } = shadowWith([OPEN, { kind: 'ack', conn: 1, ack: 1001, window: 65535 }]);
    const seen: string[] = [];
    const sock = new ReplicaSocket(s, { maxBehindBytes: 8, onDiverge: (d) => seen.push(d.what) });
    apply({ kind: 'output', conn: 1, offset: 0, data: enc('0123456789abcdef'), fin: false });
    apply({ kind: 'ack', conn: 1, ack: 1017, window: 65535 });
    sock.primaryWrote(false);
    expect(seen).toEqual([expect.stringMatching(/fell 16 bytes behind/)]);
    // Acknowledged by the client and no longer wanted for comparison: gone from the shadow.
    expect(s.output.start).toBe(16);
    // The replica's late bytes for that range are dropped; what lies beyond still counts.
    sock.write('0123456789abcdefXY');
    await tick();
    const real = new StackSocketStandIn();
    sock.attach(real as unknown as AttachedSocket);
    await tick();
    expect(real.written).toBe('XY');
  });
});
