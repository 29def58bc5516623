// The results table: one row per measurement, one column per server, and the ratio. Used for the
// terminal and for bench/RESULTS.md.

export type Side = 'linux' | 'understudy';

export interface Measurement {
  /** Row label, including the unit. */
  label: string;
  /** Median over repetitions, undefined when that side failed. */
  values: Partial<Record<Side, number>>;
  /** Every repetition, for the record. */
  runs: Partial<Record<Side, number[]>>;
  /** Server CPU use during the measurement, in percent of one core. */
  cpu: Partial<Record<Side, number>>;
  errors: Partial<Record<Side, string>>;
  /** Problems that did not void the figure (e.g. some connections failed); marked with '!'. */
  warnings: Partial<Record<Side, string>>;
  higherIsBetter: boolean;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function fmt(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  if (v >= 1000) return v.toFixed(0);
  if (v >= 100) return v.toFixed(1);
  if (v >= 10) return v.toFixed(2);
  return v.toFixed(3);
}

function cell(m: Measurement, side: Side): string {
  if (m.errors[side] !== undefined) return 'FAILED';
  const cpu = m.cpu[side];
  const warn = m.warnings[side] !== undefined ? '!' : '';
  return `${warn}${fmt(m.values[side])}${cpu === undefined ? '' : ` (${cpu.toFixed(0)}%)`}`;
}

function ratio(m: Measurement): string {
  const l = m.values.linux;
  const u = m.values.understudy;
  if (l === undefined || u === undefined || l === 0) return '-';
  return (u / l).toFixed(3);
}

export function markdownTable(rows: Measurement[]): string {
  const out = ['| measurement | Linux TCP (server CPU) | understudy (server CPU) | understudy / Linux |', '|---|---:|---:|---:|'];
  for (const m of rows) out.push(`| ${m.label} | ${cell(m, 'linux')} | ${cell(m, 'understudy')} | ${ratio(m)} |`);
  return out.join('\n');
}

export function textTable(rows: Measurement[]): string {
  const head = ['measurement', 'Linux TCP', 'understudy', 'u/Linux'];
  const body = rows.map((m) => [m.label, cell(m, 'linux'), cell(m, 'understudy'), ratio(m)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export function errorNotes(rows: Measurement[]): string[] {
  const notes: string[] = [];
  for (const m of rows)
    for (const side of ['linux', 'understudy'] as const) {
      const e = m.errors[side];
      if (e !== undefined) notes.push(`${m.label}, ${side}: ${e}`);
      const w = m.warnings[side];
      if (w !== undefined) notes.push(`${m.label}, ${side} (figure marked !): ${w}`);
    }
  return notes;
}
