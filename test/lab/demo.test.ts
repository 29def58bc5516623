// `understudy demo`'s machinery in a real lab, before replication exists: the rehearsal runs a
// lone primary and freezes it (SIGSTOP) for 500 ms part-way through a real curl download instead
// of killing it. Everything else is the demo's own path — lab, tcpdump on the client, rate-limited
// curl, the pause at 40% of the bytes, pcap analysis, timeline, report, teardown — so a client
// that did not notice must give exit 0, a stall of at least the pause, and the files.
// (The full demo with a backup taking over gets its test once `node --role` exists.)

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listLabs } from '../../scripts/lab.js';
import { analyzeCapture } from '../../src/demo/analysis.js';
import { readPcapFile } from '../../src/demo/pcap.js';
import { runDemo } from '../../src/demo/run-demo.js';

describe('understudy demo, rehearsal (no replication: the primary is frozen, not killed)', () => {
  const out = mkdtempSync(join(tmpdir(), 'understudy-demo-test-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('measures the pause as the stall, finds no RST, writes capture, timeline, logs and report, and tears the lab down', async () => {
    const labsBefore = new Set(listLabs().map((l) => l.id));
    let stdout = '';
    let stderr = '';
    const code = await runDemo(
      { sizeMiB: 24, keep: false, outDir: out, rehearsal: true, transferSeconds: 4 },
      { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) },
    );
    const text = `${stdout}\n${stderr}`;
    expect(code, text).toBe(0);
    expect(stdout).toMatch(/SHA-256 match +yes/);
    expect(stdout).toMatch(/RSTs seen +0\n/);
    expect(stdout).toMatch(/result +the client did not notice/);
    // Progress lines came while it ran.
    expect(stdout).toMatch(/\] SIGSTOP to the primary at [\d.]+ MiB \(\d+%\)/);

    for (const f of ['client.pcap', 'timeline.svg', 'primary.log', 'report.txt']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(readFileSync(join(out, 'report.txt'), 'utf8')).toMatch(/bytes received +25165824 of 25165824/);

    // The capture holds the whole download and the pause: the primary was frozen for 500 ms, so
    // the client cannot have seen new data for at least nearly that long.
    const pcap = readPcapFile(join(out, 'client.pcap'));
    expect(pcap.truncated).toBe(false);
    const a = analyzeCapture(pcap.tcp, { server: { ip: '198.18.0.100', port: 80 } });
    expect(a.bytesSeen).toBeGreaterThan(24 * 1024 * 1024);
    const stall = Number(/stall +(\d+) ms/.exec(stdout)?.[1]);
    expect(stall, text).toBeGreaterThanOrEqual(450);

    const svg = readFileSync(join(out, 'timeline.svg'), 'utf8');
    expect(svg).toMatch(/id="marker-killed"/);
    expect(svg).toMatch(/id="stall"/);
    expect(svg).toMatch(/id="series-data"/);

    // Torn down: no lab of this run is left.
    const left = listLabs().filter((l) => !labsBefore.has(l.id) && l.ownerPid === process.pid);
    expect(left).toEqual([]);
  }, 120_000);
});
