// The TCP core's entry points for the layers above (host, socket API, replication, conformance).
//
// Where things live: connection.ts holds the TCB (plain variables in state.ts, buffers beside
// them) and routes inputs; handshake.ts opens, segment-arrives.ts runs RFC 9293 3.10.7.4,
// receiver.ts and reassembly.ts take data in, sender.ts and send-buffer.ts put it out,
// recovery.ts handles ACKs and loss, close.ts the FINs and TIME-WAIT, timers.ts the deadlines,
// icmp.ts ICMP errors, snapshot.ts replication snapshots.

export type * from './api.js';
export { defaultTcpConfig, freebsdProfileConfig } from './config.js';
export { Connection, createActiveConnection, createPassiveConnection, createCookieConnection } from './connection.js';
export type { CookieOptions } from './handshake.js';
export { restoreConnection, type TcbSnapshot } from './snapshot.js';
export type { TcbVars } from './state.js';
