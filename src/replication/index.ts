// The replication layer's public surface: records, their encoding, the framed and authenticated
// channel, and the log at both ends.

export * from './log-records.js';
export * from './codec.js';
export * from './auth.js';
export * from './framing.js';
export * from './replication-log.js';
export * from './channel.js';
