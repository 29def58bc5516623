// proxy: each accepted connection is relayed to one backend over Linux TCP, so an unmodified
// server (nginx, redis, python -m http.server) can sit behind the VIP. Both directions are piped,
// so a slow reader on either side stops the other side's reads (backpressure end to end); a FIN
// on one side becomes end() on the other, so half-closed protocols keep working; a reset or a
// failed connect on the backend side becomes a reset towards the client.
//
// On the backup, the replica of this service is an ordinary instance of it: each replica socket
// opens its own connection to the backend configured on the backup host. Its replies are only
// compared with the primary's (ARCHITECTURE.md 5.5), so a backend that answers differently on the
// two hosts shows up as divergences, and after a takeover the client gets the backup backend's
// bytes only beyond what the primary had already sent.
//
// Idle connections are the backend's business: the proxy has no idle timer of its own, because on
// the backup such a timer would close replica connections that the primary keeps. A backend that
// drops idle keep-alive connections sends a FIN, which reaches the client like any other; a
// backend host that disappears silently is found by TCP keep-alive on the backend connection.

import { connect, type Socket } from 'node:net';
import { ConnectionSet } from './connection-set.js';
import type { Service, ServiceSocket } from './service.js';

export interface ProxyTarget {
  /** Dotted-quad IPv4 ("localhost" is resolved to 127.0.0.1 by the spec parser). */
  host: string;
  port: number;
}

export interface ProxyOptions {
  /**
   * TCP keep-alive on the backend connection, so a backend host that vanished without a FIN or
   * RST is noticed and the client is reset instead of waiting forever. 0 disables. Default 60 s.
   */
  backendKeepAliveMs?: number;
}

/** The error a client socket reports when its backend failed; the CLI's connection log prints it. */
export interface BackendError extends Error {
  code: 'EBACKEND';
  /** The backend socket's own error code: ECONNREFUSED, ECONNRESET, ETIMEDOUT, ... */
  backendCode: string | undefined;
}

const DEFAULT_KEEPALIVE_MS = 60_000;

export function createProxyService(target: ProxyTarget, options: ProxyOptions = {}): Service {
  const connections = new ConnectionSet();
  const backends = new Set<Socket>();
  const keepAliveMs = options.backendKeepAliveMs ?? DEFAULT_KEEPALIVE_MS;
  const where = `${target.host}:${target.port}`;

  return {
    name: `proxy:${where}`,
    onConnection(client: ServiceSocket): void {
      if (!connections.add(client)) return;
      // Reset by the client before it was handed over: its 'close' has passed, and a backend
      // connection opened now would never be torn down with it.
      if (client.destroyed) return;
      // The client's FIN only means it has finished sending (e.g. `nc -N`, or a request followed
      // by shutdown(SHUT_WR)); the backend's reply must still reach it, so our side stays open
      // until the backend ends too. Set on the socket itself because the listener that accepted
      // it (the node's, or the replica's on the backup) does not know which service it feeds.
      (client as ServiceSocket & { allowHalfOpen: boolean }).allowHalfOpen = true;
      // Nagle on a relay would delay every small reply of an interactive protocol by an RTT.
      client.setNoDelay(true);

      const backend = connect({ host: target.host, port: target.port, allowHalfOpen: true });
      backends.add(backend);
      backend.setNoDelay(true);
      if (keepAliveMs > 0) backend.setKeepAlive(true, keepAliveMs);
      let backendConnected = false;
      let failed = false;

      // pipe() pauses the source while the destination's buffer is full, and calls end() on the
      // destination when the source ends: exactly "FIN in → FIN out" for each direction. Bytes the
      // client sends while the backend is still connecting are queued by net and flushed on connect.
      client.pipe(backend);
      backend.pipe(client);

      backend.once('connect', () => {
        backendConnected = true;
      });

      /** The backend failed: reset the client (it must not mistake a cut reply for a complete one). */
      const backendFailed = (err: NodeJS.ErrnoException): void => {
        if (failed) return;
        failed = true;
        const reason = backendConnected
          ? `proxy: backend ${where} ${err.code === 'ECONNRESET' ? 'reset the connection' : 'failed'} (${err.code ?? err.message})`
          : `proxy: cannot connect to backend ${where} (${err.code ?? err.message})`;
        const e = Object.assign(new Error(reason), { code: 'EBACKEND' as const, backendCode: err.code }) as BackendError;
        // Told to the client socket's listeners (the CLI logs the connection with this reason)
        // before the reset, which itself destroys without an error.
        if (!client.destroyed) client.emit('error', e);
        resetSocket(client);
      };
      backend.on('error', backendFailed);

      client.once('close', (hadError: boolean) => {
        if (backend.destroyed) return;
        // The client vanished before both directions had ended (reset by the client, or by
        // close() at shutdown): the backend gets a reset too, so it does not act on a truncated
        // request as if it were complete. After a clean close (FINs both ways) the backend is left
        // to finish on its own: it may still be flushing the client's last bytes.
        if (hadError || !client.readableEnded || !client.writableFinished) resetSocket(backend);
      });
      backend.once('close', () => backends.delete(backend));
    },
    async close(): Promise<void> {
      // Clients first (reset, and their 'close' resets the backends); any backend still around
      // (e.g. one whose client is gone but which has not closed yet) is reset here.
      await connections.closeAll();
      for (const b of backends) resetSocket(b);
      backends.clear();
    },
  };
}

function resetSocket(s: ServiceSocket | Socket): void {
  if (s.destroyed) return;
  // net.Socket.resetAndDestroy() throws when it has no TCP handle yet (still resolving); a
  // plain destroy is all there is to do then.
  if (typeof s.resetAndDestroy === 'function' && !(s as Socket).connecting) {
    try {
      s.resetAndDestroy();
      return;
    } catch {
      // fall through
    }
  }
  s.destroy();
}
