// The real host side of a node: the TUN device, iproute2 routes, proxy and gratuitous ARP, and our
// stack. Kept apart from node-runner.ts so the runner is tested without root or FFI.

import { createStack, type StackLogEvent } from '../stack/stack.js';
import { enableProxyArp, disableProxyArp, sendGratuitousArp } from '../tun/arp.js';
import { addRoute, removeRoute } from '../tun/route.js';
import { openTun } from '../tun/tun-device.js';
import type { Logger } from './log.js';
import type { NodeDeps } from './node-runner.js';

export function createNodeDeps(log: Logger): NodeDeps {
  return {
    log,
    network: {
      openTun: (opts) => openTun(opts),
      addRoute: (vip, dev) => addRoute(vip, dev),
      removeRoute: (vip, dev) => removeRoute(vip, dev),
      enableProxyArp: (vip, lan) => enableProxyArp(vip, lan),
      disableProxyArp: (vip, lan) => disableProxyArp(vip, lan),
      sendGratuitousArp: (vip, lan, count) => sendGratuitousArp(vip, lan, count),
    },
    createStack: (opts) =>
      createStack({
        ...opts,
        // The CLI logs connections itself at info; the stack's own view is for debugging.
        log: log.enabled('debug') ? (event: StackLogEvent) => log.debug(`stack.${event.type}`, { ...event, type: undefined }) : undefined,
      }),
  };
}
