import { describe, expect, it } from 'vitest';
import { snapshotOffsetsDisagree } from '../../../src/replication/connection-snapshot.js';
import type { SnapshotState } from '../../../src/replication/log-records.js';

// An established download: ISS near the top of the sequence space so that SND.UNA wraps.
const ISS = 0xfff00000;
const IRS = 5000;
function state(over: Partial<SnapshotState> = {}): SnapshotState {
  return {
    version: 2,
    tuple: { localAddr: 0xc6120064, localPort: 80, remoteAddr: 0xc612000a, remotePort: 40000 },
    iss: ISS,
    irs: IRS,
    options: { sndMss: 1460, rcvMss: 1460, sndWindowScale: 7, rcvWindowScale: 7, sackPermitted: true, timestamps: true, tsOffset: 0, sndWindow: 65535, rcvWindow: 65535 },
    rcvNxt: IRS + 1 + 78,
    inputEnd: 78,
    peerFin: false,
    sndUna: (ISS + 1 + 12_000_000) >>> 0,
    ackedOutput: 12_000_000,
    outputEnd: 13_000_000,
    ourFin: false,
    finAcked: false,
    firstFin: null,
    sndWnd: 131072,
    tsRecent: 1,
    boundary: { input: 0, output: 0 },
    ...over,
  };
}

describe('snapshot offsets', () => {
  it('snapshot: offsets that match ISS/IRS + 1 + offset (across the sequence wrap) pass', () => {
    expect(snapshotOffsetsDisagree(state())).toBeNull();
    // Both FINs exchanged and ours acknowledged: each takes one sequence number.
    expect(snapshotOffsetsDisagree(state({ ourFin: true, finAcked: true, sndUna: (ISS + 2 + 12_000_000) >>> 0, peerFin: true, rcvNxt: IRS + 2 + 78 }))).toBeNull();
    // A SYN-ACK not yet acknowledged has nothing to check.
    expect(snapshotOffsetsDisagree(state({ sndUna: ISS, ackedOutput: 0, outputEnd: 0 }))).toBeNull();
  });

  it('snapshot: output offsets off by the bytes in flight are refused, with both counts in the reason', () => {
    expect(snapshotOffsetsDisagree(state({ ackedOutput: 12_000_000 - 131072 }))).toMatch(/output acknowledged to offset 11868928 by the tap's count, 12000000 by SND.UNA/);
  });

  it('snapshot: input offsets that disagree with RCV.NXT are refused', () => {
    expect(snapshotOffsetsDisagree(state({ inputEnd: 77 }))).toMatch(/input accepted to offset 77 by the tap's count, 78 by RCV.NXT/);
  });
});
