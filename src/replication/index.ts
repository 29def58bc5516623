// The replication layer's public surface: records, their encoding, the framed and authenticated
// channel, the log at both ends, the primary's tap and output gate, the backup's shadows and
// service replica, failure detection, and the in-memory LAN and link used by simulations.

export * from './log-records.js';
export * from './codec.js';
export * from './auth.js';
export * from './framing.js';
export * from './replication-log.js';
export * from './channel.js';
export * from './primary-tap.js';
export * from './output-gate.js';
export * from './output-store.js';
export * from './output-matcher.js';
export * from './retained-input.js';
export * from './connection-snapshot.js';
export * from './snapshot-state.js';
export * from './shadow.js';
export * from './service-replica.js';
export * from './failure-detector.js';
export * from './memory-lan.js';
export * from './memory-replication.js';
export * from './lan-heartbeat.js';
export * from './primary-watch.js';
export * from './primary-node.js';
export * from './backup-node.js';
export * from './node-channel.js';
