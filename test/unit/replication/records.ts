// Sample records of every kind for the replication tests.

import type { LogRecord } from '../../../src/replication/log-records.js';

export function sampleRecords(): LogRecord[] {
  return [
    {
      kind: 'open',
      lsn: 1,
      conn: 7,
      tuple: { localAddr: 0xc6120064, localPort: 80, remoteAddr: 0xc6120001, remotePort: 54321 },
      iss: 0xfffffff0,
      irs: 12345,
      options: {
        sndMss: 1460,
        rcvMss: 1400,
        sndWindowScale: 7,
        rcvWindowScale: 14,
        sackPermitted: true,
        timestamps: true,
        tsOffset: 0xdeadbeef,
        sndWindow: 64240 << 7,
        rcvWindow: 65535,
      },
    },
    { kind: 'input', lsn: 2, conn: 7, offset: 2 ** 40 + 3, data: new Uint8Array([1, 2, 3, 4]), rcvNxt: 0xffffffff, fin: false },
    { kind: 'input', lsn: 3, conn: 7, offset: 0, data: new Uint8Array(0), rcvNxt: 5, fin: true },
    { kind: 'output', lsn: 4, conn: 7, offset: 99, data: new TextEncoder().encode('HTTP/1.1 200 OK\r\n'), fin: true },
    { kind: 'ack', lsn: 5, conn: 7, ack: 0x80000000, window: 8_000_000 },
    { kind: 'boundary', lsn: 6, conn: 7, inputOffset: 2 ** 52 },
    { kind: 'close', lsn: 7, conn: 7, reason: 'service closed — réponse envoyée' },
    { kind: 'reset', lsn: 8, conn: 0xffffffff, reason: '' },
    {
      kind: 'heartbeat',
      lsn: 9,
      epoch: 3,
      clockUs: 1_764_000_000_000_000,
      congestion: [
        { conn: 7, cwnd: 14600, ssthresh: 0x7fffffff, srttUs: 1234.5, rttvarUs: 617.25 },
        { conn: 8, cwnd: 2920, ssthresh: 5840, srttUs: null, rttvarUs: 0 },
      ],
    },
    {
      kind: 'snapshot',
      lsn: Number.MAX_SAFE_INTEGER,
      conn: 7,
      tcb: {
        version: 1,
        tuple: { localAddr: 1, localPort: 2, remoteAddr: 3, remotePort: 4 },
        vars: { state: 'ESTABLISHED', peerFinSeq: null, rtxDeadline: 1.5e9, keepalive: null, tsEnabled: true },
        sendBuffer: new Uint8Array([9, 8, 7]),
        outOfOrder: [{ seq: 4000, data: new Uint8Array([1]) }],
        ratio: -0.125,
        missing: undefined,
      },
      retained: [
        { stream: 'input', offset: 10, data: new Uint8Array([5, 5]) },
        { stream: 'output', offset: 2 ** 33, data: new Uint8Array(0) },
      ],
    },
  ];
}
