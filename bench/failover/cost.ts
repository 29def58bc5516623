// What replication costs in steady state: the same workloads against a replicated primary (backup
// attached, `protected: true`) and against the same node unreplicated (no --role), in the same lab
// and the same run. Bulk: curl of a file from http-static with no rate limit (curl's own
// speed_download). Latency: bench/clients/rr.ts (64-byte round-trips) against the echo service.

import type { Lab } from '../../scripts/lab.js';
import type { LinkStats } from '../../src/tun/link.js';
import { cpuSeconds, threadCpuSeconds, type ThreadSplit } from '../cpu.js';
import { inNs, run, tsNode } from '../proc.js';
import type { NodeHandle, Nodes, Status, Timing } from './nodes.js';
import { HTTP_PORT, type ServedFile } from './stall.js';

export const ECHO_PORT = 7;
export type Mode = 'unreplicated' | 'replicated';

export interface CostRun {
  mode: Mode;
  /** MiB/s of each bulk download. */
  bulkMiBs: number[];
  /**
   * CPU time (user + system, from /proc) per MiB downloaded over the bulk downloads: the serving
   * node, and the backup when replicated. Less noisy than MiB/s on a shared machine.
   */
  cpuMsPerMiB: { server?: number; backup?: number };
  /** Replication frames per MiB downloaded, primary to backup (records) and back (acks, heartbeats). */
  framesPerMiB?: { toBackup: number; toPrimary: number; packetsWaited: number };
  p50Us: number;
  p99Us: number;
}

export interface CostPlan {
  file: ServedFile;
  bulkReps: number;
  /** Bytes downloaded before the measured downloads, counted nowhere (JIT warm-up of fresh nodes). */
  warmupBytes: number;
  rrCount: number;
  rrWarmup: number;
  timing: Timing;
  www: string;
  /** curl --limit-rate for the bulk downloads (e.g. 60M): CPU per MiB at a rate both modes reach. */
  limitRate?: string;
  /**
   * One core per host, as the deployment has (ARCHITECTURE.md 1: primary and backup on separate
   * hosts): the serving node on CPU 0, the backup and the client on CPU 1 (taskset). The backup
   * then competes with curl, not with the primary; the unreplicated node has CPU 0 alone too.
   */
  pin?: boolean;
}

export async function costRun(lab: Lab, nodes: Nodes, mode: Mode, plan: CostPlan, progress: (m: string) => void): Promise<CostRun> {
  const bulkMiBs: number[] = [];
  const cpuMsPerMiB: CostRun['cpuMsPerMiB'] = {};
  let framesPerMiB: CostRun['framesPerMiB'];
  try {
    const { server, backup } = await start(nodes, mode, `http-static:${plan.www}`, HTTP_PORT, plan.timing);
    if (plan.pin === true) {
      await pinTo(server, 0);
      if (backup !== undefined) await pinTo(backup, 1);
    }
    // Downloads first, not counted: a freshly started node spends its first few hundred MiB
    // compiling its hot paths (TurboFan on V8's worker threads, ~0.8 ms/MiB of a replicating
    // primary's CPU in session 4's perf runs), which a daemon that serves for hours does once.
    // A replicating pair takes longer: its per-message code (sealing, digests, acknowledgements)
    // runs a few times per MiB, so V8 reaches it late. With 384 MiB of warm-up (session 4) the
    // primary and the backup were each still compiling about 50 functions during the measured
    // downloads, the unreplicated node none (--trace-opt, session 5). The rr half below has its
    // own warm-up round-trips for the same reason.
    for (let done = 0; done < plan.warmupBytes; done += plan.file.bytes) await bulkDownload(lab, mode, plan);
    const cpu0 = [cpuSeconds(server.child.pid), cpuSeconds(backup?.child.pid)];
    const split0 = [threadCpuSeconds(server.child.pid), threadCpuSeconds(backup?.child.pid)];
    const st0 = await nodes.status(server);
    const frames0 = framesOf(st0);
    const tun0 = tunOf(st0);
    for (let i = 0; i < plan.bulkReps; i++) {
      const speed = await bulkDownload(lab, mode, plan);
      bulkMiBs.push(speed);
      progress(`  ${mode.padEnd(12)} bulk #${i + 1}: ${speed.toFixed(1)} MiB/s`);
    }
    const mib = (plan.bulkReps * plan.file.bytes) / (1024 * 1024);
    const cpu1 = [cpuSeconds(server.child.pid), cpuSeconds(backup?.child.pid)];
    const split1 = [threadCpuSeconds(server.child.pid), threadCpuSeconds(backup?.child.pid)];
    const perMiB = (i: number): number | undefined => (cpu0[i] !== undefined && cpu1[i] !== undefined ? ((cpu1[i]! - cpu0[i]!) * 1000) / mib : undefined);
    cpuMsPerMiB.server = perMiB(0);
    cpuMsPerMiB.backup = perMiB(1);
    const st1 = await nodes.status(server);
    const frames1 = framesOf(st1);
    const tun1 = tunOf(st1);
    if (frames0 !== undefined && frames1 !== undefined) {
      const waited = frames1.waited - frames0.waited;
      const all = waited + frames1.passed - frames0.passed;
      framesPerMiB = { toBackup: (frames1.sent - frames0.sent) / mib, toPrimary: (frames1.received - frames0.received) / mib, packetsWaited: all > 0 ? waited / all : 0 };
    }
    progress(
      `  ${mode.padEnd(12)} CPU ms/MiB: server ${cpuMsPerMiB.server?.toFixed(2) ?? '-'}${backup === undefined ? '' : `, backup ${cpuMsPerMiB.backup?.toFixed(2) ?? '-'}`}` +
        (framesPerMiB === undefined ? '' : `; frames/MiB to backup ${framesPerMiB.toBackup.toFixed(1)}, back ${framesPerMiB.toPrimary.toFixed(1)}; packets that waited for the backup ${(100 * framesPerMiB.packetsWaited).toFixed(0)}%; message commit time ${frames1?.commit ?? '-'}`) +
        (tun0 === undefined || tun1 === undefined ? '' : `; tun per MiB: ${((tun1.rxBatches - tun0.rxBatches) / mib).toFixed(0)} wake-ups reading ${((tun1.rxPackets - tun0.rxPackets) / mib).toFixed(0)} packets, ${((tun1.writes - tun0.writes) / mib).toFixed(0)} writes`),
    );
    progress(`  ${mode.padEnd(12)} CPU ms/MiB by thread (user/system): server ${splitPerMiB(split0[0], split1[0], mib)}${backup === undefined ? '' : `; backup ${splitPerMiB(split0[1], split1[1], mib)}`}`);
  } finally {
    await nodes.stopAll();
  }
  try {
    await start(nodes, mode, 'echo', ECHO_PORT, plan.timing);
    const argv = tsNode('bench/clients/rr.ts', ['--host', lab.addr.vip, '--port', String(ECHO_PORT), '--count', String(plan.rrCount), '--warmup', String(plan.rrWarmup), '--size', '64', '--timeout-ms', '120000']);
    const r = await run(inNs(lab.ns.client, argv), { timeoutMs: 135_000 });
    const res = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { p50Us?: number; p99Us?: number; error?: string };
    if (res.error !== undefined || res.p50Us === undefined || res.p99Us === undefined) throw new Error(`${mode} rr: ${res.error ?? r.stderr.slice(-300)}`);
    progress(`  ${mode.padEnd(12)} 64 B rr: p50 ${res.p50Us.toFixed(1)} us, p99 ${res.p99Us.toFixed(1)} us`);
    return { mode, bulkMiBs, cpuMsPerMiB, ...(framesPerMiB === undefined ? {} : { framesPerMiB }), p50Us: res.p50Us, p99Us: res.p99Us };
  } finally {
    await nodes.stopAll();
  }
}

/** One curl of the plan's file from the VIP; its speed in MiB/s (curl's speed_download). */
async function bulkDownload(lab: Lab, mode: Mode, plan: CostPlan): Promise<number> {
  const curl = plan.pin === true ? ['taskset', ['-c', '1', 'curl']] as const : ['curl', []] as const;
  const r = await lab.exec('client', curl[0], [...curl[1], '-sS', ...(plan.limitRate === undefined ? [] : ['--limit-rate', plan.limitRate]), '--max-time', '120', '-o', '/dev/null', '-w', '%{speed_download} %{size_download}', `http://${lab.addr.vip}/${plan.file.name}`], { timeoutMs: 130_000, allowFailure: true });
  const [speed, size] = r.stdout.trim().split(' ').map(Number);
  if (r.code !== 0 || size !== plan.file.bytes) throw new Error(`${mode} bulk download: curl exit ${r.code}, ${size} bytes: ${r.stderr.trim()}`);
  return speed! / (1024 * 1024);
}

async function start(nodes: Nodes, mode: Mode, service: string, port: number, timing: Timing): Promise<{ server: NodeHandle; backup?: NodeHandle }> {
  if (mode === 'replicated') {
    const { primary, backup } = await nodes.startPair(service, port, timing);
    const s = await nodes.status(primary);
    if (s?.protected !== true) throw new Error(`replicated primary not protected: ${JSON.stringify(s)}`);
    return { server: primary, backup };
  }
  return { server: await nodes.startSolo(service, port) };
}

/** Every thread of a node process (and those it starts later, which inherit it) on one CPU. */
async function pinTo(h: NodeHandle, cpu: number): Promise<void> {
  const pid = h.child.pid;
  if (pid === undefined) throw new Error(`${h.role}: no pid to pin`);
  await run(['taskset', '-a', '-p', '-c', String(cpu), String(pid)], { timeoutMs: 5000 });
}

/** `main u/s + others u/s` in CPU ms per MiB between two readings. */
function splitPerMiB(a: ThreadSplit | undefined, b: ThreadSplit | undefined, mib: number): string {
  if (a === undefined || b === undefined) return '-';
  const f = (x: number, y: number): string => (((y - x) * 1000) / mib).toFixed(2);
  return `main ${f(a.main.user, b.main.user)}/${f(a.main.sys, b.main.sys)}, other threads ${f(a.others.user, b.others.user)}/${f(a.others.sys, b.others.sys)}`;
}

/**
 * The client-side TUN's counters in a status: wake-ups that read packets, and writes (a TSO
 * super-packet is one write for all its segments), to compare the serving node's turns per MiB.
 */
function tunOf(st: Status | null): { rxBatches: number; rxPackets: number; writes: number } | undefined {
  const s = st?.links?.find((l) => l.name === 'client')?.stats as (LinkStats & { txGso?: number; txGsoSegments?: number }) | undefined;
  if (s === undefined) return undefined;
  return { rxBatches: s.rxBatches, rxPackets: s.rxPackets, writes: s.txPackets - (s.txGsoSegments ?? 0) + (s.txGso ?? 0) };
}

/** The primary's replication frame counts in a status (undefined on an unreplicated node). */
function framesOf(st: Status | null): { sent: number; received: number; waited: number; passed: number; commit: string } | undefined {
  const link = st?.links?.find((l) => l.name === 'replication');
  const p = st?.replication?.lag?.packets;
  const c = st?.replication?.lag?.commit;
  const commit = c === undefined || c === null ? '-' : `p50 ${c.p50Us} us, p99 ${c.p99Us} us, max ${c.maxUs} us over the last ${c.samples} messages`;
  return link === undefined ? undefined : { sent: link.stats.txPackets, received: link.stats.rxPackets, waited: p?.waited ?? 0, passed: p?.passed ?? 0, commit };
}
