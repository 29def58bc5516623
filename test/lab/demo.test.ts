// `understudy demo` for real, as an operator runs it: the CLI builds its own lab, starts a backup
// and a primary, SIGKILLs the primary part-way through a real curl download, and must report that
// the client noticed nothing, write its evidence, and leave nothing behind. The test reads that
// evidence itself (capture, picture, logs) rather than trusting the printed report alone.
//
// (This replaces the "rehearsal" test, which froze a lone primary before replication existed: the
// real run exercises the same machinery and the failover too.)

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { listLabs, removeLab } from '../../scripts/lab.js';
import { analyzeCapture, parseNodeLog } from '../../src/demo/analysis.js';
import { readPcapFile } from '../../src/demo/pcap.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SIZE_MIB = 32;
const VIP = '198.18.0.100';
/** scripts/setup.sh installs it (librsvg2-bin); the demo writes a PNG beside the SVG with it. */
const HAVE_RSVG = spawnSync('rsvg-convert', ['--version'], { stdio: 'ignore' }).status === 0;

/** The `attr` attribute of the element with `id` in the SVG, as a number. */
function attr(svg: string, id: string, name: string): number {
  const el = new RegExp(`<[a-z]+ id="${id}"[^>]*>`).exec(svg)?.[0];
  const v = el === undefined ? undefined : new RegExp(`\\s${name}="([-\\d.]+)"`).exec(el)?.[1];
  if (v === undefined) throw new Error(`no ${name} on #${id} in the SVG`);
  return Number(v);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('understudy demo (real failover)', () => {
  const out = mkdtempSync(join(tmpdir(), 'understudy-demotest-'));
  let child: ChildProcess | undefined;

  // Whatever happened, leave nothing: the demo's own teardown is what the test checks, so this is
  // only the safety net for a failed or timed-out run. SIGTERM first, which the demo answers by
  // removing its lab and work directory; then the lab's namespaces by its owner pid (the CLI's).
  afterAll(async () => {
    const c = child;
    if (c?.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    if (c?.pid !== undefined) for (const l of listLabs().filter((x) => x.ownerPid === c.pid)) removeLab(l.id);
    rmSync(out, { recursive: true, force: true });
  }, 60_000);

  it('exits 0 with SHA-256 match and 0 RSTs, writes capture, timeline with kill and takeover markers, report, and tears its lab down', async () => {
    const c = spawn(process.execPath, ['bin/understudy.js', 'demo', '--size', String(SIZE_MIB), '--out', out], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((r) => c.once('exit', (n) => r(n)));
    const text = `--- stdout\n${stdout}\n--- stderr\n${stderr}`;

    // The verdict and the report's lines.
    expect(code, text).toBe(0);
    expect(stdout).toMatch(new RegExp(`bytes received +${SIZE_MIB * 1024 * 1024} of ${SIZE_MIB * 1024 * 1024}\\n`));
    expect(stdout).toMatch(/SHA-256 match +yes/);
    expect(stdout).toMatch(/RSTs seen +0\n/);
    expect(stdout).toMatch(/primary killed +SIGKILL at [\d.]+ MiB \(\d+%\)/);
    expect(stdout).toMatch(/result +the client did not notice/);
    // Progress came while it ran: the kill and the takeover as they happened.
    expect(stdout).toMatch(/\] SIGKILL to the primary at [\d.]+ MiB \(\d+%\)\n/);
    expect(stdout).toMatch(/\] the backup took over, \d+ ms after the kill\n/);
    // And the download's own progress, at least once a second while bytes come in.
    expect(stdout).toMatch(new RegExp(`\\] client has [\\d.]+ of ${SIZE_MIB} MiB\\n`));
    // Every step of the takeover, in order, with its time after the kill.
    const steps = [...stdout.matchAll(/^ +([+-]\d+) ms +(takeover\.[a-z-]+) +backup/gm)].map((m) => ({ ms: Number(m[1]), event: m[2]! }));
    expect(steps.map((s) => s.event), text).toContain('takeover.detected');
    expect(steps.at(-1)?.event, text).toBe('takeover.done');
    for (let i = 1; i < steps.length; i++) expect(steps[i]!.ms).toBeGreaterThanOrEqual(steps[i - 1]!.ms);
    // The stall spans the failover: nothing new can reach the client between the kill and the
    // backup deciding the primary is dead, so the stall is at least that long (the margin covers
    // the log's millisecond timestamps and the primary's last packets landing just after the kill).
    const stall = Number(/^ +stall +(\d+) ms/m.exec(stdout)?.[1]);
    const detected = steps.find((s) => s.event === 'takeover.detected')!.ms;
    expect(stall, text).toBeGreaterThanOrEqual(detected - 50);

    // The files, as listed.
    for (const f of ['client.pcap', 'timeline.svg', 'report.txt', 'primary.log', 'backup.log']) {
      expect(existsSync(join(out, f)), f).toBe(true);
      expect(stdout).toContain(join(out, f));
    }
    const report = readFileSync(join(out, 'report.txt'), 'utf8');
    expect(report).toMatch(/SHA-256 match +yes/);
    expect(report).toMatch(/RSTs seen +0\n/);

    // The capture on its own says the same: the whole download, no RST to or from the VIP.
    const pcap = readPcapFile(join(out, 'client.pcap'));
    expect(pcap.ok && !pcap.truncated, pcap.problem).toBe(true);
    const a = analyzeCapture(pcap.tcp, { server: { ip: VIP, port: 80 } });
    expect(a.rsts).toEqual([]);
    expect(a.bytesSeen).toBeGreaterThan(SIZE_MIB * 1024 * 1024);

    // The picture: the data, the kill and the takeover lines, the stall band around the kill, and
    // the takeover after the kill. Positions are compared in pixels (1 px is ~10 ms here), with a
    // few pixels for the primary's last packets that land just after the kill.
    const svg = readFileSync(join(out, 'timeline.svg'), 'utf8');
    expect(svg).toMatch(/<polyline id="series-data"[^>]* points="[\d., ]{100,}"/);
    expect(svg).toMatch(/id="marker-killed-label"[^>]*>primary killed</);
    expect(svg).toMatch(/id="marker-takeover-label"[^>]*>backup took over \(\+\d+ ms\)</);
    expect(svg).toMatch(new RegExp(`id="stall-label"[^>]*>stall ${stall} ms<`));
    const killedX = attr(svg, 'marker-killed', 'x1');
    const takeoverX = attr(svg, 'marker-takeover', 'x1');
    const stallX = attr(svg, 'stall', 'x');
    const stallW = attr(svg, 'stall', 'width');
    expect(takeoverX).toBeGreaterThan(killedX);
    expect(stallX).toBeLessThanOrEqual(killedX + 3);
    expect(stallX + stallW).toBeGreaterThan(killedX);

    // The PNG, where the converter exists: a real PNG of the size asked for, listed with the files.
    const pngFile = join(out, 'timeline.png');
    if (HAVE_RSVG) {
      expect(existsSync(pngFile), `no timeline.png although rsvg-convert exists\n${text}`).toBe(true);
      const png = readFileSync(pngFile);
      expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
      // IHDR, the first chunk: width and height, big-endian, at bytes 16 and 20.
      expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([1200, 600]);
      expect(stdout).toContain(pngFile);
    } else if (!existsSync(pngFile)) {
      // (Another converter, an SVG-capable `convert`, may still have made one.)
      expect(stdout).toMatch(/no PNG/);
    }

    // Torn down: no namespace of this run (the lab's owner is the CLI process), no node still
    // running (their pids are in their logs), and the work directory with the served file gone.
    expect(listLabs().filter((l) => l.ownerPid === c.pid)).toEqual([]);
    const events = ['primary', 'backup'].flatMap((n) => parseNodeLog(readFileSync(join(out, `${n}.log`), 'utf8'), n));
    // (parseNodeLog drops the pid field, so it is read from the raw lines.)
    const nodePids = [...new Set(['primary', 'backup'].flatMap((n) => [...readFileSync(join(out, `${n}.log`), 'utf8').matchAll(/"pid":(\d+)/g)].map((m) => Number(m[1]))))];
    expect(nodePids.length).toBe(2);
    expect(nodePids.filter(alive)).toEqual([]);
    const served = events.find((e) => e.event === 'node.starting')?.fields['service'];
    expect(typeof served === 'string' && served.startsWith('http-static:'), String(served)).toBe(true);
    expect(existsSync(dirname((served as string).slice('http-static:'.length)))).toBe(false);
  }, 240_000);
});
