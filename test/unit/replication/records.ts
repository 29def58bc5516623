// Sample records of every kind for the replication tests.

import type { LogRecord, SnapshotState } from '../../../src/replication/log-records.js';

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
      state: sampleSnapshotState(),
      retained: [
        { stream: 'input', offset: 10, data: new Uint8Array([5, 5]) },
        { stream: 'output', offset: 2 ** 33, data: new Uint8Array([9, 8, 7]) },
      ],
    },
  ];
}

/** A snapshot state whose ranges are input [10, 12) and output [2^33, 2^33 + 3). */
export function sampleSnapshotState(): SnapshotState {
  return {
    version: 2,
    tuple: { localAddr: 0xc6120064, localPort: 80, remoteAddr: 0xc6120002, remotePort: 40000 },
    iss: 0xfffffff0,
    irs: 1000,
    options: { sndMss: 1460, rcvMss: 1460, sndWindowScale: 7, rcvWindowScale: 9, sackPermitted: true, timestamps: true, tsOffset: 0x80000000, sndWindow: 65535 << 7, rcvWindow: 1 << 20 },
    rcvNxt: 1013,
    inputEnd: 12,
    peerFin: true,
    sndUna: 5,
    ackedOutput: 2 ** 33,
    outputEnd: 2 ** 33 + 3,
    ourFin: true,
    finAcked: false,
    firstFin: 'peer',
    sndWnd: 1 << 20,
    tsRecent: 123456,
    boundary: { input: 10, output: 2 ** 33 - 100 },
  };
}
