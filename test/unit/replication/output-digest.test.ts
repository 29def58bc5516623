// Output digests (docs/replication.md "Output digests"): for a deterministic service the primary
// logs a large write as its length and a digest (output-digest.ts); the backup applies (and so acknowledges) that record
// only once its replica wrote the same bytes, and a replica that cannot vouch for them costs the
// connection a reset at takeover instead of a stream the client never saw.

import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord } from '../../../src/replication/codec.js';
import type { LogRecord, NewRecord, OutputDigestRecord } from '../../../src/replication/log-records.js';
import { outputDigest, POLY1305_FROM_BYTES } from '../../../src/replication/output-digest.js';
import { SlicedApply } from '../../../src/replication/node/sliced-apply.js';
import { PrimaryTap } from '../../../src/replication/primary-tap.js';
import { ReplicaLog } from '../../../src/replication/replication-log.js';
import { type AttachedSocket, ServiceReplica } from '../../../src/replication/service-replica.js';
import { ShadowTable } from '../../../src/replication/shadow.js';
import type { Service, ServiceSocket } from '../../../src/services/service.js';
import { createPassiveConnection } from '../../../src/stack/tcp/connection.js';
import { bytes, plainConfig, seg, testEnv, TUPLE } from '../tcp/harness.js';
import { OPEN, StackSocketStandIn } from './replica-fixtures.js';
import { SpyLog } from './spy-log.js';


const digestOf = (offset: number, data: Uint8Array, fin = false): NewRecord => ({ kind: 'output-digest', conn: 1, offset, length: data.length, digest: outputDigest([data]), fin });
const NO_DIGEST = new Uint8Array(16);

/** A service that hands each connection's socket to the test, which writes what it likes. */
function handOver(): { service: Service; sockets: ServiceSocket[] } {
  const sockets: ServiceSocket[] = [];
  return { sockets, service: { name: 'test', deterministic: true, onConnection: (s) => void sockets.push(s), close: async () => undefined } };
}

/** The backup's pipeline as the node builds it: shadows, the service replica, the log and its applier. */
function backup() {
  const { service, sockets } = handOver();
  let applier: SlicedApply | null = null;
  const sr = new ServiceReplica(service, { onDigestReady: () => applier?.resume() });
  const shadows = new ShadowTable(() => 0, sr);
  const acks: number[] = [];
  const replica = new ReplicaLog({ apply: (r) => shadows.apply(r), sendAck: (lsn) => acks.push(lsn) });
  const failures: string[] = [];
  applier = new SlicedApply(replica, { sliceMs: 20, schedule: (run) => setImmediate(run), onFailure: (r) => failures.push(r.error) });
  let lsn = 0;
  const push = (...rs: NewRecord[]): void => applier.push(rs.map((r) => ({ ...r, lsn: ++lsn }) as LogRecord));
  return { sr, shadows, acks, replica, applier, push, sockets, failures };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The promoted connection's stack socket, which may be reset (net.Socket's resetAndDestroy). */
class ResettableStandIn extends StackSocketStandIn {
  reset = false;
  resetAndDestroy(): this {
    this.reset = true;
    return this.destroy();
  }
}

describe('output digest records', () => {
  it.each([
    ['a CRC-32', 5000],
    ['a Poly1305', POLY1305_FROM_BYTES],
  ])('codec: an output digest with %s digest round-trips with its length, digest and FIN, and carries no bytes', (_, length) => {
    const digest = outputDigest([bytes(length, 9)]);
    const r: OutputDigestRecord = { kind: 'output-digest', lsn: 7, conn: 3, offset: 2 ** 40, length, digest, fin: true };
    const enc = encodeRecord(r);
    expect(enc.byteLength).toBe(48);
    const buf = Buffer.concat(enc.chunks);
    const decoded = decodeRecord(buf);
    expect(decoded).toEqual(r);
    // The decoded digest is its own copy: the message buffer may be reused while the record waits.
    buf.fill(0);
    expect(decoded).toMatchObject({ digest });
  });

  it('codec: an output digest with a variable part is refused, not decoded', () => {
    const buf = Buffer.concat(encodeRecord({ kind: 'output-digest', lsn: 1, conn: 1, offset: 0, length: 4, digest: NO_DIGEST, fin: false }).chunks);
    const bad = Buffer.concat([buf, Buffer.from([9])]);
    bad.writeUInt32LE(1, 16);
    expect(decodeRecord(bad)).toMatchObject({ error: expect.stringContaining('output-digest') });
  });

  it('codec: an output digest longer than any write the primary makes is refused, not decoded', () => {
    const buf = Buffer.concat(encodeRecord({ kind: 'output-digest', lsn: 1, conn: 1, offset: 0, length: 0xffffffff, digest: NO_DIGEST, fin: false }).chunks);
    expect(decodeRecord(buf)).toMatchObject({ error: expect.stringContaining('limit') });
  });

  it('codec: a CRC-32 digest (below 64 KiB) with non-zero padding is refused, not decoded', () => {
    const buf = Buffer.concat(encodeRecord({ kind: 'output-digest', lsn: 1, conn: 1, offset: 0, length: POLY1305_FROM_BYTES - 1, digest: NO_DIGEST, fin: false }).chunks);
    // Header (20), offset (8), length (4), then the digest: its last byte is padding for a CRC.
    buf[20 + 12 + 15] = 1;
    expect(decodeRecord(buf)).toEqual({ error: expect.stringMatching(/output-digest: CRC-32 digest of 65535 bytes with non-zero padding/) });
    // The same bytes are a valid Poly1305 tag for a write of 64 KiB.
    buf.writeUInt32LE(POLY1305_FROM_BYTES, 20 + 8);
    expect(decodeRecord(buf)).toMatchObject({ kind: 'output-digest', length: POLY1305_FROM_BYTES });
  });

  it('codec: an output digest in the old layout (a 4-byte CRC-32, 16 fixed bytes) is refused, not decoded', () => {
    const enc = Buffer.concat(encodeRecord({ kind: 'output-digest', lsn: 1, conn: 1, offset: 0, length: 4096, digest: NO_DIGEST, fin: false }).chunks);
    const old = Buffer.concat([enc.subarray(0, 20 + 16)]);
    old.writeUInt16LE(16, 2);
    expect(decodeRecord(old)).toEqual({ error: expect.stringMatching(/output-digest: fixed part of 16 bytes, expected 28/) });
  });

  it('codec: encoding a digest that is not 16 bytes is a programming error', () => {
    expect(() => encodeRecord({ kind: 'output-digest', lsn: 1, conn: 1, offset: 0, length: 4096, digest: new Uint8Array(4), fin: false })).toThrow(/16/);
  });

  it('primary: a deterministic service write of 4 KiB or more is logged as a digest, smaller ones as bytes', () => {
    const log = new SpyLog();
    let now = 0;
    const tap = new PrimaryTap({ log, clock: () => (now += 1000) });
    tap.protect();
    tap.setOutputDigests(true);
    const c = createPassiveConnection(0, TUPLE, seg('S', 5000, 0), plainConfig(), tap.wrapEnv(testEnv()), 1000);
    c.onSegment(1000, seg('.', 5001, 1001));
    const head = bytes(300, 1);
    const body = bytes(8192, 2);
    expect(c.write(2000, head)).toBe(300);
    expect(c.write(3000, body)).toBe(8192);
    const outs = log.records.filter((r) => r.kind === 'output' || r.kind === 'output-digest');
    expect(outs).toEqual([
      expect.objectContaining({ kind: 'output', offset: 0, data: head }),
      expect.objectContaining({ kind: 'output-digest', offset: 300, length: 8192, digest: outputDigest([body]), fin: false }),
    ]);
  });
});

describe('backup: output digests wait for the service replica', () => {
  it('established: a digest blocks the log until the replica wrote its bytes; then it is applied, acknowledged and resent from the replica', async () => {
    const b = backup();
    const body = bytes(10_000, 3);
    b.push(OPEN, digestOf(0, body), { kind: 'boundary', conn: 1, inputOffset: 0 });
    expect(b.applier.isBlocked).toBe(true);
    expect(b.replica.lastApplied).toBe(1);
    expect(b.acks.at(-1)).toBe(1);
    // The replica writes in two pieces; only once both are there does the log go on.
    b.sockets[0]!.write(body.subarray(0, 4000));
    await tick();
    await tick();
    expect(b.replica.lastApplied).toBe(1);
    b.sockets[0]!.write(body.subarray(4000));
    await tick();
    await tick();
    expect(b.applier.isBlocked).toBe(false);
    expect(b.replica.lastApplied).toBe(3);
    expect(b.acks.at(-1)).toBe(3);
    const s = b.shadows.get(1)!;
    expect(Buffer.from(s.output.slice(0, 10_000)).equals(Buffer.from(body))).toBe(true);
    expect(b.sr.stats.divergences).toBe(0);
    expect(b.sr.socketOf(1)!.lostSyncReason).toBeNull();
  });

  it('established: a replica that wrote its bytes first lets the digest apply at once', async () => {
    const b = backup();
    b.push(OPEN);
    const body = bytes(5000, 4);
    b.sockets[0]!.write(body);
    await tick();
    b.push(digestOf(0, body));
    expect(b.applier.isBlocked).toBe(false);
    expect(b.replica.lastApplied).toBe(2);
  });

  it.each([
    ['CRC-32', 5000],
    ['Poly1305', 200_000],
  ])('established: replica bytes whose digest (%s) differs are a divergence, the log goes on, and a takeover resets the connection', async (_, length) => {
    const b = backup();
    const body = bytes(length, 5);
    b.push(OPEN, digestOf(0, body));
    const other = Uint8Array.from(body);
    other[1234] ^= 1;
    // In three writes: the backup digests its replica's bytes as several views.
    const third = Math.floor(length / 3);
    for (const [from, to] of [[0, third], [third, 2 * third], [2 * third, length]] as const) b.sockets[0]!.write(other.subarray(from, to));
    for (let i = 0; i < 10 && b.replica.lastApplied < 2; i++) await tick();
    expect(b.replica.lastApplied).toBe(2);
    expect(b.sr.stats.divergences).toBe(1);
    const sock = b.sr.socketOf(1)!;
    expect(sock.lostSyncReason).toMatch(/differs from the primary's \(digest of/);
    const real = new ResettableStandIn();
    sock.attach(real as unknown as AttachedSocket);
    expect(real.reset).toBe(true);
  });

  it('established: a replica that ends before the digested bytes unblocks the log and leaves the connection to be reset', async () => {
    const b = backup();
    b.push(OPEN, digestOf(0, bytes(5000, 6)));
    expect(b.applier.isBlocked).toBe(true);
    b.sockets[0]!.end(bytes(100, 6));
    await tick();
    await tick();
    expect(b.replica.lastApplied).toBe(2);
    expect(b.sr.socketOf(1)!.lostSyncReason).toMatch(/ended first/);
    expect(b.shadows.get(1)!.output.end).toBe(5000);
  });

  it('fin-wait: a FIN-only digest applies without the replica (it carries no bytes)', () => {
    const b = backup();
    b.push(OPEN, { kind: 'output-digest', conn: 1, offset: 0, length: 0, digest: NO_DIGEST, fin: true });
    expect(b.applier.isBlocked).toBe(false);
    expect(b.shadows.get(1)!.ourFin).toBe(true);
  });

  it('a replica writer paused far ahead is let go when a large digest waits for more of its bytes', async () => {
    const b = backup();
    b.push(OPEN);
    const sock = b.sockets[0]!;
    // 1 MiB ahead of the primary pauses the writer (maxAheadBytes): a 2 MiB write waits...
    const big = bytes(2 * 1024 * 1024, 7);
    let done = false;
    sock.write(big.subarray(0, 1536 * 1024));
    sock.write(big.subarray(1536 * 1024), () => (done = true));
    await tick();
    await tick();
    expect(done).toBe(false);
    // ...until a digest that needs all of it is waiting: then the writer goes on and the log too.
    b.push(digestOf(0, big));
    for (let i = 0; i < 10 && !(done && b.replica.lastApplied === 2); i++) await tick();
    expect(done).toBe(true);
    expect(b.replica.lastApplied).toBe(2);
    expect(b.sr.stats.divergences).toBe(0);
  });

  it('takeover: flush applies up to a blocked digest and leaves it and what follows unapplied', () => {
    const b = backup();
    b.push(OPEN, digestOf(0, bytes(5000, 8)), { kind: 'boundary', conn: 1, inputOffset: 0 });
    b.applier.flush();
    expect(b.replica.lastApplied).toBe(1);
    expect(b.applier.queued).toBe(2);
    expect(b.failures).toEqual([]);
  });
});
