// `npm run bench`: Linux TCP against understudy, same client, same lab, same run.
//
// Builds a lab (client and primary namespaces), starts the baseline server (Node `net` on the
// primary's own address) and the understudy server (our stack on the VIP through a TUN in the same
// namespace), then runs each client against both, alternating sides so that drift on the shared
// machine hits both columns alike. Prints a table with the ratio and prepends the run to
// bench/RESULTS.md.
//
// Flags: --quick (about 30 s), --only linux|understudy, --no-write (leave RESULTS.md alone),
//        --tests download,upload,rr,cps (a subset), --no-offload (understudy's TUN without the
//        virtio-net offloads), --profile DIR (V8 CPU profile of the understudy server, for chrome://inspect or speedscope),
//        --client-ns/--server-ns/--server-ip/--vip (use existing namespaces instead of a lab).

import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { flags } from './clients/common.js';
import { cpuSeconds } from './cpu.js';
import { openBenchLab, prepareClient, type BenchLab } from './lab-env.js';
import { inNs, killTree, REPO_ROOT, run, Service, tsNode } from './proc.js';
import { errorNotes, markdownTable, median, textTable, type Measurement, type Side } from './results.js';

const argv = process.argv.slice(2);
const f = flags(argv);
const quick = f.has('quick');
const only = f.get('only') as Side | undefined;
const sides: Side[] = only === undefined ? ['linux', 'understudy'] : [only];
const profileDir = f.get('profile');

const plan = quick
  ? { bulkSeconds: 2, bulkReps: 1, rrCount: 5_000, rrWarmup: 1_000, rrReps: 1, cpsSeconds: 1, cpsParallel: 8 }
  : { bulkSeconds: 5, bulkReps: 3, rrCount: 20_000, rrWarmup: 2_000, rrReps: 3, cpsSeconds: 3, cpsParallel: 8 };

type ClientResult = Record<string, number | string | undefined> & { error?: string; seconds?: number };

interface BenchDef {
  name: string;
  script: string;
  args: string[];
  reps: number;
  timeoutMs: number;
  /** Row label to value. */
  rows: Record<string, (r: ClientResult) => number>;
  higherIsBetter: boolean;
}

const allDefs: BenchDef[] = [
  {
    name: 'download',
    script: 'bench/clients/download.ts',
    args: ['--seconds', String(plan.bulkSeconds)],
    reps: plan.bulkReps,
    timeoutMs: plan.bulkSeconds * 1000 + 30_000,
    rows: { 'bulk download, 1 connection (Gbit/s)': (r) => Number(r.gbps) },
    higherIsBetter: true,
  },
  {
    name: 'upload',
    script: 'bench/clients/upload.ts',
    args: ['--seconds', String(plan.bulkSeconds)],
    reps: plan.bulkReps,
    timeoutMs: plan.bulkSeconds * 1000 + 30_000,
    rows: { 'bulk upload, 1 connection (Gbit/s)': (r) => Number(r.gbps) },
    higherIsBetter: true,
  },
  {
    name: 'request/response',
    script: 'bench/clients/rr.ts',
    args: ['--count', String(plan.rrCount), '--warmup', String(plan.rrWarmup), '--size', '64'],
    // Latency on a shared 2-core machine swings with scheduling; the median of a few runs is steadier.
    reps: plan.rrReps,
    timeoutMs: 120_000,
    rows: {
      [`64 B request/response p50 (us), ${plan.rrCount} sequential`]: (r) => Number(r.p50Us),
      [`64 B request/response p99 (us), ${plan.rrCount} sequential`]: (r) => Number(r.p99Us),
    },
    higherIsBetter: false,
  },
  {
    name: 'connections, sequential',
    script: 'bench/clients/cps.ts',
    args: ['--parallel', '1', '--seconds', String(plan.cpsSeconds), '--count', '20000'],
    reps: 1,
    timeoutMs: plan.cpsSeconds * 1000 + 60_000,
    rows: { 'new connections/s, sequential (64 B exchange)': (r) => Number(r.perSecond) },
    higherIsBetter: true,
  },
  {
    name: `connections, ${plan.cpsParallel} parallel`,
    script: 'bench/clients/cps.ts',
    args: ['--parallel', String(plan.cpsParallel), '--seconds', String(plan.cpsSeconds), '--count', '20000'],
    reps: 1,
    timeoutMs: plan.cpsSeconds * 1000 + 60_000,
    rows: { [`new connections/s, ${plan.cpsParallel} in parallel`]: (r) => Number(r.perSecond) },
    higherIsBetter: true,
  },
];

/** Short names for --tests. */
const TEST_KEYS: Record<string, string[]> = {
  download: ['download'],
  upload: ['upload'],
  rr: ['request/response'],
  cps: ['connections, sequential', `connections, ${plan.cpsParallel} parallel`],
};
const wanted = f.get('tests')?.split(',');
for (const w of wanted ?? []) if (TEST_KEYS[w] === undefined) throw new Error(`--tests: unknown ${w} (expected ${Object.keys(TEST_KEYS).join(', ')})`);
const defs = wanted === undefined ? allDefs : allDefs.filter((d) => wanted.some((w) => TEST_KEYS[w]!.includes(d.name)));

const started = Date.now();
const loadAtStart = os.loadavg().map((v) => v.toFixed(2)).join(' ');
function progress(msg: string): void {
  process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${msg}\n`);
}

interface Target {
  side: Side;
  host: string;
  server: Service | undefined;
  /** Why this side cannot be measured, if it cannot. */
  down?: string;
}

async function runClient(lab: BenchLab, t: Target, def: BenchDef): Promise<{ result?: ClientResult; cpu?: number; error?: string }> {
  if (t.down !== undefined) return { error: t.down };
  if (t.server !== undefined && !t.server.running) {
    t.down = `server exited before this measurement\n${t.server.tail(10)}`;
    return { error: t.down };
  }
  const pid = t.server?.child.pid;
  const cpu0 = cpuSeconds(pid);
  const r = await run(inNs(lab.clientNs, tsNode(def.script, ['--host', t.host, ...def.args, '--timeout-ms', String(def.timeoutMs)])), {
    timeoutMs: def.timeoutMs + 15_000,
  });
  const cpu1 = cpuSeconds(pid);
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  let result: ClientResult;
  try {
    result = JSON.parse(last) as ClientResult;
  } catch {
    return { error: `client printed no result (exit ${r.code}${r.timedOut ? ', killed after timeout' : ''}): ${r.stderr.trim().slice(-300)}` };
  }
  if (result.error !== undefined) return { error: String(result.error) };
  const secs = typeof result.seconds === 'number' ? result.seconds : undefined;
  const cpu = cpu0 !== undefined && cpu1 !== undefined && secs !== undefined && secs > 0 ? ((cpu1 - cpu0) / secs) * 100 : undefined;
  return { result, cpu };
}

async function measure(lab: BenchLab, targets: Target[], def: BenchDef): Promise<Measurement[]> {
  const rows: Measurement[] = Object.keys(def.rows).map((label) => ({
    label,
    values: {},
    runs: {},
    cpu: {},
    errors: {},
    warnings: {},
    higherIsBetter: def.higherIsBetter,
  }));
  const cpus: Partial<Record<Side, number[]>> = {};
  for (let rep = 0; rep < def.reps; rep++) {
    for (const t of targets) {
      if (interrupted) return rows;
      if (rows[0]!.errors[t.side] !== undefined) continue;
      const { result, cpu, error } = await runClient(lab, t, def);
      const tag = `${def.name.padEnd(24)} ${t.side.padEnd(10)} #${rep + 1}`;
      if (error !== undefined || result === undefined) {
        progress(`${tag}: FAILED: ${(error ?? '').split('\n')[0]}`);
        for (const row of rows) row.errors[t.side] = error ?? 'no result';
        continue;
      }
      const parts: string[] = [];
      Object.values(def.rows).forEach((extract, i) => {
        const v = extract(result);
        (rows[i]!.runs[t.side] ??= []).push(v);
        parts.push(`${rows[i]!.label.split(' (')[0]}=${v.toFixed(2)}`);
      });
      if (cpu !== undefined) (cpus[t.side] ??= []).push(cpu);
      if (typeof result.failed === 'number' && result.failed > 0) {
        const w = `${result.failed} connection(s) failed, first: ${String(result.firstError)}`;
        for (const row of rows) row.warnings[t.side] = w;
        parts.push(w);
      }
      progress(`${tag}: ${parts.join(', ')}${cpu === undefined ? '' : `, server CPU ${cpu.toFixed(0)}%`}`);
    }
  }
  for (const row of rows)
    for (const side of sides) {
      const runs = row.runs[side];
      if (runs !== undefined && runs.length > 0 && row.errors[side] === undefined) row.values[side] = median(runs);
      const c = cpus[side];
      if (c !== undefined && c.length > 0) row.cpu[side] = median(c);
    }
  return rows;
}

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `nproc ${os.availableParallelism()}, ${cpu}, Linux ${os.release()}, Node ${process.version}`;
}

function writeResults(rows: Measurement[], lab: BenchLab, understudyStats: string | undefined): void {
  const file = path.join(REPO_ROOT, 'bench', 'RESULTS.md');
  const header = [
    '# Benchmark results',
    '',
    'Newest first. Each run: `npm run bench` (bench/run.ts); the figures are medians over the repetitions listed under the table.',
    '',
    "Server CPU is the server process's user+system time over the measured interval, in percent of one core. It is not a like-for-like cost: a write() to the TUN device runs the kernel's forwarding and delivery of that packet inside understudy's system call, so understudy is charged for kernel work that for Linux TCP mostly runs in softirq context, charged to nobody here.",
    '',
  ].join('\n');
  const previous = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const older = previous.includes('\n## ') ? previous.slice(previous.indexOf('\n## ') + 1) : '';
  // The header is rewritten each time, so edits to it above reach old files too.
  const reps = rows
    .map((m) => `- ${m.label}: ${sides.map((s) => `${s} ${(m.runs[s] ?? []).map((v) => v.toFixed(3)).join(', ') || '-'}`).join('; ')}`)
    .join('\n');
  const notes = errorNotes(rows).map((n) => `- ${n.replace(/\n/g, ' ').slice(0, 500)}`);
  const section = [
    `## ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}${quick ? ' (quick)' : ''}`,
    '',
    `- command: \`npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}\``,
    `- machine: ${machine()}; load average at start ${loadAtStart} (other work on the machine shows up as noise)`,
    `- lab: ${lab.describe}; Linux server on ${lab.serverIp}, understudy on VIP ${lab.vip} (TUN offloads ${f.has('no-offload') ? 'off' : 'on, the default'})`,
    `- plan: bulk ${plan.bulkSeconds} s x ${plan.bulkReps}, ${plan.rrCount} round-trips after ${plan.rrWarmup} warm-up x ${plan.rrReps}, connections ${plan.cpsSeconds} s per mode`,
    '',
    markdownTable(rows),
    '',
    ...(targetVerdict(rows) !== undefined ? [targetVerdict(rows)!, ''] : []),
    'Repetitions:',
    '',
    reps,
    ...(notes.length > 0 ? ['', 'Failures:', '', ...notes] : []),
    ...(understudyStats !== undefined ? ['', `understudy server at exit: \`${understudyStats}\``, '', batchSummary(understudyStats)] : []),
    '',
  ].join('\n');
  writeFileSync(file, `${header}\n${section}\n${older}`);
  progress(`wrote ${path.relative(process.cwd(), file)}`);
}

/** What an interrupted run must take down: its servers and its lab (whose namespaces hold the rest). */
const cleanup: { servers: Service[]; lab: BenchLab | undefined } = { servers: [], lab: undefined };
let interrupted = false;

function onSignal(signal: NodeJS.Signals): void {
  if (interrupted) return;
  interrupted = true;
  progress(`${signal}: stopping servers and removing the lab`);
  // Synchronous first steps: a wrapper (npm, tsx) may kill this process soon after the signal.
  for (const s of cleanup.servers) killTree(s.child, 'SIGKILL');
  const force = setTimeout(() => process.exit(130), 10_000);
  void Promise.resolve(cleanup.lab?.destroy())
    .catch((e: unknown) => process.stderr.write(`cleanup failed: ${String(e)}\n`))
    .finally(() => {
      clearTimeout(force);
      process.exit(130);
    });
}

/** Packets per TUN wake-up and how much the offloads merged: what amortises the per-packet cost. */
function batchSummary(statsLine: string): string {
  interface TunStatsLine {
    rxPackets: number;
    rxBatches: number;
    txPackets: number;
    txDropped: number;
    txGso?: number;
    txGsoSegments?: number;
    rxGso?: number;
  }
  try {
    const t = (JSON.parse(statsLine) as { stats: { tun: TunStatsLine } }).stats.tun;
    const perWake = (t.rxPackets / Math.max(1, t.rxBatches)).toFixed(1);
    const gso =
      t.txGso === undefined
        ? ''
        : `; offloads: ${t.txGso} GSO writes carrying ${t.txGsoSegments ?? 0} segments, ${t.rxGso ?? 0} super-segments read`;
    return `TUN: ${t.rxPackets} packets read in ${t.rxBatches} wake-ups (${perWake} per wake-up), ${t.txPackets} segments written, ${t.txDropped} dropped on write${gso}`;
  } catch {
    return '';
  }
}

/** The project's target: at least 1 Gbit/s per direction over one connection for understudy. */
function targetVerdict(rows: Measurement[]): string | undefined {
  const bulk = rows.filter((r) => r.label.startsWith('bulk '));
  if (bulk.length === 0 || !sides.includes('understudy')) return undefined;
  const parts = bulk.map((r) => {
    const v = r.values.understudy;
    const dir = r.label.split(',')[0]!.replace('bulk ', '');
    return v === undefined ? `${dir} not measured` : `${dir} ${v.toFixed(2)} Gbit/s ${v >= 1 ? 'meets' : 'misses'} it`;
  });
  return `target >= 1 Gbit/s per direction over one connection: ${parts.join('; ')}`;
}

async function main(): Promise<number> {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
  progress(`bench ${quick ? '(quick) ' : ''}on ${machine()}, load average ${loadAtStart}`);
  const lab = await openBenchLab(f);
  cleanup.lab = lab;
  const servers = cleanup.servers;
  let understudyStats: string | undefined;
  let rows: Measurement[] = [];
  try {
    progress(`lab: ${lab.describe}`);
    await prepareClient(lab);
    const targets: Target[] = [];
    if (sides.includes('linux')) {
      const s = new Service('linux-server', inNs(lab.serverNs, tsNode('bench/servers/linux-server.ts', [lab.serverIp])));
      servers.push(s);
      const t: Target = { side: 'linux', host: lab.serverIp, server: s };
      try {
        await s.waitFor(/"ready":true/, 30_000);
      } catch (e) {
        t.down = e instanceof Error ? e.message : String(e);
      }
      targets.push(t);
    }
    if (sides.includes('understudy')) {
      const s = new Service(
        'understudy-server',
        inNs(
          lab.serverNs,
          tsNode(
            'bench/servers/understudy-server.ts',
            [
              '--vip',
              lab.vip,
              '--tun',
              'usbench0',
              ...(lab.lanIface === undefined ? [] : ['--lan', lab.lanIface]),
              ...(f.has('no-offload') ? ['--no-offload'] : []),
            ],
            profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profileDir)}`],
          ),
        ),
      );
      servers.push(s);
      const t: Target = { side: 'understudy', host: lab.vip, server: s };
      try {
        await s.waitFor(/"ready":true/, 30_000);
      } catch (e) {
        t.down = e instanceof Error ? e.message : String(e);
        progress(`understudy server did not start: ${t.down.split('\n')[0]}`);
      }
      targets.push(t);
    }
    progress(`servers up: ${targets.map((t) => `${t.side} ${t.down === undefined ? 'ready' : 'DOWN'}`).join(', ')}`);
    for (const def of defs) rows.push(...(await measure(lab, targets, def)));
  } finally {
    // An interrupted run is taken down by onSignal, which also exits; report nothing half-done.
    if (interrupted) await new Promise<never>(() => undefined);
    for (const s of servers) {
      await s.stop();
      if (s.name === 'understudy-server') understudyStats = s.stdout.split('\n').find((l) => l.startsWith('{"stats"'));
    }
    await lab.destroy();
  }
  process.stdout.write(`\n${textTable(rows)}\n`);
  const verdict = targetVerdict(rows);
  if (verdict !== undefined) process.stdout.write(`\n${verdict}\n`);
  for (const n of errorNotes(rows)) process.stdout.write(`\nFAILED ${n.split('\n').slice(0, 6).join('\n  ')}\n`);
  if (understudyStats !== undefined) process.stdout.write(`\nunderstudy server: ${understudyStats}\n${batchSummary(understudyStats)}\n`);
  if (profileDir !== undefined) progress(`CPU profile of the understudy server in ${profileDir}`);
  if (!f.has('no-write')) writeResults(rows, lab, understudyStats);
  progress('done');
  return rows.some((r) => Object.keys(r.errors).length > 0) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(2);
  },
);
