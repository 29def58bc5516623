// What a service is: a per-connection handler that knows nothing about the stack underneath. Both
// Node's net.Socket and the stack's Socket satisfy ServiceSocket, so services are tested on kernel
// loopback first and on our stack second.

import type { Duplex } from 'node:stream';

/** The part of net.Socket that services and the CLI rely on. */
export interface SocketLike {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  /** Optional because not every socket counts; logs say "?" when absent. */
  readonly bytesRead?: number;
  readonly bytesWritten?: number;
  setNoDelay(noDelay?: boolean): unknown;
  setKeepAlive(enable?: boolean, initialDelay?: number): unknown;
  /** Destroys with an RST instead of a FIN (net.Socket since Node 18.3, and our stack). */
  resetAndDestroy?(): unknown;
  /**
   * Declares a service boundary (ARCHITECTURE.md 5.5): the service's per-connection state is empty
   * here, so a fresh instance fed the client's bytes from this point writes the same output from
   * this point. Replication uses it to bring a joining backup up to date; absent on net.Socket.
   */
  markBoundary?(): void;
}

export type ServiceSocket = Duplex & SocketLike;

export interface Service {
  readonly name: string;
  /**
   * Its large writes are the same bytes on every node given the same client bytes (file bodies,
   * echoed data), so a backup's replica can vouch for them: replication then logs a digest of each
   * large write instead of its bytes (docs/replication.md, "Output digests"). Small writes, such as
   * HTTP headers carrying a Date, may differ and are logged as bytes anyway.
   */
  readonly deterministic?: boolean;
  onConnection(socket: ServiceSocket): void;
  /**
   * Refuses further connections and resets the open ones; resolves once they are closed. A reset
   * rather than a FIN because the node is going away: a FIN and the data queued before it would
   * need the stack to keep running until the peer acknowledged them, while an RST tells the
   * client at once.
   */
  close(): Promise<void>;
}
