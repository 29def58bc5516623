// One kill round of the failover bench: a fresh primary/backup pair serving http-static, a curl
// download from the client over a paced link (scripts/lab/pace.ts) with tcpdump on the client's
// interface, the primary SIGKILLed when curl has a chosen share of the file, and what the client
// saw: the stall (from the capture), curl's exit code, the SHA-256 of what it wrote, and RSTs.

import { copyFileSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Lab } from '../../scripts/lab.js';
import { type PacedPort, paceToNode } from '../../scripts/lab/pace.js';
import { controlRequest } from '../../src/control/client.js';
import { analyzeCapture, parseNodeLog, takeoverSteps } from '../../src/demo/analysis.js';
import { sha256File, waitForOutput } from '../../src/demo/io.js';
import { flagString, readPcapFile, TCP_FIN, TCP_RST, type TcpEvent } from '../../src/demo/pcap.js';
import type { Nodes, Timing } from './nodes.js';

export const HTTP_PORT = 80;

export interface ServedFile {
  name: string;
  bytes: number;
  sha256: string;
}

export interface KillPlan {
  file: ServedFile;
  /** Share of the file curl holds when the primary is killed, 0..1. */
  killAt: number;
  /** Loss on both nodes' client links, percent. */
  lossPct: number;
  /** Pace of the client's link (the switch's port towards it), bytes/s. */
  rate: number;
  timing: Timing;
}

export interface KillRound {
  plan: KillPlan;
  /** The longest pause in new data across the kill, ms; undefined when none could be measured. */
  stallMs: number | undefined;
  /** Kill to the first new data byte after the stall, ms. */
  killToResumeMs: number | undefined;
  /** Kill to the backup's takeover.done log line, ms. */
  killToTakeoverMs: number | undefined;
  killedAtBytes: number | undefined;
  curlExit: number | null;
  curlError: string;
  shaOk: boolean;
  bytesReceived: number;
  rsts: number;
  rstLines: string[];
  /** Problems of this round in words (empty when it is clean). */
  problems: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nowUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

/**
 * `evidenceDir`: where a round with a problem leaves the client capture and both nodes' logs (the
 * work directory goes at the end of the run; a failed failover is worth looking at afterwards).
 */
export async function killRound(lab: Lab, nodes: Nodes, dir: string, plan: KillPlan, evidenceDir: string): Promise<KillRound> {
  const problems: string[] = [];
  const { primary, backup } = await nodes.startPair(`http-static:${path.join(dir, 'www')}`, HTTP_PORT, plan.timing);
  const vip = lab.addr.vip;
  // The VIP answers (a 404 is an answer) before the measured download starts.
  await nodes.waitUntil('the VIP answers', primary, async () => {
    const r = await lab.exec('client', 'curl', ['-sS', '--max-time', '2', '-o', '/dev/null', `http://${vip}/nothing`], { allowFailure: true, timeoutMs: 5000 });
    return r.code === 0;
  }, 20_000);
  if (plan.lossPct > 0) {
    // Both nodes: the backup's client link carries the download after the takeover.
    for (const h of [primary, backup]) await controlRequest(h.control, 'fault', { kind: 'loss', pct: plan.lossPct, link: 'client', direction: 'both' });
  }

  const pcapFile = path.join(dir, 'client.pcap');
  const out = path.join(dir, 'download.bin');
  rmSync(pcapFile, { force: true });
  rmSync(out, { force: true });
  // Headers only (-s 128): the analysis needs sequence numbers, not payload.
  const tcpdump = lab.spawn('client', 'tcpdump', ['-i', lab.lanIface, '-n', '-s', '128', '--immediate-mode', '-U', '-Z', 'root', '-w', pcapFile, `tcp port ${HTTP_PORT}`]);
  let paced: PacedPort | undefined;
  try {
    // Paced on the wire, not by curl's reads: the server cannot run ahead into the client's
    // receive buffer, so a kill "at 89%" of what curl holds still has 11% to cross the wire.
    paced = await paceToNode(lab, 'client', plan.rate);
    await waitForOutput(tcpdump, /listening on/, 15_000, 'tcpdump');
    const maxSeconds = Math.ceil((plan.file.bytes / plan.rate) * 3 + 30);
    const curl = lab.spawn('client', 'curl', ['-sS', '--max-time', String(maxSeconds), '-o', out, `http://${vip}/${plan.file.name}`]);
    let curlErr = '';
    curl.stderr?.setEncoding('utf8').on('data', (d: string) => (curlErr += d));
    let curlExit: number | null | undefined;
    const curlDone = new Promise<void>((resolve) =>
      curl.once('exit', (code) => {
        curlExit = code;
        resolve();
      }),
    );

    // Kill on the bytes the client has, not after a delay: the point is "part-way".
    const killBytes = Math.floor(plan.file.bytes * plan.killAt);
    let killedAtUs: number | undefined;
    let killedAtBytes: number | undefined;
    while (curlExit === undefined && killedAtUs === undefined) {
      const have = existsSync(out) ? statSync(out).size : 0;
      if (have >= killBytes) {
        nodes.kill(primary);
        killedAtUs = nowUs();
        killedAtBytes = have;
        break;
      }
      await sleep(2);
    }
    await curlDone;
    if (killedAtUs === undefined) problems.push('the download ended before the kill point');
    // Let the connection's last segments (FIN, ACK) reach the capture before stopping it.
    await sleep(300);
    tcpdump.kill('SIGINT');
    await Promise.race([new Promise((r) => tcpdump.once('exit', r)), sleep(5000)]);

    const received = existsSync(out) ? await sha256File(out) : { hex: '', bytes: 0 };
    const shaOk = received.hex === plan.file.sha256;
    const pcap = readPcapFile(pcapFile);
    if (!pcap.ok || pcap.truncated) problems.push(`capture: ${pcap.problem ?? 'unreadable'}`);
    const done = takeoverSteps(parseNodeLog(nodes.log(backup), 'backup')).find((s) => s.event === 'takeover.done');
    const tookOverUs = done === undefined ? undefined : done.timeMs * 1000;
    if (killedAtUs !== undefined && done === undefined) problems.push('no takeover.done in the backup log');
    // The failover's pause starts at the last new byte the dead primary got out, which is before
    // the takeover completes; a pause starting later than that (plus a few ms of log latency) is
    // the rate limit or loss recovery on the backup, not the failover.
    const analysis = analyzeCapture(pcap.tcp, {
      server: { ip: vip, port: HTTP_PORT },
      ...(killedAtUs === undefined ? {} : { killedAtUs }),
      ...(tookOverUs === undefined ? {} : { searchUntilUs: tookOverUs + 20_000 }),
    });
    const rsts = countedRsts(pcap.tcp);
    if (curlExit !== 0) problems.push(`curl exit ${String(curlExit)}: ${curlErr.trim().split('\n').at(-1) ?? ''}`);
    if (!shaOk) problems.push(`SHA-256 differs (${received.bytes} of ${plan.file.bytes} bytes)`);
    if (rsts.length > 0) problems.push(`${rsts.length} RST(s) on the client's interface (first: ${describeRst(rsts[0]!)})`);
    if (killedAtUs !== undefined && analysis.stall === undefined) problems.push('no stall measurable in the capture');
    if (problems.length > 0) {
      mkdirSync(evidenceDir, { recursive: true });
      for (const [from, to] of [[pcapFile, 'client.pcap'], [primary.logFile, 'primary.log'], [backup.logFile, 'backup.log']] as const)
        if (existsSync(from)) copyFileSync(from, path.join(evidenceDir, to));
      problems.push(`capture and logs kept in ${evidenceDir}`);
    }
    return {
      plan,
      stallMs: analysis.stall?.ms,
      killToResumeMs: analysis.stall === undefined || killedAtUs === undefined ? undefined : (analysis.stall.toUs - killedAtUs) / 1000,
      killToTakeoverMs: tookOverUs === undefined || killedAtUs === undefined ? undefined : (tookOverUs - killedAtUs) / 1000,
      killedAtBytes,
      curlExit: curlExit ?? null,
      curlError: curlErr.trim(),
      shaOk,
      bytesReceived: received.bytes,
      rsts: rsts.length,
      rstLines: rsts.slice(0, 3).map(describeRst),
      problems,
    };
  } finally {
    if (tcpdump.exitCode === null && tcpdump.signalCode === null) tcpdump.kill('SIGKILL');
    await paced?.undo();
    await nodes.stopAll();
    rmSync(out, { force: true });
    rmSync(pcapFile, { force: true });
  }
}

/**
 * RSTs that count: not those answering a segment that arrived after its connection had closed
 * both ways (the client has every byte and both FINs by then, so it cannot notice); the same rule
 * as classifyRsts in test/lab/helpers/capture.ts.
 */
function countedRsts(events: readonly TcpEvent[]): TcpEvent[] {
  const fins = new Map<string, Set<string>>();
  const out: TcpEvent[] = [];
  for (const e of events) {
    const a = `${e.src}:${e.srcPort}`;
    const b = `${e.dst}:${e.dstPort}`;
    const conn = [a, b].sort().join(' ');
    if (e.flags & TCP_FIN) {
      let dirs = fins.get(conn);
      if (dirs === undefined) fins.set(conn, (dirs = new Set()));
      dirs.add(a);
    }
    if ((e.flags & TCP_RST) !== 0 && (fins.get(conn)?.size ?? 0) < 2) out.push(e);
  }
  return out;
}

function describeRst(e: TcpEvent): string {
  return `${new Date(e.timeUs / 1000).toISOString()} ${e.src}:${e.srcPort} > ${e.dst}:${e.dstPort} [${flagString(e.flags)}] seq ${e.seq} ack ${e.ack}`;
}
