// The service on the backup (ARCHITECTURE.md 5.5): per shadow connection a ReplicaSocket, shaped
// like net.Socket, on which the backup's own Service instance runs. It is fed the primary's input
// records in log order; what it writes is held back and matched against the primary's output
// (OutputMatcher). At takeover the socket is attached to the stack socket of the promoted
// connection: bytes the replica wrote beyond the primary's log go out, and from then on it is a
// plain pass-through in both directions.

import { Duplex } from 'node:stream';
import type { Service, SocketLike } from '../services/service.js';
import { ServiceOffsets } from '../stack/service-offsets.js';
import { ipv4ToString } from '../stack/wire/types.js';
import type { ConnId, OutputDigestRecord, StreamBoundary } from './log-records.js';
import { type Divergence, OutputMatcher } from './output-matcher.js';
import { RetainedInput, type RetentionBudget, retentionBudget } from './retained-input.js';
import type { Shadow, ShadowListener } from './shadow.js';

/** The stack socket a replica attaches to at takeover: the net.Socket surface it forwards to. */
export type AttachedSocket = Duplex & SocketLike & {
  setTimeout(ms: number, cb?: () => void): unknown;
  /** A service boundary at these stream offsets (the stack socket's own counts start at takeover). */
  markBoundaryAt?(inputOffset: number, outputOffset: number): void;
};

type WriteCallback = (err?: Error | null) => void;

/** Writes below this size are copied when kept (the stack's send buffer draws the line there too). */
const COPY_FROM = 2048;

export interface ReplicaSocketOptions {
  /** Replica output held beyond the primary's log before its writer is paused. Default 1 MiB. */
  maxAheadBytes?: number;
  /**
   * Primary output kept for a replica that has not written it yet; beyond this the comparison is
   * abandoned, so a stalled replica cannot make the backup hold a whole download. Default 16 MiB.
   */
  maxBehindBytes?: number;
  /** As the primary's server sockets: false ends our side once the client's FIN was read (net's default). */
  allowHalfOpen?: boolean;
  onDiverge?: (d: Divergence) => void;
  /**
   * Where the service starts in both streams: a snapshot's boundary (reintegration). Its output
   * below the client's acknowledged offset is regenerated and dropped. Default (0, 0).
   */
  from?: StreamBoundary;
  /** Bounds on the client bytes kept since the service's last boundary, for a later takeover. */
  retention?: RetentionBudget;
  /** An output digest this socket could not check yet may be tried again (the replica wrote, or ended). */
  onDigestReady?: () => void;
  /** The replica lost sync with an output digest (once): the connection is no longer protected. */
  onLostSync?: (why: string) => void;
}

export class ReplicaSocket extends Duplex implements SocketLike {
  readonly remoteFamily = 'IPv4';
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  bytesRead = 0;
  bytesWritten = 0;
  readonly matcher: OutputMatcher;
  private readonly maxAhead: number;
  private readonly maxBehind: number;
  private attached: AttachedSocket | null = null;
  /** A write waiting for the primary's output to catch up (before takeover). */
  private heldWrite: WriteCallback | null = null;
  private inputEnded = false;
  private idleMs = 0;
  /** Attached and level with the primary's log: writes go straight to the stack socket. */
  private passThrough = false;
  /** Socket options the service set before takeover, for the promoted connection (the primary's had them). */
  private noDelay: boolean | null = null;
  private keepAlive: [boolean, number] | null = null;
  /**
   * The service reset this connection before takeover (a proxy whose backend failed, a handler
   * that threw): the promoted connection must be reset too, never ended with a FIN after the
   * primary's bytes, which would pass a cut reply off as complete.
   */
  private resetBeforeAttach = false;
  /**
   * Why the client may hold output this replica cannot reproduce (its bytes differed from an output
   * digest, or it ended or failed before writing them): a takeover resets the connection.
   */
  private lostSync: string | null = null;
  /** The stream offset an output digest waits for the replica to reach; null when none waits. */
  private digestWaitsFor: number | null = null;
  private readonly onDigestReady: () => void;
  private readonly onLostSync: (why: string) => void;
  private readonly offsets: ServiceOffsets;
  /** Client bytes since the service's last boundary: the promoted connection's, after takeover. */
  private readonly retained: RetainedInput;

  constructor(
    readonly shadow: Shadow,
    opts: ReplicaSocketOptions = {},
  ) {
    super({ allowHalfOpen: opts.allowHalfOpen ?? false, emitClose: true, autoDestroy: true });
    const t = shadow.tuple;
    this.remoteAddress = ipv4ToString(t.remoteAddr);
    this.remotePort = t.remotePort;
    this.localAddress = ipv4ToString(t.localAddr);
    this.localPort = t.localPort;
    this.maxAhead = opts.maxAheadBytes ?? 1024 * 1024;
    this.maxBehind = opts.maxBehindBytes ?? 16 * 1024 * 1024;
    const from = opts.from ?? { input: 0, output: 0 };
    this.matcher = new OutputMatcher(shadow.output, (d) => opts.onDiverge?.(d), from.output);
    this.offsets = new ServiceOffsets(from.input, from.output);
    this.retained = new RetainedInput(opts.retention ?? retentionBudget(), from.input, from);
    this.onDigestReady = opts.onDigestReady ?? (() => undefined);
    this.onLostSync = opts.onLostSync ?? (() => undefined);
  }

  /**
   * The service's boundary (5.5). Before takeover it only bounds the retained input; after, the
   * promoted connection's tap takes it, in stream offsets (the stack socket counts from takeover).
   */
  markBoundary(): void {
    const b = { input: this.offsets.consumed(this), output: this.offsets.written(this) };
    this.retained.boundaryAt(b);
    this.attached?.markBoundaryAt?.(b.input, b.output);
  }

  /** The client bytes from the service's last boundary, or null when they were not all kept. */
  sinceBoundary(): { boundary: StreamBoundary; data: Uint8Array } | null {
    return this.retained.complete ? { boundary: { ...this.retained.boundary }, data: this.retained.sinceBoundary() } : null;
  }

  get isAttached(): boolean {
    return this.attached !== null;
  }

  // ---- fed from the log (before takeover) ----

  /** Client bytes of an input record, in log order. */
  feed(data: Uint8Array, fin: boolean): void {
    if (this.inputEnded || this.destroyed) return;
    if (data.length > 0) {
      this.bytesRead += data.length;
      this.offsets.pushed += data.length;
      // The record's bytes are a view into the channel's receive chunk: copy what the stream keeps.
      const copy = Buffer.from(data);
      this.retained.append(copy);
      this.push(copy);
    }
    if (fin) {
      this.inputEnded = true;
      this.push(null);
    }
  }

  /** The primary logged output: compare, and let a writer held for it go on. */
  primaryWrote(fin: boolean): void {
    if (this.resetBeforeAttach) {
      // Nothing left to compare with: keep only what the client has not acknowledged.
      this.shadow.keepFrom = this.shadow.output.end;
      this.shadow.trim();
      return;
    }
    this.matcher.primaryWrote(fin);
    const behind = this.shadow.output.end - this.matcher.compared;
    if (behind > this.maxBehind) this.matcher.abandon(`the replica fell ${behind} bytes behind the primary; its output is no longer compared`);
    this.shadow.keepFrom = this.matcher.compared;
    this.shadow.trim();
    this.releaseIfRoom();
  }

  /**
   * The bytes of an output digest (docs/replication.md, "Output digests"), from what this replica
   * wrote and checked against the digest; null while it has not written that far (the log waits and
   * onDigestReady says when to try again). A replica that cannot vouch for them (different
   * bytes, ended or failed before them) gets stand-ins and is marked: a takeover resets it.
   */
  verifyDigest(r: OutputDigestRecord): Uint8Array[] | null {
    const cannot = this.cannotWrite();
    const end = r.offset + r.length;
    let v = cannot === null ? this.matcher.verifyDigest(r.offset, r.length, r.digest) : null;
    if (cannot === null && v === null) {
      this.digestWaitsFor = end;
      // A writer paused for being far ahead of the primary must go on: the log waits for it. Its
      // next writes may run right here, inside the release, and bring the bytes.
      this.releaseIfRoom();
      v = this.matcher.verifyDigest(r.offset, r.length, r.digest);
      if (v === null) return null;
    }
    this.digestWaitsFor = null;
    if (v === null) {
      this.loseSync(`its replica could not write the output the primary logged at offset ${r.offset} (${cannot})`);
      return [new Uint8Array(r.length)];
    }
    if (!v.equal) this.loseSync(`its replica's output at offset ${r.offset} differs from the primary's (digest of ${r.length} bytes)`);
    return v.bytes;
  }

  private loseSync(why: string): void {
    if (this.lostSync !== null) return;
    this.lostSync = why;
    this.onLostSync(why);
  }

  /** Why a takeover must reset this connection (its replica lost sync with an output digest), or null. */
  get lostSyncReason(): string | null {
    return this.lostSync;
  }

  /** Why this replica will write no more (so a waiting digest can never be matched), or null. */
  private cannotWrite(): string | null {
    if (this.resetBeforeAttach) return 'its service reset it';
    return this.destroyed || this.matcher.replicaEnded ? 'it ended first' : null;
  }

  private digestMayProceed(): void {
    const w = this.digestWaitsFor;
    if (w === null) return;
    if (this.matcher.written >= w || this.cannotWrite() !== null) {
      this.digestWaitsFor = null;
      this.onDigestReady();
    }
  }

  // ---- takeover ----

  /**
   * The promoted connection's stack socket takes over: replica output beyond the primary's log is
   * sent, its end of stream follows if the primary had not logged one, then bytes flow through.
   */
  attach(real: AttachedSocket): void {
    if (this.attached !== null) throw new Error('replica socket already attached');
    this.attached = real;
    if (this.resetBeforeAttach || this.lostSync !== null) {
      if (typeof real.resetAndDestroy === 'function') real.resetAndDestroy();
      else real.destroy();
      return;
    }
    const ahead = this.matcher.takeAhead();
    this.passThrough = this.matcher.caughtUp;
    const primaryFin = this.shadow.ourFin;
    if (ahead.length > 0 && !primaryFin) real.write(ahead);
    if (this.matcher.replicaEnded && !primaryFin) real.end();
    const held = this.heldWrite;
    this.heldWrite = null;
    held?.();
    // The promoted connection's tap keeps the client's bytes from here on.
    this.retained.release();
    real.on('data', (d: Buffer) => {
      this.bytesRead += d.length;
      this.offsets.pushed += d.length;
      if (!this.push(d)) real.pause();
    });
    real.on('end', () => {
      if (!this.inputEnded) {
        this.inputEnded = true;
        this.push(null);
      }
    });
    real.on('timeout', () => this.emit('timeout'));
    real.on('error', (e: Error) => this.destroy(e));
    real.on('close', () => {
      if (!this.destroyed) this.destroy();
    });
    if (this.idleMs > 0) real.setTimeout(this.idleMs);
    if (this.noDelay !== null) real.setNoDelay(this.noDelay);
    if (this.keepAlive !== null) real.setKeepAlive(...this.keepAlive);
    // A replica its service destroyed before takeover (an HTTP server ends, then destroys; or
    // times out an idle keep-alive socket) has had its output beyond the primary passed on above.
    if (this.destroyed) this.closeReal(real, this.errored === null);
  }

  /**
   * Closes the stack socket under a replica the service destroyed. Unless it was destroyed with
   * an error, bytes it wrote may still wait in the stack socket's writable buffer for room in the
   * send buffer (the replica's output beyond the primary's log, written at attach): they must
   * reach the send buffer before the close, or the client gets a FIN in mid-body. That is the
   * replica's side of what a kernel does with a socket closed while its send buffer is full. It
   * happens: an HTTP server times out a keep-alive socket 6 s after its response ended
   * (keepAliveTimeout + 1 s), and a replica that finished its response before the takeover, ahead
   * of a slow client, has that long to drain (CI d88e74b: a download 128 KiB short). Otherwise at
   * once.
   */
  private closeReal(real: AttachedSocket, graceful: boolean): void {
    if (real.destroyed) return;
    if (graceful && !real.writableFinished) {
      real.end();
      real.once('finish', () => real.destroy());
    } else real.destroy();
  }

  // ---- the Duplex ----

  override _read(): void {
    this.attached?.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, writerCb: WriteCallback): void {
    const cb = this.offsets.writing(chunk.length, writerCb);
    this.bytesWritten += chunk.length;
    const real = this.attached;
    if (real !== null && this.passThrough) {
      if (this.shadow.ourFin) cb();
      else real.write(chunk, cb);
      return;
    }
    // Kept to compare and to resend, by reference like the stack's send buffer keeps a write: a
    // large chunk is the writer's to give away (file reads, echoed reads), a small one may live in
    // a buffer the writer reuses once the callback ran, so it is copied. Output the client
    // acknowledged long ago is dropped unseen.
    this.matcher.replicaWrote(this.matcher.skipping >= chunk.length || chunk.length >= COPY_FROM ? chunk : new Uint8Array(chunk));
    this.shadow.keepFrom = this.matcher.compared;
    this.shadow.trim();
    if (real !== null) {
      // Taken over while this replica lagged the primary: what the primary already sent (it is in
      // the promoted send buffer) is only compared; what lies beyond goes out.
      const ahead = this.matcher.takeAhead();
      this.passThrough = this.matcher.caughtUp;
      if (ahead.length === 0 || this.shadow.ourFin) cb();
      else real.write(ahead, cb);
      return;
    }
    if (this.matcher.aheadBytes <= this.maxAhead || this.digestWaitsFor !== null) cb();
    else this.heldWrite = cb;
    this.digestMayProceed();
  }

  override _final(cb: WriteCallback): void {
    this.matcher.replicaFinished();
    const real = this.attached;
    if (real !== null && !this.shadow.ourFin) real.end();
    cb();
    this.digestMayProceed();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.retained.release();
    const held = this.heldWrite;
    this.heldWrite = null;
    held?.(err ?? new Error('replica socket destroyed'));
    const real = this.attached;
    if (real !== null) this.closeReal(real, err === null);
    cb(err);
    this.digestMayProceed();
  }

  private releaseIfRoom(): void {
    if (this.heldWrite !== null && (this.matcher.aheadBytes <= this.maxAhead || this.digestWaitsFor !== null)) {
      const cb = this.heldWrite;
      this.heldWrite = null;
      cb();
    }
  }

  // ---- the rest of net.Socket's surface ----

  resetAndDestroy(): this {
    const real = this.attached;
    if (real === null) this.resetBeforeAttach = true;
    else if (typeof real.resetAndDestroy === 'function') {
      this.attached = null;
      real.resetAndDestroy();
    }
    return this.destroy();
  }

  /** Reset by its service before takeover: the promoted connection will be reset. */
  get wasReset(): boolean {
    return this.resetBeforeAttach;
  }

  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  setNoDelay(noDelay = true): this {
    this.noDelay = noDelay;
    this.attached?.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    this.keepAlive = [enable, initialDelay];
    this.attached?.setKeepAlive(enable, initialDelay);
    return this;
  }

  /**
   * Idle timeouts are the primary's to act on (its service closes, the log says so); the replica
   * arms its own only once attached, or it would close connections the primary keeps.
   */
  setTimeout(ms: number, cb?: () => void): this {
    this.idleMs = ms;
    if (cb) {
      if (ms === 0) this.removeListener('timeout', cb);
      else this.once('timeout', cb);
    }
    this.attached?.setTimeout(ms);
    return this;
  }

  get timeout(): number | undefined {
    return this.idleMs > 0 ? this.idleMs : undefined;
  }

  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress, family: 'IPv4', port: this.localPort };
  }

  get connecting(): boolean {
    return false;
  }

  get pending(): boolean {
    return false;
  }

  get readyState(): string {
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  /** Like net: 'close' carries whether the socket was closed because of an error. */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'close' && args.length === 0) return super.emit('close', this.errored !== null);
    return super.emit(event, ...args);
  }
}

export interface ServiceReplicaStats {
  connections: number;
  /** Connections that started from a snapshot (reintegration). */
  snapshots: number;
  /** Output bytes those replicas regenerate and drop before comparing (acknowledged on the primary). */
  regenerating: number;
  /** Connections whose replica output differed from the primary's. */
  divergences: number;
  differingBytes: number;
  /**
   * Connections whose replica was reset by its service while the primary's went on, or could not
   * vouch for an output digest: unprotected, a takeover resets them.
   */
  failed: number;
}

/**
 * Runs the backup's service over the shadow connections: a ShadowListener that opens a replica
 * socket per `open` record and feeds it the log.
 */
export class ServiceReplica implements ShadowListener {
  readonly stats: ServiceReplicaStats = { connections: 0, snapshots: 0, regenerating: 0, divergences: 0, differingBytes: 0, failed: 0 };
  private readonly sockets = new Map<ConnId, ReplicaSocket>();
  private readonly retention = retentionBudget();

  constructor(
    private readonly service: Service,
    private readonly opts: {
      maxAheadBytes?: number;
      allowHalfOpen?: boolean;
      /** An output digest that waited for its replica may be tried again (resume the log). */
      onDigestReady?: () => void;
      /** A divergence, in one line. */
      say?: (line: string) => void;
      /** A replica reset by its service before the primary's connection ended, in one line. */
      sayFailed?: (line: string) => void;
    } = {},
  ) {}

  socketOf(id: ConnId): ReplicaSocket | undefined {
    return this.sockets.get(id);
  }

  /** Hands the replica sockets over at takeover: they now belong to the promoted connections. */
  release(id: ConnId): ReplicaSocket | undefined {
    const s = this.sockets.get(id);
    this.sockets.delete(id);
    return s;
  }

  onOpen(s: Shadow): void {
    this.start(s, { input: 0, output: 0 }, null);
  }

  /** Reintegration: the service starts at the connection's last boundary, fed the bytes since. */
  onSnapshot(s: Shadow, boundary: StreamBoundary, input: Uint8Array): void {
    const sock = this.start(s, boundary, input);
    this.stats.snapshots++;
    this.stats.regenerating += sock.matcher.skipping;
  }

  private start(s: Shadow, from: StreamBoundary, input: Uint8Array | null): ReplicaSocket {
    const sock = new ReplicaSocket(s, {
      from,
      retention: this.retention,
      maxAheadBytes: this.opts.maxAheadBytes,
      allowHalfOpen: this.opts.allowHalfOpen,
      onDigestReady: this.opts.onDigestReady,
      onLostSync: (why) => {
        this.stats.failed++;
        this.opts.sayFailed?.(`replication: connection ${s.id} (${sock.remoteAddress}:${sock.remotePort}) is not protected: ${why}; a takeover resets it`);
      },
      onDiverge: (d) => {
        this.stats.divergences++;
        this.stats.differingBytes += sock.matcher.differingBytes;
        this.opts.say?.(`replication: divergence on connection ${s.id} (${sock.remoteAddress}:${sock.remotePort}): ${d.what}`);
      },
    });
    this.sockets.set(s.id, sock);
    this.stats.connections++;
    this.watchFailure(s, sock);
    this.service.onConnection(sock);
    if (input !== null && input.length > 0) sock.feed(input, false);
    // A client FIN the primary had already taken ends the replayed input too.
    if (input !== null && s.peerFin) sock.feed(new Uint8Array(0), true);
    return sock;
  }

  /**
   * A replica its service resets while the primary's connection lives on (the backup's backend is
   * down, the handler threw on this host only) leaves that connection unprotected: said once, with
   * the service's reason, and counted; a takeover resets the connection.
   */
  private watchFailure(s: Shadow, sock: ReplicaSocket): void {
    let why = '';
    const onError = (e: Error): void => {
      if (why === '') why = e.message;
    };
    sock.on('error', onError);
    sock.once('close', () => {
      sock.removeListener('error', onError);
      if (!sock.wasReset || this.sockets.get(s.id) !== sock) return;
      this.stats.failed++;
      this.opts.sayFailed?.(
        `replication: the service's copy of connection ${s.id} (${sock.remoteAddress}:${sock.remotePort}) was reset on this node` +
          `${why === '' ? '' : ` (${why})`} while the primary's goes on: it is not protected, a takeover resets it`,
      );
    });
  }

  onInput(s: Shadow, data: Uint8Array, fin: boolean): void {
    this.sockets.get(s.id)?.feed(data, fin);
  }

  onOutputDigest(s: Shadow, r: OutputDigestRecord): readonly Uint8Array[] | null {
    const sock = this.sockets.get(s.id);
    // No replica (it was never started, or already handed over): nothing can vouch for the bytes.
    if (sock === undefined) return [new Uint8Array(r.length)];
    return sock.verifyDigest(r);
  }

  onOutput(s: Shadow, _offset: number, _data: Uint8Array, fin: boolean): void {
    this.sockets.get(s.id)?.primaryWrote(fin);
  }

  onGone(s: Shadow, how: 'close' | 'reset'): void {
    const sock = this.sockets.get(s.id);
    this.sockets.delete(s.id);
    if (sock === undefined) return;
    // The primary's connection is over; the replica's service hears of it as a reset or a close.
    if (how === 'reset') sock.destroy(Object.assign(new Error('connection reset on the primary'), { code: 'ECONNRESET' }));
    else sock.destroy();
  }
}
