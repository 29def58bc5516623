// The HTTP endpoint Prometheus scrapes: GET /metrics, nothing else.

import { createServer, type Server } from 'node:http';
import type { NodeMetrics } from './registry.js';

export interface MetricsServer {
  /** host:port actually bound (port 0 resolves to the kernel's choice). */
  readonly address: string;
  close(): Promise<void>;
}

export class MetricsServerError extends Error {
  override readonly name = 'MetricsServerError';
}

export function startMetricsServer(metrics: NodeMetrics, host: string, port: number): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('understudy: metrics are at /metrics\n');
      return;
    }
    metrics.render().then(
      (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err instanceof Error ? err.message : String(err)}\n`),
    );
  });
  // A scraper holding a connection open must not delay the node's shutdown.
  server.keepAliveTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new MetricsServerError(`cannot serve metrics on ${host}:${port}: ${err.code ?? err.message}`)));
    server.listen(port, host, () => {
      const a = server.address();
      const bound = typeof a === 'object' && a !== null ? `${a.address}:${a.port}` : `${host}:${port}`;
      resolve({
        address: bound,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
