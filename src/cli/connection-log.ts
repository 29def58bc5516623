// One log line per connection event: open (4-tuple), close (bytes each way, duration), and
// reset/error. Listens only to 'error' and 'close', never 'data', so it cannot change the flow
// mode of a socket that the service handles.

import type { ServiceSocket } from '../services/service.js';
import type { Logger } from './log.js';

export interface ConnectionStats {
  /** Connections currently open. */
  open: number;
  /** Connections accepted since start. */
  total: number;
}

export function endpoint(addr: string | undefined, port: number | undefined): string {
  return `${addr ?? '?'}:${port ?? '?'}`;
}

export function trackConnection(
  socket: ServiceSocket,
  log: Logger,
  stats: ConnectionStats,
  now: () => number = () => performance.now(),
  opts: { openLine?: boolean } = {},
): void {
  const started = now();
  const remote = endpoint(socket.remoteAddress, socket.remotePort);
  const local = endpoint(socket.localAddress, socket.localPort);
  stats.open++;
  stats.total++;
  // A connection promoted at a takeover has no open line: thousands of them, written before the
  // retransmissions left, were a third of a takeover's time; the takeover's own lines cover them.
  if (opts.openLine !== false) log.info('conn.open', { remote, local });

  let failure: string | undefined;
  socket.on('error', (err: NodeJS.ErrnoException) => {
    failure = err.code ?? err.message;
    // A reset is the peer's decision, not our fault: info, not error.
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE') log.info('conn.reset', { remote, local, code: failure });
    else log.warn('conn.error', { remote, local, code: err.code, message: err.message });
  });
  socket.once('close', () => {
    stats.open--;
    log.info('conn.close', {
      remote,
      local,
      in: socket.bytesRead ?? '?',
      out: socket.bytesWritten ?? '?',
      ms: Math.round(now() - started),
      error: failure,
    });
  });
}
