// The understudy side of the bench: the same handlers as the Linux baseline, served by our stack
// on the VIP through a real TUN device in this process's namespace. Optionally wraps the TUN link
// in a FaultLink (seeded loss/reordering) for the lab tests. Prints `{"ready":true,...}` once the
// route is in place and the ports listen; on SIGTERM prints link statistics and exits.
//
// Usage: understudy-server.ts --vip 198.18.0.100 [--lan eth0] [--tun usbench0] [--mtu 1500]
//          [--services source:5001,sink:5002,echo:5003] [--loss 2 --reorder 5 --seed 7] [--no-offload]
// With --lan the VIP is answered by proxy ARP on that interface, as the CLI node does.

import { createStack } from '../../src/stack/stack.js';
import { ipv4FromString } from '../../src/stack/wire/types.js';
import { enableProxyArp } from '../../src/tun/arp.js';
import { FaultLink } from '../../src/tun/fault-link.js';
import type { Link } from '../../src/tun/link.js';
import { addRoute } from '../../src/tun/route.js';
import { openTun } from '../../src/tun/tun-device.js';
import { flags, numFlag, strFlag } from '../clients/common.js';
import { ECHO_PORT, SINK_PORT, SOURCE_PORT } from '../protocol.js';
import { echoHandler, sinkHandler, sourceHandler, type BenchHandler } from './handlers.js';

const f = flags();
const vip = strFlag(f, 'vip');
const tunName = strFlag(f, 'tun', 'usbench0');
const lan = f.get('lan');
const mtu = numFlag(f, 'mtu', 1500);
const lossPct = numFlag(f, 'loss', 0);
const reorderPct = numFlag(f, 'reorder', 0);
const seed = numFlag(f, 'seed', 1);
const handlers: Record<string, BenchHandler> = { source: sourceHandler, sink: sinkHandler, echo: echoHandler };
const services = strFlag(f, 'services', `source:${SOURCE_PORT},sink:${SINK_PORT},echo:${ECHO_PORT}`)
  .split(',')
  .map((spec) => {
    const [name, port] = spec.split(':');
    const handler = handlers[name ?? ''];
    if (handler === undefined || !Number.isInteger(Number(port))) throw new Error(`bad service ${spec}`);
    return { name: name!, port: Number(port), handler };
  });

if (ipv4FromString(vip) === undefined) throw new Error(`bad --vip ${vip}`);

// Offloads (virtio-net header, TSO/checksum) are the device's default; --no-offload measures without.
const tun = await openTun({ name: tunName, mtu, offload: !f.has('no-offload') });
const faulty = lossPct > 0 || reorderPct > 0;
const fault = faulty
  ? new FaultLink(tun, {
      seed,
      // Both directions, so the client's data and our data and ACKs all see loss and reordering.
      in: { lossPct, reorderPct, reorderDistance: 3, reorderMaxHoldMs: 5 },
      out: { lossPct, reorderPct, reorderDistance: 3, reorderMaxHoldMs: 5 },
    })
  : undefined;
const link: Link = fault ?? tun;
const stack = createStack({ link, addresses: [vip] });
for (const s of services) {
  const server = stack.createServer((sock) => s.handler(sock));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(s.port, () => resolve());
  });
}
// The route and ARP go in last, so no SYN reaches the stack before the listeners exist.
await addRoute(vip, tun.name);
if (lan !== undefined) await enableProxyArp(vip, lan);
process.stdout.write(
  `${JSON.stringify({ ready: true, server: 'understudy', vip, tun: tun.name, mtu, offload: tun.offload !== undefined, faulty, services })}\n`,
);

const stop = (): void => {
  const stats: Record<string, unknown> = { tun: tun.stats };
  if (fault !== undefined) stats.faults = fault.counters();
  process.stdout.write(`${JSON.stringify({ stats })}\n`);
  // Closing the tun removes its route with it; nothing else to undo in a lab namespace.
  void stack.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
