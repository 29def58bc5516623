// The baseline: the bench handlers on Node's `net`, i.e. on Linux TCP. Prints one JSON line
// `{"ready":true,...}` once every port listens, so the orchestrator can wait on it.

import net from 'node:net';
import { ECHO_PORT, SINK_PORT, SOURCE_PORT } from '../protocol.js';
import { echoHandler, sinkHandler, sourceHandler, type BenchHandler } from './handlers.js';

const host = process.argv[2] ?? '0.0.0.0';

const servers: net.Server[] = [];

function listen(port: number, handler: BenchHandler): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.createServer({ noDelay: true }, (sock) => handler(sock));
    s.once('error', reject);
    s.listen({ host, port, backlog: 4096 }, () => resolve());
    servers.push(s);
  });
}

await listen(SOURCE_PORT, sourceHandler);
await listen(SINK_PORT, sinkHandler);
await listen(ECHO_PORT, echoHandler);
process.stdout.write(`${JSON.stringify({ ready: true, server: 'linux', host })}\n`);

const stop = (): void => {
  for (const s of servers) s.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
