// `npm run bench:failover`: the figures of issue 3, measured in a namespace lab with real Linux
// clients. Not a test: nothing here asserts a time; it measures, prints and records.
//
// 1. Stall: N kills with the default failure detection (heartbeat 50 ms, dead-after 300 ms) and N
//    with --heartbeat 20 --dead-after 100. Each kill: a fresh primary/backup pair (same lab), a
//    rate-limited curl download of a random file (sizes 32-128 MiB), the primary SIGKILLed at a
//    uniformly random 10-90% of the bytes received, and from a capture of the client's interface
//    the longest pause in new data across the kill; curl's exit code, the SHA-256 and RSTs are
//    checked per round. Some rounds add 1-2% loss on both nodes' client links.
// 2. Replication cost: bulk download throughput and 64-byte request/response latency of a
//    replicated primary against the same node unreplicated, interleaved in the same run, in two
//    placements on this 2-core machine. "One core per host" (taskset): the serving node on CPU 0,
//    the backup and curl on CPU 1 -- a replicated primary gets the CPU an unreplicated node gets,
//    as on separate hosts; the issue's target ("replicated throughput at least 70% of
//    unreplicated", of "a replicated primary") is judged there. "Shared": the three processes
//    share both cores as the scheduler likes, so the backup's and the client's CPU come out of
//    the primary's; shown for what it is, the machine's cost of replication.
//
// Flags: --kills N (default 20 per setting), --quick (5 kills per setting, one cost repetition),
//        Rounds with a problem keep the client capture and both nodes' logs in
//        $TMPDIR/understudy-fbench-evidence-<time>/ (the path is in the round's notes).
//        --settings defaults,fast (one of them only), --kill-range 0.1-0.9 (where kills land, as
//        shares of the file: to chase a failure seen at one end),
//        --profile DIR (V8 CPU profiles of every node process, in <role>-<n>/: the largest file is the main thread),
//        --cost-rate 60M (curl --limit-rate for the cost half's downloads: CPU per MiB at one speed),
//        --pin / --shared (cost half in that placement only; default both),
//        --node-flags a=1,b (node options for every node process, without their leading dashes, e.g.
//        max-semi-space-size=32: the option parser here takes a value starting with -- for a flag),
//        --seed S (the random sizes, kill points and loss; default from the clock), --no-write
//        (leave bench/RESULTS.md alone), --no-cost / --no-stall (one half only).

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { createLab, type Lab } from '../scripts/lab.js';
import { writeRandomFile } from '../src/demo/io.js';
import { flags, numFlag } from './clients/common.js';
import { costRun, type CostRun, type Mode } from './failover/cost.js';
import { Nodes, type Timing } from './failover/nodes.js';
import { killRound, type KillRound, type ServedFile } from './failover/stall.js';
import { REPO_ROOT } from './proc.js';
import { median } from './results.js';

const MIB = 1024 * 1024;
const argv = process.argv.slice(2);
const f = flags(argv);
const quick = f.has('quick');
const kills = numFlag(f, 'kills', quick ? 5 : 20);
const seed = numFlag(f, 'seed', Date.now() % 1_000_000);
const costReps = quick ? 1 : 3;
const [killFrom, killTo] = (f.get('kill-range') ?? '0.1-0.9').split('-').map(Number) as [number, number];
if (!(killFrom >= 0 && killTo <= 1 && killFrom <= killTo)) throw new Error('--kill-range: expected e.g. 0.1-0.9');
const wantedSettings = f.get('settings')?.split(',');
const profileDir = f.get('profile');
const costRate = f.get('cost-rate');
/** Where the cost half's processes run (see the header). */
type Placement = 'pinned' | 'shared';
const placements: Placement[] = f.has('pin') ? ['pinned'] : f.has('shared') ? ['shared'] : ['pinned', 'shared'];
const PLACEMENT_NAMES: Record<Placement, string> = { pinned: 'one core per host', shared: 'shared cores' };
/** A cost run and where it ran. */
type PlacedRun = CostRun & { placement: Placement };
const nodeFlags = (f.get('node-flags') ?? '').split(',').filter((x) => x !== '' && x !== 'true').map((x) => `--${x}`);
const SETTINGS: { key: string; name: string; timing: Timing; targetMs: number }[] = [
  { key: 'defaults', name: 'defaults (heartbeat 50, dead-after 300)', timing: { heartbeatMs: 50, deadAfterMs: 300 }, targetMs: 500 },
  { key: 'fast', name: 'fast (heartbeat 20, dead-after 100)', timing: { heartbeatMs: 20, deadAfterMs: 100 }, targetMs: 200 },
];
// Every kill round downloads at this rate: the transfer lasts 1-4 s, long enough to kill it
// part-way by bytes received, short enough for 40 rounds in a few minutes.
const RATE = 32 * MIB;
const SIZES_MIB = [32, 64, 96, 128];
/**
 * The cost half's download: at 1.3 GiB/s a 128 MiB file took 0.1 s, so its connection setup and
 * ramp weighed in and the unreplicated figure swung by 25% between runs; 512 MiB is mostly steady state.
 */
const COST_FILE_MIB = 512;
/** Unmeasured downloads per node pair before the cost half measures (bench/failover/cost.ts). */
const WARMUP_BYTES = 2048 * MIB;
// One round in four has loss on the client links (1% or 2% alternately), as in the issue's test.
const lossFor = (i: number): number => (i % 4 === 3 ? (((i - 3) / 4) % 2 === 0 ? 1 : 2) : 0);

const started = Date.now();
const loadAtStart = os.loadavg().map((v) => v.toFixed(2)).join(' ');
function progress(msg: string): void {
  process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
}

/** Mulberry32: a seeded generator, so a run's sizes, kill points and losses can be repeated. */
function rng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Nearest-rank percentile, as bench/clients/stats.ts. */
function pct(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length, Math.max(1, Math.ceil(q * s.length))) - 1]!;
}

function machine(): string {
  return `nproc ${os.availableParallelism()}, ${os.cpus()[0]?.model ?? 'unknown CPU'}, Linux ${os.release()}, Node ${process.version}`;
}

const fmt = (v: number | undefined, d = 0): string => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d));

interface SettingResult {
  name: string;
  timing: Timing;
  targetMs: number;
  rounds: KillRound[];
  errors: string[];
}

function stallSummary(s: SettingResult): { n: number; median: number; p95: number; clean: number } {
  const stalls = s.rounds.map((r) => r.stallMs).filter((v): v is number => v !== undefined);
  return { n: stalls.length, median: stalls.length > 0 ? median(stalls) : Number.NaN, p95: pct(stalls, 0.95), clean: s.rounds.filter((r) => r.problems.length === 0).length };
}

function costSummary(runs: CostRun[]): Record<Mode, { mibs: number; p50: number; p99: number }> | undefined {
  const by = (m: Mode): CostRun[] => runs.filter((r) => r.mode === m);
  if (by('unreplicated').length === 0 || by('replicated').length === 0) return undefined;
  const sum = (m: Mode): { mibs: number; p50: number; p99: number } => ({
    mibs: median(by(m).flatMap((r) => r.bulkMiBs)),
    p50: median(by(m).map((r) => r.p50Us)),
    p99: median(by(m).map((r) => r.p99Us)),
  });
  return { unreplicated: sum('unreplicated'), replicated: sum('replicated') };
}

function summaryTable(settings: SettingResult[], runs: PlacedRun[], costError: string | undefined): string[] {
  const lines = ['| figure | value | target | verdict |', '|---|---:|---:|---|'];
  for (const s of f.has('no-stall') ? [] : settings) {
    const st = stallSummary(s);
    lines.push(`| stall median, ${s.name} (${st.n} kills, ${st.clean} clean) | ${fmt(st.median)} ms | < ${s.targetMs} ms | ${st.n === 0 ? 'not measured' : st.median < s.targetMs ? 'meets' : 'misses'} |`);
    lines.push(`| stall p95, ${s.name} | ${fmt(st.p95)} ms | - | |`);
  }
  let measured = false;
  for (const placement of placements) {
    const cost = runs.filter((r) => r.placement === placement);
    const c = costSummary(cost);
    if (c === undefined) continue;
    measured = true;
    // The target applies to a replicated primary with a core of its own (see the header).
    const judged = placement === 'pinned';
    const where = PLACEMENT_NAMES[placement];
    const tr = c.replicated.mibs / c.unreplicated.mibs;
    const added = c.replicated.p50 - c.unreplicated.p50;
    lines.push(`| bulk download, 1 connection, ${where}: replicated / unreplicated | ${fmt(c.replicated.mibs, 1)} / ${fmt(c.unreplicated.mibs, 1)} MiB/s = ${tr.toFixed(3)} | ${judged ? '>= 0.70' : '-'} | ${judged ? (tr >= 0.7 ? 'meets' : 'misses') : ''} |`);
    const cpu = (m: Mode, side: 'server' | 'backup'): number => median(cost.filter((r) => r.mode === m).map((r) => r.cpuMsPerMiB[side] ?? Number.NaN));
    lines.push(`| CPU ms per MiB downloaded, ${where}: primary + backup / unreplicated | ${fmt(cpu('replicated', 'server'), 2)} + ${fmt(cpu('replicated', 'backup'), 2)} / ${fmt(cpu('unreplicated', 'server'), 2)} | - | |`);
    lines.push(`| 64 B request/response p50, ${where}: replicated / unreplicated | ${fmt(c.replicated.p50, 1)} / ${fmt(c.unreplicated.p50, 1)} us = ${(c.replicated.p50 / c.unreplicated.p50).toFixed(3)} (added ${fmt(added, 1)} us) | added < 500 us | ${added < 500 ? 'meets' : 'misses'} |`);
    lines.push(`| 64 B request/response p99, ${where}: replicated / unreplicated | ${fmt(c.replicated.p99, 1)} / ${fmt(c.unreplicated.p99, 1)} us = ${(c.replicated.p99 / c.unreplicated.p99).toFixed(3)} | - | |`);
  }
  if (!measured) lines.push(`| replication cost | not measured${costError === undefined ? '' : `: ${costError.split('\n')[0]!.slice(0, 200)}`} | | |`);
  return lines;
}

function cpuLine(r: CostRun): string {
  const c = r.cpuMsPerMiB;
  const parts = [`server ${fmt(c.server, 2)}`, ...(c.backup === undefined ? [] : [`backup ${fmt(c.backup, 2)}`])];
  const frames = r.framesPerMiB === undefined ? '' : `, replication frames/MiB ${r.framesPerMiB.toBackup.toFixed(1)} out / ${r.framesPerMiB.toPrimary.toFixed(1)} back, packets that waited for the backup ${(100 * r.framesPerMiB.packetsWaited).toFixed(0)}%`;
  return `CPU ms/MiB ${parts.join(', ')}${frames}; `;
}

function roundLines(s: SettingResult): string[] {
  const out = [
    `Kills, ${s.name}:`,
    '',
    '| # | file MiB | loss % | killed at | stall ms | kill -> resume ms | kill -> takeover.done ms | curl | SHA-256 | RSTs | notes |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|',
  ];
  s.rounds.forEach((r, i) => {
    const at = r.killedAtBytes === undefined ? '-' : `${((100 * r.killedAtBytes) / r.plan.file.bytes).toFixed(0)}% (plan ${(100 * r.plan.killAt).toFixed(0)}%)`;
    out.push(
      `| ${i + 1} | ${r.plan.file.bytes / MIB} | ${r.plan.lossPct} | ${at} | ${fmt(r.stallMs, 1)} | ${fmt(r.killToResumeMs, 1)} | ${fmt(r.killToTakeoverMs, 1)} | ${r.curlExit ?? 'killed'} | ${r.shaOk ? 'ok' : 'DIFFERS'} | ${r.rsts} | ${r.problems.join('; ').replace(/\|/g, '/').slice(0, 600)} |`,
    );
  });
  for (const e of s.errors) out.push(`| - | | | | | | | | | | round failed: ${e.replace(/\n/g, ' ').replace(/\|/g, '/').slice(0, 300)} |`);
  return out;
}

function writeResults(settings: SettingResult[], cost: PlacedRun[], costError: string | undefined): void {
  const file = path.join(REPO_ROOT, 'bench', 'RESULTS.md');
  const previous = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n';
  // The new section goes above the newest existing one, below the file's header (which bench/run.ts
  // owns and rewrites).
  const at = previous.indexOf('\n## ');
  const head = at < 0 ? `${previous.trimEnd()}\n` : previous.slice(0, at + 1);
  const older = at < 0 ? '' : previous.slice(at + 1);
  const section = [
    `## ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')} failover${quick ? ' (quick)' : ''}`,
    '',
    `- command: \`npm run bench:failover${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}\` (bench/failover.ts), seed ${seed}`,
    `- machine: ${machine()}; load average at start ${loadAtStart}, at end ${os.loadavg().map((v) => v.toFixed(2)).join(' ')} (other work on the machine shows up as noise)`,
    `- lab: scripts/lab.ts, client, primary and backup namespaces on a bridge (veth, MTU 1500) plus a primary-backup replication veth; \`understudy node\` on VIP 198.18.0.100`,
    ...(f.has('no-stall') ? [] : [`- stall: ${kills} kills per setting; each a fresh pair serving http-static, curl over the client's link paced at ${RATE / MIB} MiB/s (tbf on the switch's port, scripts/lab/pace.ts) of a random ${SIZES_MIB.join('/')} MiB file, SIGKILL of the primary at a uniform ${(killFrom * 100).toFixed(0)}-${(killTo * 100).toFixed(0)}% of the bytes curl holds; one round in four with 1% or 2% loss on both nodes' client links (\`fault loss\`). Stall = the longest pause in new server data on the client's interface (tcpdump) that ends after the kill and starts before the backup's takeover.done; curl exit, SHA-256 and RSTs checked per round`]),
    `- replication cost: ${costReps} interleaved repetition(s) of: curl of a ${COST_FILE_MIB} MiB file ${costRate === undefined ? "with no rate limit" : `at curl --limit-rate ${costRate}`} x 3 after ${WARMUP_BYTES / MIB} MiB of unmeasured warm-up downloads per node pair (curl speed_download; CPU per MiB over the 3), and bench/clients/rr.ts 64 B round-trips (${quick ? 2000 : 5000} after ${quick ? 200 : 500} warm-up) against echo; replicated = primary with backup attached and protected (defaults), unreplicated = the same node without --role; placements: ${placements.map((p) => (p === 'pinned' ? 'one core per host (taskset: the serving node on CPU 0, the backup and curl on CPU 1; the throughput target is judged here)' : 'shared cores (no taskset: the backup and curl take their CPU from the same two cores as the primary)')).join('; ')}`,
    '',
    ...summaryTable(settings, cost, costError),
    '',
    ...(f.has('no-stall') ? [] : settings.flatMap((s) => [...roundLines(s), ''])),
    'Replication cost, every repetition:',
    '',
    ...cost.map((r) => `- ${PLACEMENT_NAMES[r.placement]}, ${r.mode}: bulk ${r.bulkMiBs.map((v) => v.toFixed(1)).join(', ')} MiB/s; ${cpuLine(r)}rr p50 ${r.p50Us.toFixed(1)} us, p99 ${r.p99Us.toFixed(1)} us`),
    ...(costError === undefined ? [] : [`- FAILED: ${costError.replace(/\n/g, ' ').slice(0, 400)}`]),
    '',
  ].join('\n');
  writeFileSync(file, `${head}\n${section}\n${older}`.replace(/\n{3,}/g, '\n\n'));
  progress(`wrote ${path.relative(process.cwd(), file)}`);
}

let interrupted = false;

async function main(): Promise<number> {
  progress(`bench:failover ${quick ? '(quick) ' : ''}on ${machine()}, load average ${loadAtStart}, seed ${seed}`);
  const dir = mkdtempSync(path.join(tmpdir(), 'understudy-fbench-'));
  // Only rounds with a problem write here (created on first use); it outlives the run.
  const evidenceRoot = path.join(tmpdir(), `understudy-fbench-evidence-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}`);
  let lab: Lab | undefined;
  const removeDir = (): void => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  // Ctrl-C: the lab's own hooks (scripts/lab/lab.ts) kill every process it started and delete
  // the namespaces on exit; this handler makes the exit happen and takes the work directory along.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.on(sig, () => {
      if (interrupted) return;
      interrupted = true;
      progress(`${sig}: removing the lab and the work directory`);
      process.exit(130);
    });

  const settings: SettingResult[] = SETTINGS.filter((s) => wantedSettings === undefined || wantedSettings.includes(s.key)).map((s) => ({ ...s, rounds: [], errors: [] }));
  const cost: PlacedRun[] = [];
  let costError: string | undefined;
  try {
    lab = await createLab({ replicationLink: true });
    progress(`lab ${lab.id}`);
    const keyFile = path.join(dir, 'repl.key');
    writeFileSync(keyFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    const www = path.join(dir, 'www');
    mkdirSync(www);
    const served = (m: number): ServedFile => {
      const name = `f${m}.bin`;
      return { name, bytes: m * MIB, sha256: writeRandomFile(path.join(www, name), m * MIB) };
    };
    const files = f.has('no-stall') ? [] : SIZES_MIB.map(served);
    const costFile = f.has('no-cost') ? undefined : served(COST_FILE_MIB);
    progress(`wrote ${files.length + (costFile === undefined ? 0 : 1)} random files (${[...(files.length > 0 ? SIZES_MIB : []), ...(costFile === undefined ? [] : [COST_FILE_MIB])].join(', ')} MiB)`);
    if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
    const nodes = new Nodes(lab, dir, keyFile, profileDir === undefined ? undefined : path.resolve(profileDir), nodeFlags);
    const rand = rng(seed);

    if (!f.has('no-stall')) {
      // Rounds of the two settings alternate, so that drift on the shared machine hits both alike.
      for (let i = 0; i < kills; i++) {
        for (const s of settings) {
          const plan = { file: files[Math.floor(rand() * files.length)]!, killAt: killFrom + (killTo - killFrom) * rand(), lossPct: lossFor(i), rate: RATE, timing: s.timing };
          const tag = `kill ${String(i + 1).padStart(2)}/${kills} ${s.timing.heartbeatMs}/${s.timing.deadAfterMs}`;
          try {
            const r = await killRound(lab, nodes, dir, plan, path.join(evidenceRoot, `kill-${i + 1}-${s.timing.heartbeatMs}-${s.timing.deadAfterMs}`));
            s.rounds.push(r);
            progress(
              `${tag}: ${plan.file.bytes / MIB} MiB, loss ${plan.lossPct}%, killed at ${r.killedAtBytes === undefined ? '-' : `${((100 * r.killedAtBytes) / plan.file.bytes).toFixed(0)}%`}: ` +
                `stall ${fmt(r.stallMs)} ms (kill -> takeover.done ${fmt(r.killToTakeoverMs)} ms), curl ${r.curlExit}, SHA-256 ${r.shaOk ? 'ok' : 'DIFFERS'}, RSTs ${r.rsts}` +
                (r.problems.length > 0 ? `  PROBLEMS: ${r.problems.join('; ')}` : ''),
            );
          } catch (e) {
            const msg = e instanceof Error ? e.message : String(e);
            s.errors.push(msg);
            progress(`${tag}: FAILED: ${msg.split('\n')[0]!.slice(0, 300)}`);
            await nodes.stopAll();
          }
        }
      }
    }

    if (costFile !== undefined) {
      const plan = { file: costFile, bulkReps: 3, warmupBytes: WARMUP_BYTES, rrCount: quick ? 2000 : 5000, rrWarmup: quick ? 200 : 500, timing: SETTINGS[0]!.timing, www, ...(costRate === undefined ? {} : { limitRate: costRate }) };
      try {
        for (const placement of placements) {
          for (let rep = 0; rep < costReps; rep++) {
            // Alternate which mode goes first, for the same reason as above.
            const order: Mode[] = rep % 2 === 0 ? ['unreplicated', 'replicated'] : ['replicated', 'unreplicated'];
            for (const mode of order) {
              progress(`cost #${rep + 1}, ${PLACEMENT_NAMES[placement]}: ${mode}`);
              cost.push({ ...(await costRun(lab, nodes, mode, { ...plan, pin: placement === 'pinned' }, progress)), placement });
            }
          }
        }
      } catch (e) {
        costError = e instanceof Error ? e.message : String(e);
        progress(`replication cost FAILED: ${costError.split('\n')[0]!.slice(0, 300)}`);
        await nodes.stopAll();
      }
    }
  } finally {
    await lab?.destroy();
    removeDir();
  }

  const table = summaryTable(settings, cost, costError);
  process.stdout.write(`\n${table.join('\n')}\n\n`);
  if (!f.has('no-write')) writeResults(settings, cost, costError);
  const bad = settings.reduce((n, s) => n + s.errors.length + s.rounds.filter((r) => r.problems.length > 0).length, 0);
  progress(`done${bad > 0 ? `: ${bad} round(s) with problems (see above)` : ''}`);
  return bad > 0 || costError !== undefined ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench:failover failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(2);
  },
);
