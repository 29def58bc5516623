// `npm run conformance [-- options] [filter...]`: runs the FreeBSD packetdrill scripts against
// our stack on a virtual clock and prints pass counts per directory, the relaxations in force,
// and (with --verbose) why each failing script failed.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { createHost } from '../stack/host.js';
import { FREEBSD_PROFILE, type ConformanceProfile } from './profile.js';
import {
  BASELINE_FILE,
  baselineOf,
  defaultSuiteDir,
  readBaseline,
  runSuite,
  type ScriptOutcome,
  type SuiteReport,
} from './suite.js';

interface CliOptions {
  verbose: boolean;
  json: boolean;
  suite: string;
  insecure: boolean;
  writeBaseline: boolean;
  checkBaseline: boolean;
  define?: string[];
  trace: boolean;
}

function pct(passed: number, total: number): string {
  return total === 0 ? '-' : `${((100 * passed) / total).toFixed(1)}%`;
}

function tallyLine(label: string, t: { passed: number; total: number }, width: number, showPct = true): string {
  const counts = `${String(t.passed).padStart(4)} / ${String(t.total).padEnd(4)}`;
  return `  ${label.padEnd(width)} ${counts} ${showPct ? pct(t.passed, t.total) : ''}`.trimEnd();
}

function printText(report: SuiteReport, opts: CliOptions, profile: ConformanceProfile): void {
  const out: string[] = [];
  const shown = (o: ScriptOutcome): boolean => opts.insecure || !o.insecure;
  if (opts.verbose) {
    for (const o of report.outcomes.filter((x) => !x.passed && shown(x))) {
      const tag = o.insecure ? ' [insecure]' : '';
      out.push(`FAIL ${o.script}${tag}: line ${o.failure?.line}: ${o.failure?.message}`);
    }
    if (out.length > 0) out.push('');
  }
  out.push(`profile ${profile.name} (#ifdef ${profile.defines.join(', ')}), policy: RFC 5961 (secure)`);
  out.push('');
  const width = Math.max(28, ...Object.keys(report.groups).map((g) => g.length));
  for (const [group, t] of Object.entries(report.groups).sort()) out.push(tallyLine(group, t, width));
  out.push(tallyLine('total (secure)', report.secure, width));
  out.push(tallyLine('insecure (expected to fail)', report.insecure, width, false));
  out.push('');
  out.push('relaxations:');
  if (profile.relaxations.length === 0) out.push('  (none)');
  for (const r of profile.relaxations) {
    const uses = report.outcomes.filter((o) => o.relaxationsUsed.includes(r.id)).length;
    out.push(`  ${r.id} (used by ${uses} script(s)): ${r.description}`);
    out.push(`    why: ${r.reason}`);
  }
  out.push('emulated by the runner:');
  for (const e of profile.emulations) out.push(`  ${e.id}: ${e.description}`);
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
    .option('--trace', 'print every event and every packet the stack sends (use with a filter)', false)
    .option('--insecure', 'also list failures of the insecure (RFC 793) scripts with --verbose', false)
    .option('--suite <dir>', 'the suite directory', defaultSuiteDir())
    .option('--write-baseline', `record the secure pass count in ${path.basename(BASELINE_FILE)}`, false)
    .option('--check-baseline', 'exit 1 when fewer secure scripts pass than the baseline records', false)
    .option('--define <names...>', `names for the scripts' #ifdef blocks (default: ${FREEBSD_PROFILE.defines.join(' ')})`)
    .parse(argv);
  const opts = program.opts<CliOptions>();
  const filters = program.args.map((f) => {
    // A path to one script selects it by its path inside the suite.
    const abs = path.resolve(f);
    return abs.startsWith(path.resolve(opts.suite) + path.sep) ? path.relative(opts.suite, abs) : f;
  });
  if ((opts.writeBaseline || opts.checkBaseline) && (filters.length > 0 || opts.define))
    program.error('--write-baseline and --check-baseline need the whole suite with the default profile');
  const profile = opts.define ? { ...FREEBSD_PROFILE, defines: opts.define } : FREEBSD_PROFILE;
  const trace = opts.trace ? (line: string): void => console.log(line) : undefined;
  const report = runSuite({ createHost, suiteDir: opts.suite, filter: filters, profile, ...(trace ? { trace } : {}) });
  if (opts.json) {
    console.log(
      JSON.stringify(
        {
          profile: profile.name,
          defines: profile.defines,
          relaxations: profile.relaxations,
          emulations: profile.emulations,
          ...report,
        },
        null,
        2,
      ),
    );
  } else printText(report, opts, profile);
  if (opts.checkBaseline) {
    const baseline = readBaseline();
    if (report.secure.passed < baseline.securePassed) {
      console.error(`conformance: ${report.secure.passed} secure scripts pass, the baseline is ${baseline.securePassed}`);
      process.exitCode = 1;
    }
  }
  if (opts.writeBaseline) {
    writeFileSync(BASELINE_FILE, JSON.stringify(baselineOf(report), null, 2) + '\n');
  }
}

main(process.argv);
