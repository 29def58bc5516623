// The demo's verdict (its exit status) and the printed report.

import { describe, expect, it } from 'vitest';
import { demoExitCode, formatReport, verdict, type DemoOutcome } from '../../../src/demo/report.js';

const H = 'a'.repeat(64);
const ok = (): DemoOutcome => ({
  sizeBytes: 256 * 1024 * 1024,
  curlExit: 0,
  bytesReceived: 256 * 1024 * 1024,
  sha256Expected: H,
  sha256Received: H,
  rsts: 0,
  killedAtMs: Date.parse('2026-11-28T15:00:05.000Z'),
  killedAtBytes: 0.4 * 256 * 1024 * 1024,
  stallMs: 312.4,
  takeoverSteps: [
    { node: 'backup', timeMs: Date.parse('2026-11-28T15:00:05.301Z'), event: 'takeover.start', level: 'info', fields: { epoch: 2 } },
    { node: 'backup', timeMs: Date.parse('2026-11-28T15:00:05.330Z'), event: 'takeover.done', level: 'info', fields: {} },
  ],
  files: ['/out/client.pcap', '/out/timeline.svg'],
});

describe('demo verdict', () => {
  it('exits 0 when curl succeeded, the hash matches and there was no RST', () => {
    expect(verdict(ok())).toEqual({ unnoticed: true, reasons: [] });
    expect(demoExitCode(ok())).toBe(0);
  });

  it.each<[string, Partial<DemoOutcome>, RegExp]>([
    ['curl failed', { curlExit: 18 }, /curl exited with 18/],
    ['curl never finished', { curlExit: null }, /curl did not finish/],
    ['different bytes', { sha256Received: 'b'.repeat(64) }, /SHA-256 mismatch/],
    ['short download', { sha256Received: 'b'.repeat(64), bytesReceived: 1000 }, /1000 of 268435456 bytes arrived/],
    ['one RST', { rsts: 1 }, /1 RST segment on the client/],
  ])('exits 1 when %s, saying why', (_name, change, reason) => {
    const o = { ...ok(), ...change };
    expect(demoExitCode(o)).toBe(1);
    expect(verdict(o).reasons.join('; ')).toMatch(reason);
    expect(formatReport(o)).toMatch(new RegExp(`result +the client noticed: .*${reason.source}`));
  });
});

describe('demo report', () => {
  it('shows bytes, hash, RSTs, stall, takeover steps relative to the kill, and files', () => {
    const text = formatReport(ok());
    expect(text).toMatch(/bytes received +268435456 of 268435456/);
    expect(text).toMatch(/SHA-256 match +yes/);
    expect(text).toMatch(/RSTs seen +0\n/);
    expect(text).toMatch(/primary killed +SIGKILL at 102\.4 MiB \(40%\)/);
    expect(text).toMatch(/stall +312 ms/);
    expect(text).toMatch(/\+301 ms +takeover\.start +backup +epoch=2/);
    expect(text).toMatch(/\+330 ms +takeover\.done +backup/);
    expect(text).toMatch(/files +\/out\/client\.pcap\n +\/out\/timeline\.svg/);
    expect(text).toMatch(/result +the client did not notice/);
    expect(text.split('\n').length).toBeLessThan(25);
  });

  it('says so when nothing was logged or measured', () => {
    const text = formatReport({ ...ok(), takeoverSteps: [], stallMs: undefined, notes: ['no SVG-to-PNG converter here'] });
    expect(text).toMatch(/takeover steps +none logged/);
    expect(text).toMatch(/stall +not measured/);
    expect(text).toMatch(/note +no SVG-to-PNG converter here/);
  });
});
