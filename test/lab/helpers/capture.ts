// Packet capture on a lab interface with tcpdump, for assertions such as "the client saw no RST".
// The capture is ready only once tcpdump says it is listening, so nothing sent after start()
// resolves can be missed.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inNs, run, Service } from '../../../bench/proc.js';

export interface CaptureOptions {
  /** Namespace whose interface to capture on. */
  ns: string;
  iface: string;
  /** A pcap filter expression, e.g. RST_FILTER. */
  filter: string;
  /** A label for messages and the process name. */
  label?: string;
}

export interface CaptureResult {
  /**
   * Packets in the capture file that match the filter; with RST_FILTER, the RSTs that count (not
   * those answering a segment that arrived after its connection had closed both ways).
   */
  packets: number;
  /** Their one-line summaries (first 50), for failure messages. */
  lines: string[];
  /** RSTs sent after both FINs of their connection had crossed the wire (see classifyRsts). */
  afterClose: string[];
}

/** RSTs, and the FINs that tell a RST answering a stale segment from one that kills a connection. */
export const RST_FILTER = 'tcp[tcpflags] & (tcp-rst|tcp-fin) != 0';

interface SummaryLine {
  line: string;
  /** Unordered endpoints, so both directions of a connection share it. */
  conn: string;
  /** Direction: "src>dst". */
  dir: string;
  rst: boolean;
  fin: boolean;
}

function parseSummary(line: string): SummaryLine | undefined {
  const m = /^\S+ IP (\S+) > (\S+): Flags \[([^\]]*)\]/.exec(line);
  if (m === null) return undefined;
  const src = m[1]!;
  const dst = m[2]!.replace(/:$/, '');
  const flags = m[3]!;
  return {
    line,
    conn: [src, dst].sort().join(' '),
    dir: `${src}>${dst}`,
    rst: flags.includes('R'),
    fin: flags.includes('F'),
  };
}

/**
 * Splits RSTs into those that count and those sent after their connection had closed in both
 * directions. A delayed or reordered segment (the fault links hold packets back on purpose) can
 * reach a node after the connection is gone, and RFC 9293 3.10.7.1 then calls for a RST; the
 * client has by then received every byte and the server's FIN, so it cannot notice anything.
 */
export function classifyRsts(lines: readonly string[]): { counted: string[]; afterClose: string[] } {
  const finDirs = new Map<string, Set<string>>();
  const counted: string[] = [];
  const afterClose: string[] = [];
  for (const line of lines) {
    const p = parseSummary(line);
    if (p === undefined) {
      counted.push(line);
      continue;
    }
    if (p.fin) {
      let dirs = finDirs.get(p.conn);
      if (dirs === undefined) finDirs.set(p.conn, (dirs = new Set()));
      dirs.add(p.dir);
    }
    if (!p.rst) continue;
    if ((finDirs.get(p.conn)?.size ?? 0) >= 2) afterClose.push(line);
    else counted.push(line);
  }
  return { counted, afterClose };
}

export class Capture {
  private constructor(
    private readonly proc: Service,
    readonly file: string,
    private readonly dir: string,
    private readonly filter: string,
  ) {}

  static async start(opts: CaptureOptions): Promise<Capture> {
    const dir = mkdtempSync(path.join(tmpdir(), 'understudy-cap-'));
    const file = path.join(dir, 'capture.pcap');
    // --immediate-mode and -U hand each packet to the file as it comes (the default ring buffer
    // holds packets up to a second); -Z root because Debian's tcpdump otherwise drops to the tcpdump
    // user, who cannot write into our root-owned directory.
    const argv = inNs(opts.ns, [
      'tcpdump', '-i', opts.iface, '-n', '--immediate-mode', '-U', '-Z', 'root', '-w', file, opts.filter,
    ]);
    const proc = new Service(`tcpdump ${opts.label ?? opts.iface}`, argv);
    try {
      await proc.waitFor(/listening on/, 15_000);
    } catch (e) {
      await proc.stop(500);
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    return new Capture(proc, file, dir, opts.filter);
  }

  /** Stops tcpdump once it has written everything the kernel matched, and reads the file back. */
  async stop(): Promise<CaptureResult> {
    await this.drain(3000);
    await this.proc.stop(3000);
    // All of it: run() keeps the last megabyte by default, and at thousands of connections the
    // FINs alone pass that; the cut first line then parsed as nothing and counted as a RST.
    const r = await run(['tcpdump', '-n', '-tt', '-r', this.file], { timeoutMs: 30_000, maxOutput: Infinity });
    // An empty capture file still has a header; tcpdump reads it fine and prints nothing.
    if (r.code !== 0) throw new Error(`tcpdump -r ${this.file} failed (${r.code}): ${r.stderr.trim()}`);
    const all = r.stdout.split('\n').filter((l) => l.trim() !== '');
    if (this.filter !== RST_FILTER) return { packets: all.length, lines: all.slice(0, 50), afterClose: [] };
    const { counted, afterClose } = classifyRsts(all);
    return { packets: counted.length, lines: counted.slice(0, 50), afterClose };
  }

  /**
   * Waits until tcpdump has taken every packet the kernel's filter matched, so that a packet that
   * arrived just before stop() is not lost. SIGUSR1 makes tcpdump print its counters on Linux.
   */
  private async drain(timeoutMs: number): Promise<void> {
    const pid = this.proc.child.pid;
    if (pid === undefined || !this.proc.running) return;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const before = this.proc.stderr.length;
      try {
        process.kill(pid, 'SIGUSR1');
      } catch {
        return;
      }
      while (this.proc.stderr.length === before && Date.now() < deadline) await sleep(20);
      const stats = lastStats(this.proc.stderr);
      if (stats !== undefined && stats.captured >= stats.matched) return;
      await sleep(50);
    }
  }

  /** Stops if still running and deletes the file. Safe to call more than once. */
  async dispose(): Promise<void> {
    await this.proc.stop(1000);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A failure message listing the RSTs a capture saw. */
export function describeRsts(step: string, r: CaptureResult): string {
  const extra = r.afterClose.length > 0 ? `\n(and ${r.afterClose.length} after their connection closed)` : '';
  return `${step}: the client's interface saw ${r.packets} RST segment(s):\n${r.lines.join('\n')}${extra}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function lastStats(stderr: string): { captured: number; matched: number } | undefined {
  const cap = [...stderr.matchAll(/(\d+) packets? captured/g)].at(-1);
  const rec = [...stderr.matchAll(/(\d+) packets? received by filter/g)].at(-1);
  if (cap === undefined || rec === undefined) return undefined;
  return { captured: Number(cap[1]), matched: Number(rec[1]) };
}
