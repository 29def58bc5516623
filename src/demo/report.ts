// The few lines `understudy demo` prints at the end, and the verdict behind its exit status: the
// client did not notice the failover only if curl succeeded, the bytes hash to the file's
// SHA-256, and the client's interface carried no RST.

import type { LogEvent } from './analysis.js';

export interface DemoOutcome {
  sizeBytes: number;
  /** curl's exit code; null if it was killed or never ran. */
  curlExit: number | null;
  /** curl's last stderr line, shown when it failed. */
  curlError?: string;
  bytesReceived: number;
  sha256Expected: string;
  sha256Received: string;
  rsts: number;
  /** One line per RST for the report (from the capture). */
  rstLines?: string[];
  /** When the primary was SIGKILLed (ms since the epoch) and how far the download was then. */
  killedAtMs: number | undefined;
  killedAtBytes?: number;
  /** The signal the primary got; default SIGKILL. */
  killSignal?: string;
  stallMs: number | undefined;
  takeoverSteps: readonly LogEvent[];
  files: readonly string[];
  /** Anything the operator should know: missing PNG converter, a cut capture, no takeover log. */
  notes?: readonly string[];
}

export interface Verdict {
  unnoticed: boolean;
  /** Why the client noticed, one reason per failed check. */
  reasons: string[];
}

export function verdict(o: DemoOutcome): Verdict {
  const reasons: string[] = [];
  if (o.curlExit !== 0) reasons.push(o.curlExit === null ? 'curl did not finish' : `curl exited with ${o.curlExit}`);
  if (o.sha256Received !== o.sha256Expected) reasons.push(o.bytesReceived === o.sizeBytes ? 'the bytes differ (SHA-256 mismatch)' : `${o.bytesReceived} of ${o.sizeBytes} bytes arrived`);
  if (o.rsts > 0) reasons.push(`${o.rsts} RST segment${o.rsts === 1 ? '' : 's'} on the client's interface`);
  return { unnoticed: reasons.length === 0, reasons };
}

/** 0 only if the client did not notice. */
export function demoExitCode(o: DemoOutcome): number {
  return verdict(o).unnoticed ? 0 : 1;
}

export function formatReport(o: DemoOutcome): string {
  const v = verdict(o);
  const lines: string[] = [];
  const row = (k: string, val: string): void => void lines.push(`  ${k.padEnd(16)} ${val}`);
  lines.push('', `understudy demo: ${fmtMiB(o.sizeBytes)} over HTTP, primary killed part-way`);
  row('bytes received', `${o.bytesReceived} of ${o.sizeBytes}`);
  row('SHA-256 match', o.sha256Received === o.sha256Expected ? `yes (${o.sha256Expected.slice(0, 16)}…)` : `no (expected ${o.sha256Expected.slice(0, 16)}…, got ${o.sha256Received.slice(0, 16)}…)`);
  row('RSTs seen', String(o.rsts));
  for (const l of o.rstLines ?? []) lines.push(`      ${l}`);
  if (o.killedAtMs !== undefined) {
    const at = o.killedAtBytes === undefined ? '' : ` at ${fmtMiB(o.killedAtBytes)} (${Math.round((100 * o.killedAtBytes) / o.sizeBytes)}%)`;
    row('primary killed', `${o.killSignal ?? 'SIGKILL'}${at}, ${new Date(o.killedAtMs).toISOString().slice(11, 23)} UTC`);
  }
  row('stall', o.stallMs === undefined ? 'not measured (no data on both sides of the kill in the capture)' : `${Math.round(o.stallMs)} ms (last new byte before the kill to first new byte after, on the client)`);
  if (o.takeoverSteps.length === 0) row('takeover steps', 'none logged (no `takeover.*` events in the nodes\' logs)');
  else {
    row('takeover steps', o.killedAtMs === undefined ? '' : '(ms after the kill)');
    const width = Math.max(...o.takeoverSteps.map((s) => s.event.length));
    for (const s of o.takeoverSteps) {
      const when = o.killedAtMs === undefined ? new Date(s.timeMs).toISOString().slice(11, 23) : fmtOffset(s.timeMs - o.killedAtMs);
      lines.push(`      ${when.padStart(9)}  ${s.event.padEnd(width)}  ${s.node}${fmtFields(s.fields)}`);
    }
  }
  row('files', o.files.length === 0 ? 'none' : o.files[0]!);
  for (const f of o.files.slice(1)) lines.push(`  ${''.padEnd(16)} ${f}`);
  for (const n of o.notes ?? []) row('note', n);
  if (o.curlExit !== 0 && o.curlError) row('curl said', o.curlError);
  lines.push(
    v.unnoticed
      ? '  result           the client did not notice: curl exit 0, SHA-256 equal, no RST'
      : `  result           the client noticed: ${v.reasons.join('; ')}`,
    '',
  );
  return lines.join('\n');
}

function fmtMiB(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return `${Number.isInteger(mib) ? mib : mib.toFixed(1)} MiB`;
}

function fmtOffset(ms: number): string {
  return `${ms < 0 ? '-' : '+'}${Math.round(Math.abs(ms))} ms`;
}

/**
 * A step's own fields, short: a takeover step that says "connections=1" should show it. `ms` (the
 * node's time since the takeover began) is left out: the column before it already gives the time,
 * and without it the first step's fields fit on the line.
 */
function fmtFields(fields: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (k === 'ms' || v === null || v === undefined || typeof v === 'object') continue;
    parts.push(`${k}=${String(v)}`);
  }
  const s = parts.join(' ');
  return s === '' ? '' : `  ${s.length > 72 ? s.slice(0, 71) + '…' : s}`;
}
