// What replication costs in steady state: the same workloads against a replicated primary (backup
// attached, `protected: true`) and against the same node unreplicated (no --role), in the same lab
// and the same run. Bulk: curl of a file from http-static with no rate limit (curl's own
// speed_download). Latency: bench/clients/rr.ts (64-byte round-trips) against the echo service.

import type { Lab } from '../../scripts/lab.js';
import { inNs, run, tsNode } from '../proc.js';
import type { Nodes, Timing } from './nodes.js';
import { HTTP_PORT, type ServedFile } from './stall.js';

export const ECHO_PORT = 7;
export type Mode = 'unreplicated' | 'replicated';

export interface CostRun {
  mode: Mode;
  /** MiB/s of each bulk download. */
  bulkMiBs: number[];
  p50Us: number;
  p99Us: number;
}

export interface CostPlan {
  file: ServedFile;
  bulkReps: number;
  rrCount: number;
  rrWarmup: number;
  timing: Timing;
  www: string;
}

export async function costRun(lab: Lab, nodes: Nodes, mode: Mode, plan: CostPlan, progress: (m: string) => void): Promise<CostRun> {
  const bulkMiBs: number[] = [];
  try {
    await start(nodes, mode, `http-static:${plan.www}`, HTTP_PORT, plan.timing);
    for (let i = 0; i < plan.bulkReps; i++) {
      const r = await lab.exec('client', 'curl', ['-sS', '--max-time', '120', '-o', '/dev/null', '-w', '%{speed_download} %{size_download}', `http://${lab.addr.vip}/${plan.file.name}`], { timeoutMs: 130_000, allowFailure: true });
      const [speed, size] = r.stdout.trim().split(' ').map(Number);
      if (r.code !== 0 || size !== plan.file.bytes) throw new Error(`${mode} bulk download: curl exit ${r.code}, ${size} bytes: ${r.stderr.trim()}`);
      bulkMiBs.push(speed! / (1024 * 1024));
      progress(`  ${mode.padEnd(12)} bulk #${i + 1}: ${(speed! / (1024 * 1024)).toFixed(1)} MiB/s`);
    }
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
    return { mode, bulkMiBs, p50Us: res.p50Us, p99Us: res.p99Us };
  } finally {
    await nodes.stopAll();
  }
}

async function start(nodes: Nodes, mode: Mode, service: string, port: number, timing: Timing): Promise<void> {
  if (mode === 'replicated') {
    const { primary } = await nodes.startPair(service, port, timing);
    const s = await nodes.status(primary);
    if (s?.protected !== true) throw new Error(`replicated primary not protected: ${JSON.stringify(s)}`);
  } else {
    await nodes.startSolo(service, port);
  }
}
