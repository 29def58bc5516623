// The node's control methods: status, and the faults an operator injects into the running node.
// Every fault is logged and kept in the fault log that status shows.

import { ControlRequestError, type ControlHandler } from '../control/server.js';
import { describeFault, faultClearSchema, describeIssues, parseFaultRequest, type FaultRequest, type PercentFault } from '../control/fault.js';
import type { FaultLogEntry, LinkStatus } from '../control/status.js';
import { parseSwitchoverParams } from '../control/switchover.js';
import type { FaultDirection, FaultSettings } from '../tun/fault-link.js';
import type { Logger } from './log.js';
import { buildStatus, clientLinkStatus, type NodeView } from './node-status.js';

export interface FaultListResult {
  links: LinkStatus[];
  faultLog: FaultLogEntry[];
}

export interface FaultReply {
  applied: string;
  /** Something the operator should know: part of the request could not apply. */
  note?: string;
}

/** What crash and hang do to the process; tests replace them. */
export interface ProcessFaults {
  crash(): void;
  hang(ms: number): void;
}

export const realProcessFaults: ProcessFaults = {
  // SIGKILL, not exit(): no exit handlers, no socket or route cleanup, like a real crash.
  crash: () => void process.kill(process.pid, 'SIGKILL'),
  hang: (ms) => {
    // A hung process does nothing at all: no timers, no packets, no control replies. Only a busy
    // loop on the one JavaScript thread is that honest.
    const end = performance.now() + ms;
    while (performance.now() < end) {
      // spin
    }
  },
};

const PERCENT_FIELD: Record<PercentFault, 'lossPct' | 'duplicatePct' | 'reorderPct' | 'corruptPct'> = {
  loss: 'lossPct',
  duplicate: 'duplicatePct',
  reorder: 'reorderPct',
  corrupt: 'corruptPct',
};

const NO_REPLICATION = 'no replication link: this node is standalone (no backup configured)';

export function createControlHandlers(
  view: () => NodeView,
  faultLog: FaultLogEntry[],
  log: Logger,
  proc: ProcessFaults = realProcessFaults,
): Record<string, ControlHandler> {
  const record = (description: string): void => {
    faultLog.push({ at: new Date().toISOString(), description });
    // Bounded: a script toggling faults for hours must not grow the node.
    if (faultLog.length > 200) faultLog.splice(0, faultLog.length - 200);
  };
  const directions = (d: 'in' | 'out' | 'both'): FaultDirection[] => (d === 'both' ? ['in', 'out'] : [d]);

  const applyLinkFault = (f: Exclude<FaultRequest, { kind: 'crash' | 'hang' }>): FaultReply => {
    const link = view().clientLink;
    const current = link.faults();
    if (f.kind === 'partition') {
      if (f.link === 'replication') throw new ControlRequestError('unavailable', NO_REPLICATION);
      for (const d of ['in', 'out'] as const) link.setFaults(d, { ...current[d], partition: true });
      return f.link === 'both' ? { applied: describeFault(f), note: `${NO_REPLICATION}; partitioned the client link only` } : { applied: describeFault(f) };
    }
    if (f.link === 'replication') throw new ControlRequestError('unavailable', NO_REPLICATION);
    for (const d of directions(f.direction)) {
      const next: FaultSettings = { ...current[d] };
      if (f.kind === 'delay') {
        next.delayMs = f.ms;
        next.jitterMs = f.jitterMs;
      } else {
        next[PERCENT_FIELD[f.kind]] = f.pct;
      }
      link.setFaults(d, next);
    }
    return { applied: describeFault(f) };
  };

  return {
    status: () => buildStatus(view()),

    fault: (call) => {
      const parsed = parseFaultRequest(call.params);
      if (!parsed.ok) throw new ControlRequestError('invalid-params', parsed.message);
      const f = parsed.request;
      const description = describeFault(f);
      if (f.kind === 'crash') {
        log.error('fault.crash', { fault: description, note: 'exiting at once with SIGKILL, no cleanup' });
        record(description);
        call.afterReply(() => proc.crash());
        return { applied: description } satisfies FaultReply;
      }
      if (f.kind === 'hang') {
        log.warn('fault.hang', { fault: description, ms: f.ms });
        record(description);
        call.afterReply(() => {
          proc.hang(f.ms);
          log.warn('fault.hang-ended', { ms: f.ms });
        });
        return { applied: description } satisfies FaultReply;
      }
      const reply = applyLinkFault(f);
      log.warn('fault.set', { fault: description, note: reply.note, in: clientLinkStatus(view()).faultSpec.in, out: clientLinkStatus(view()).faultSpec.out });
      record(description);
      return reply;
    },

    'fault.clear': (call) => {
      const r = faultClearSchema.safeParse(call.params);
      if (!r.success) throw new ControlRequestError('invalid-params', describeIssues(r.error.issues));
      if (r.data.link === 'replication') throw new ControlRequestError('unavailable', NO_REPLICATION);
      view().clientLink.clearFaults();
      log.warn('fault.clear', { link: 'client' });
      record('clear');
      return { applied: 'clear' } satisfies FaultReply;
    },

    // Planned switchover: the reply is the SwitchoverResult, also when refused or aborted (ok false).
    switchover: async (call) => {
      const p = parseSwitchoverParams(call.params);
      if (!p.ok) throw new ControlRequestError('invalid-params', p.message);
      const run = view().switchover;
      if (run === undefined) throw new ControlRequestError('unavailable', NO_REPLICATION);
      log.info('switchover.requested', { timeoutMs: p.timeoutMs });
      return await run(p.timeoutMs);
    },

    'fault.list': (): FaultListResult => {
      const v = view();
      return { links: [clientLinkStatus(v)], faultLog: [...v.faultLog] };
    },
  };
}
