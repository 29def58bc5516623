// The send limit (ObservableConnection.setSendLimit): replication's output commit applied where
// segments are made. New data and the FIN go only below the limit; what was sent once may always
// be sent again; raising the limit sends at once and tells the host.

import { describe, expect, it } from 'vitest';
import { MS, bytes, established, out, seg } from './harness.js';

describe('send limit', () => {
  it('established: new data stops at the send limit, without a short segment at the cut, and goes when it is raised', () => {
    const c = established();
    c.setNoDelay(true);
    c.setSendLimit(20 * MS, 1001);
    c.write(20 * MS, bytes(3000));
    expect(out(c)).toEqual([]);
    c.setSendLimit(21 * MS, 1001 + 2000);
    // The 540 bytes before the cut wait for the rest instead of leaving as a short pushed segment.
    expect(out(c)).toEqual(['. 1001:2461(1460) ack 5001 win 65535']);
    c.setSendLimit(22 * MS, 4001);
    expect(out(c)).toEqual(['. 2461:3921(1460) ack 5001 win 65535', 'P. 3921:4001(80) ack 5001 win 65535']);
  });

  it('established: the FIN waits until the limit passes it', () => {
    const c = established();
    c.setSendLimit(20 * MS, 1001);
    c.write(20 * MS, bytes(100));
    c.close(20 * MS);
    expect(out(c)).toEqual([]);
    c.setSendLimit(21 * MS, 1101);
    expect(out(c)).toEqual(['P. 1001:1101(100) ack 5001 win 65535']);
    expect(c.state).toBe('FIN-WAIT-1');
    c.setSendLimit(22 * MS, 1102);
    expect(out(c)).toEqual(['F. 1101:1101(0) ack 5001 win 65535']);
  });

  it('established: null lifts the limit and sends what waited', () => {
    const c = established();
    c.setSendLimit(20 * MS, 1001);
    c.write(20 * MS, bytes(100));
    expect(out(c)).toEqual([]);
    c.setSendLimit(21 * MS, null);
    expect(out(c)).toEqual(['P. 1001:1101(100) ack 5001 win 65535']);
  });

  it('established: a limit below SND.MAX holds new data but not the retransmission of what was sent', () => {
    const c = established();
    c.write(20 * MS, bytes(100));
    expect(out(c)).toEqual(['P. 1001:1101(100) ack 5001 win 65535']);
    // A connection brought over by snapshot: nothing new until the backup has it.
    c.setSendLimit(21 * MS, 1001);
    c.write(21 * MS, bytes(100, 100));
    expect(out(c)).toEqual([]);
    const due = c.nextDeadline();
    expect(due).not.toBeNull();
    c.onTimer(due!);
    // Not pushed: the buffer goes on beyond the limit.
    expect(out(c)).toEqual(['. 1001:1101(100) ack 5001 win 65535']);
    c.onSegment(due! + MS, seg('.', 5001, 1101));
    expect(out(c)).toEqual([]);
  });

  it('established: data waiting only for the limit arms no persist or retransmission timer', () => {
    const c = established();
    c.setSendLimit(20 * MS, 1001);
    c.write(20 * MS, bytes(100));
    expect(c.v.persistDeadline).toBeNull();
    expect(c.v.rtxDeadline).toBeNull();
  });

  it('established: raising the limit wakes the host once; a limit that does not rise, or a closed connection, does not', () => {
    const c = established();
    let wakes = 0;
    c.setWakeHandler(() => wakes++);
    c.setSendLimit(20 * MS, 1001);
    c.write(20 * MS, bytes(100));
    c.setSendLimit(21 * MS, 1001);
    expect(wakes).toBe(0);
    c.setSendLimit(22 * MS, 1101);
    expect(wakes).toBe(1);
    c.abort(23 * MS);
    c.setSendLimit(24 * MS, null);
    expect(wakes).toBe(1);
  });
});
