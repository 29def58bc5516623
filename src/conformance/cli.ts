// `npm run conformance [-- options] [filter...]`: runs the FreeBSD packetdrill scripts against
// our stack on a virtual clock and prints pass counts per directory, the relaxations in force,
// and (with --verbose) why each failing script failed.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { createHost } from '../stack/host.js';
import { FREEBSD_PROFILE } from './profile.js';
import { BASELINE_FILE, baselineOf, defaultSuiteDir, runSuite, type SuiteReport } from './suite.js';

interface CliOptions {
  verbose: boolean;
  json: boolean;
  suite: string;
  insecure: boolean;
  writeBaseline: boolean;
}

function pct(passed: number, total: number): string {
  return total === 0 ? '-' : `${((100 * passed) / total).toFixed(1)}%`;
}

function printText(report: SuiteReport, opts: CliOptions): void {
  const out: string[] = [];
  const failed = report.outcomes.filter((o) => !o.passed && (opts.insecure || !o.insecure));
  if (opts.verbose) {
    for (const o of failed) out.push(`FAIL ${o.script}${o.insecure ? ' [insecure]' : ''}: line ${o.failure?.line}: ${o.failure?.message}`);
    for (const o of report.outcomes)
      if (o.passed && (opts.insecure || !o.insecure)) for (const w of o.warnings) out.push(`WARN ${o.script}: ${w}`);
    if (out.length > 0) out.push('');
  }
  out.push(`profile ${FREEBSD_PROFILE.name}, policy: RFC 5961 (secure)`);
  out.push('');
  const width = Math.max(20, ...Object.keys(report.groups).map((g) => g.length));
  for (const [group, t] of Object.entries(report.groups).sort())
    out.push(`  ${group.padEnd(width)} ${String(t.passed).padStart(4)} / ${String(t.total).padEnd(4)} ${pct(t.passed, t.total)}`);
  const s = report.secure;
  out.push(`  ${'total (secure)'.padEnd(width)} ${String(s.passed).padStart(4)} / ${String(s.total).padEnd(4)} ${pct(s.passed, s.total)}`);
  const i = report.insecure;
  out.push(`  ${'insecure (expected to fail)'.padEnd(width)} ${String(i.passed).padStart(4)} / ${String(i.total).padEnd(4)}`);
  out.push('');
  out.push('relaxations:');
  if (FREEBSD_PROFILE.relaxations.length === 0) out.push('  (none)');
  for (const r of FREEBSD_PROFILE.relaxations) {
    const uses = report.outcomes.filter((o) => o.relaxationsUsed.includes(r.id)).length;
    out.push(`  ${r.id}: ${r.description} (used by ${uses} script(s)); ${r.reason}`);
  }
  out.push('emulated by the runner:');
  for (const e of FREEBSD_PROFILE.emulations) out.push(`  ${e.id}: ${e.description}`);
  out.push('');
  out.push(`${report.outcomes.length} script(s) in ${(report.durationMs / 1000).toFixed(2)} s`);
  console.log(out.join('\n'));
}

function main(argv: string[]): void {
  const program = new Command()
    .name('conformance')
    .description('Run the FreeBSD packetdrill TCP suite against understudy on a virtual clock')
    .argument('[filter...]', 'run only scripts whose path contains one of these strings (or a .pkt path)')
    .option('-v, --verbose', 'print why each failing script failed', false)
    .option('--json', 'machine-readable output', false)
    .option('--insecure', 'also list failures of the insecure (RFC 793) scripts with --verbose', false)
    .option('--suite <dir>', 'the suite directory', defaultSuiteDir())
    .option('--write-baseline', `record the secure pass count in ${path.basename(BASELINE_FILE)}`, false)
    .parse(argv);
  const opts = program.opts<CliOptions>();
  const filters = program.args.map((f) => {
    // A path to one script selects it by its path inside the suite.
    const abs = path.resolve(f);
    return abs.startsWith(path.resolve(opts.suite) + path.sep) ? path.relative(opts.suite, abs) : f;
  });
  const report = runSuite({ createHost, suiteDir: opts.suite, filter: filters });
  if (opts.json) {
    console.log(
      JSON.stringify(
        {
          profile: FREEBSD_PROFILE.name,
          relaxations: FREEBSD_PROFILE.relaxations,
          emulations: FREEBSD_PROFILE.emulations,
          ...report,
        },
        null,
        2,
      ),
    );
  } else printText(report, opts);
  if (opts.writeBaseline) {
    if (filters.length > 0) throw new Error('--write-baseline needs the whole suite (no filter)');
    writeFileSync(BASELINE_FILE, JSON.stringify(baselineOf(report), null, 2) + '\n');
  }
}

main(process.argv);
