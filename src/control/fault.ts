// The `fault` requests of the control protocol. The command validates what the operator typed
// against this schema before sending, and the node validates again what arrives: the socket is
// an interface of its own, not only the CLI's.

import { z } from 'zod';

export const FAULT_KINDS = ['crash', 'hang', 'loss', 'delay', 'duplicate', 'reorder', 'corrupt', 'partition'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export const PERCENT_FAULTS = ['loss', 'duplicate', 'reorder', 'corrupt'] as const;
export type PercentFault = (typeof PERCENT_FAULTS)[number];

export const FAULT_LINKS = ['client', 'replication'] as const;
export const FAULT_DIRECTIONS = ['in', 'out', 'both'] as const;
export type FaultLinkName = (typeof FAULT_LINKS)[number];
export type FaultDirectionChoice = (typeof FAULT_DIRECTIONS)[number];

/** A hang longer than this is a crash by another name, and would block tests and operators. */
export const MAX_HANG_MS = 10 * 60 * 1000;
export const MAX_DELAY_MS = 60 * 1000;

const pct = z.number({ error: 'expected a percentage 0..100' }).min(0, { error: 'expected a percentage 0..100' }).max(100, { error: 'expected a percentage 0..100' });
const link = z.enum(FAULT_LINKS, { error: 'expected client or replication' });
const direction = z.enum(FAULT_DIRECTIONS, { error: 'expected in, out or both' });
const delayMs = z
  .number({ error: `expected milliseconds 0..${MAX_DELAY_MS}` })
  .min(0, { error: `expected milliseconds 0..${MAX_DELAY_MS}` })
  .max(MAX_DELAY_MS, { error: `expected milliseconds 0..${MAX_DELAY_MS}` });

export const faultRequestSchema = z.discriminatedUnion(
  'kind',
  [
    z.object({ kind: z.literal('crash') }).strict(),
    z
      .object({
        kind: z.literal('hang'),
        ms: z.number({ error: `expected milliseconds 1..${MAX_HANG_MS}` }).int({ error: 'expected whole milliseconds' }).min(1, { error: `expected milliseconds 1..${MAX_HANG_MS}` }).max(MAX_HANG_MS, { error: `expected milliseconds 1..${MAX_HANG_MS}` }),
      })
      .strict(),
    ...PERCENT_FAULTS.map((kind) => z.object({ kind: z.literal(kind), pct, link: link.default('client'), direction: direction.default('both') }).strict()),
    z.object({ kind: z.literal('delay'), ms: delayMs, jitterMs: delayMs.default(0), link: link.default('client'), direction: direction.default('both') }).strict(),
    z.object({ kind: z.literal('partition'), link: z.enum([...FAULT_LINKS, 'both'], { error: 'expected client, replication or both' }).default('client') }).strict(),
  ],
  { error: `expected a fault kind: ${FAULT_KINDS.join(', ')}` },
);

export type FaultRequest = z.output<typeof faultRequestSchema>;

export const faultClearSchema = z.object({ link: z.enum([...FAULT_LINKS, 'both']).default('both') }).strict();
export type FaultClearRequest = z.output<typeof faultClearSchema>;

/** Validates a fault request; the error names the field ("pct: expected a percentage 0..100"). */
export function parseFaultRequest(value: unknown): { ok: true; request: FaultRequest } | { ok: false; message: string } {
  const r = faultRequestSchema.safeParse(value);
  if (r.success) return { ok: true, request: r.data };
  return { ok: false, message: describeIssues(r.error.issues) };
}

export function describeIssues(issues: readonly { path: PropertyKey[]; message: string }[]): string {
  const first = issues[0];
  if (first === undefined) return 'invalid';
  const where = first.path.map(String).join('.');
  return where === '' ? first.message : `${where}: ${first.message}`;
}

/** The request as the operator would type it after `understudy fault`. */
export function describeFault(f: FaultRequest): string {
  switch (f.kind) {
    case 'crash':
      return 'crash';
    case 'hang':
      return `hang ${f.ms}`;
    case 'delay':
      return `delay ${f.ms}${f.jitterMs > 0 ? ` --jitter ${f.jitterMs}` : ''} --link ${f.link} --direction ${f.direction}`;
    case 'partition':
      return `partition --link ${f.link}`;
    default:
      return `${f.kind} ${f.pct} --link ${f.link} --direction ${f.direction}`;
  }
}
