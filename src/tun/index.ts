// The packet path's public surface. Importing this binds libc through koffi; code that needs only
// the Link interface, the in-memory link or the fault link (simulations, unit tests) can import
// those files directly and stay free of native code.

export { copyPacket, emptyLinkStats, type Link, type LinkStats, type ReceiveHandler } from './link.js';
export { createMemoryLinkPair } from './memory-link.js';
export { FaultLink, formatFaultSpec, noFaults, parseFaultSpec, type FaultCounters, type FaultDirection, type FaultLinkOptions, type FaultSettings } from './fault-link.js';
export { createPrng, type Prng } from './prng.js';
export { createTunFd, openTun, type TunDevice, type TunOptions, type TunStats } from './tun-device.js';
export { addRoute, removeRoute } from './route.js';
export { disableProxyArp, enableProxyArp, gratuitousArpFrame, sendGratuitousArp, type GratuitousArpOptions } from './arp.js';
export { IpCommandError, type NetnsOption } from './iproute.js';
