// The `switchover` control request: its parameters, checked by the CLI (usage error) and again by
// the node (invalid-params), and the request timeout the CLI allows for the whole exchange.

import { DEFAULT_SWITCHOVER_TIMEOUT_MS } from '../replication/node/switchover.js';

export const MIN_SWITCHOVER_TIMEOUT_MS = 100;
export const MAX_SWITCHOVER_TIMEOUT_MS = 60_000;
export { DEFAULT_SWITCHOVER_TIMEOUT_MS };

export function parseSwitchoverParams(params: Record<string, unknown>): { ok: true; timeoutMs: number } | { ok: false; message: string } {
  for (const k of Object.keys(params)) if (k !== 'timeoutMs') return { ok: false, message: `switchover: unknown parameter "${k}" (known: timeoutMs)` };
  const t = params['timeoutMs'] ?? DEFAULT_SWITCHOVER_TIMEOUT_MS;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < MIN_SWITCHOVER_TIMEOUT_MS || t > MAX_SWITCHOVER_TIMEOUT_MS) {
    return { ok: false, message: `switchover: timeoutMs must be an integer from ${MIN_SWITCHOVER_TIMEOUT_MS} to ${MAX_SWITCHOVER_TIMEOUT_MS}` };
  }
  return { ok: true, timeoutMs: t };
}

/**
 * How long the CLI waits for the reply: the drain and the handover reply are each bounded by the
 * timeout, and the step-down (dropping connections, dialling as backup) takes a moment more.
 */
export function switchoverRequestTimeoutMs(timeoutMs: number): number {
  return 2 * timeoutMs + 5000;
}
