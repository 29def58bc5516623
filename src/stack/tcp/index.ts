// The TCP core's entry points for the layers above (host, socket API, replication, conformance).

export type * from './api.js';
export { defaultTcpConfig, freebsdProfileConfig } from './config.js';
export { Connection, createActiveConnection, createPassiveConnection, createCookieConnection } from './connection.js';
export type { CookieOptions } from './handshake.js';
export { restoreConnection, type TcbSnapshot } from './snapshot.js';
export type { TcbVars } from './state.js';
