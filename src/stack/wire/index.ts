// The wire layer's public surface: import from here rather than from the individual modules.

export * from './seq.js';
export * from './types.js';
export * from './errors.js';
export * from './checksum.js';
export * from './ipv4.js';
export * from './tcp.js';
export * from './icmp.js';
export * from './fragments.js';
