// The open connections of one service, so that close() can tear them down and wait for them.

import type { ServiceSocket } from './service.js';

/** How long close() waits for sockets to report 'close' after destroy(), so shutdown never hangs. */
const CLOSE_WAIT_MS = 2000;

export class ConnectionSet {
  private readonly open = new Set<ServiceSocket>();
  private closing = false;

  get size(): number {
    return this.open.size;
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /**
   * Tracks the socket until it closes. Returns false (and destroys the socket) once the set is
   * closing, so a connection racing with shutdown is not served.
   */
  add(socket: ServiceSocket): boolean {
    if (this.closing) {
      socket.destroy();
      return false;
    }
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    // A stream 'error' with no listener throws; the CLI logs errors through its own listener.
    socket.on('error', () => {});
    return true;
  }

  async closeAll(): Promise<void> {
    this.closing = true;
    const pending = [...this.open].map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.destroyed && s.closed) return resolve();
          const timer = setTimeout(resolve, CLOSE_WAIT_MS);
          timer.unref();
          s.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
          else s.destroy();
        }),
    );
    await Promise.all(pending);
    this.open.clear();
  }
}
