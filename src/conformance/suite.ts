// Finding the scripts, running them, and summing up per directory under the secure policy.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FREEBSD_PROFILE, isInsecureScript, type ConformanceProfile } from './profile.js';
import { runScript, type HostFactory, type ScriptResult } from './runner.js';

/** The repository root, found from this file's location (src/conformance/). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The suite lives beside the repository, in shared/ (CI keeps a copy next to the clone). */
export function defaultSuiteDir(repoRoot = REPO_ROOT): string {
  return path.resolve(repoRoot, '../shared/conformance/freebsd-tcp-testsuite');
}

export function listScripts(suiteDir: string): string[] {
  if (!existsSync(suiteDir))
    throw new Error(`conformance suite not found at ${suiteDir} (expected ../shared/conformance beside the repository)`);
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.pkt')) out.push(path.relative(suiteDir, p));
    }
  };
  walk(suiteDir);
  return out;
}

export interface ScriptOutcome extends ScriptResult {
  /** Path relative to the suite directory, with forward slashes. */
  script: string;
  /** The top-level directory it is counted under (e.g. state-event-engine). */
  group: string;
  insecure: boolean;
}

export interface Tally {
  passed: number;
  total: number;
}

export interface SuiteReport {
  outcomes: ScriptOutcome[];
  /** Per top-level directory, secure-policy scripts only. */
  groups: Record<string, Tally>;
  secure: Tally;
  /** Scripts that test RFC 793 behaviour (insecure_rst/insecure_syn); expected to fail. */
  insecure: Tally;
  durationMs: number;
}

export interface SuiteOptions {
  createHost: HostFactory;
  suiteDir?: string;
  /** Substring (or several) a script's relative path must contain. */
  filter?: string[];
  profile?: ConformanceProfile;
  trace?: (line: string) => void;
}

export function runSuite(opts: SuiteOptions): SuiteReport {
  const started = performance.now();
  const suiteDir = opts.suiteDir ?? defaultSuiteDir();
  const profile = opts.profile ?? FREEBSD_PROFILE;
  let scripts = listScripts(suiteDir).map((s) => s.split(path.sep).join('/'));
  const filter = opts.filter;
  if (filter && filter.length > 0) scripts = scripts.filter((s) => filter.some((f) => s.includes(f)));
  const outcomes: ScriptOutcome[] = [];
  for (const script of scripts) {
    const text = readFileSync(path.join(suiteDir, script), 'utf8');
    opts.trace?.(`=== ${script}`);
    const result = runScript(text, { createHost: opts.createHost, profile, ...(opts.trace ? { trace: opts.trace } : {}) });
    outcomes.push({ ...result, script, group: script.split('/')[0]!, insecure: isInsecureScript(script) });
  }
  return summarize(outcomes, performance.now() - started);
}

export function summarize(outcomes: ScriptOutcome[], durationMs: number): SuiteReport {
  const groups: Record<string, Tally> = {};
  const secure: Tally = { passed: 0, total: 0 };
  const insecure: Tally = { passed: 0, total: 0 };
  for (const o of outcomes) {
    const t = o.insecure ? insecure : secure;
    t.total++;
    if (o.passed) t.passed++;
    if (o.insecure) continue;
    const g = (groups[o.group] ??= { passed: 0, total: 0 });
    g.total++;
    if (o.passed) g.passed++;
  }
  return { outcomes, groups, secure, insecure, durationMs };
}

/** Where the recorded pass count lives. */
export const BASELINE_FILE = path.join(REPO_ROOT, 'conformance-baseline.json');

export interface Baseline {
  /** Scripts passing under the secure policy. */
  securePassed: number;
  secureTotal: number;
  groups: Record<string, Tally>;
}

export function readBaseline(file = BASELINE_FILE): Baseline {
  return JSON.parse(readFileSync(file, 'utf8')) as Baseline;
}

export function baselineOf(report: SuiteReport): Baseline {
  return { securePassed: report.secure.passed, secureTotal: report.secure.total, groups: report.groups };
}
