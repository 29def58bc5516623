// The node's control methods: status, and the faults an operator injects into the running node.
// Every fault is logged and kept in the fault log that status shows.

import { ControlRequestError, type ControlHandler } from '../control/server.js';
import { describeFault, faultClearSchema, describeIssues, parseFaultRequest, type FaultRequest, type PercentFault } from '../control/fault.js';
import type { FaultLogEntry, LinkStatus } from '../control/status.js';
import { parseSwitchoverParams } from '../control/switchover.js';
import type { FaultDirection, FaultSettings } from '../tun/fault-link.js';
import type { Logger } from './log.js';
import { buildStatus, linkStatuses, type NodeView } from './node-status.js';

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

/** What a fault is set on: the client link (packets) or the replication link (messages). */
interface FaultTarget {
  faults(): Record<FaultDirection, FaultSettings>;
  setFaults(direction: FaultDirection, settings: Partial<FaultSettings>): void;
  clearFaults(): void;
}

type LinkChoice = 'client' | 'replication' | 'both';

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

  /** The links a request names; `both` on a standalone node means the client link, with a note. */
  const targets = (choice: LinkChoice): { links: FaultTarget[]; note?: string } => {
    const v = view();
    const repl = v.replicationLink?.().faults;
    if (choice === 'client') return { links: [v.clientLink] };
    if (repl === undefined) {
      if (choice === 'replication') throw new ControlRequestError('unavailable', NO_REPLICATION);
      return { links: [v.clientLink], note: NO_REPLICATION };
    }
    return { links: choice === 'both' ? [v.clientLink, repl] : [repl] };
  };

  const applyLinkFault = (f: Exclude<FaultRequest, { kind: 'crash' | 'hang' }>): FaultReply => {
    const { links, note } = targets(f.link);
    for (const link of links) {
      const current = link.faults();
      if (f.kind === 'partition') {
        for (const d of ['in', 'out'] as const) link.setFaults(d, { ...current[d], partition: true });
        continue;
      }
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
    }
    return note === undefined ? { applied: describeFault(f) } : { applied: describeFault(f), note: `${note}; partitioned the client link only` };
  };

  /** The links' fault specs after a change, for the log line. */
  const specs = (): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const l of linkStatuses(view())) {
      out[`${l.name}In`] = l.faultSpec.in;
      out[`${l.name}Out`] = l.faultSpec.out;
    }
    return out;
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
      log.warn('fault.set', { fault: description, note: reply.note, ...specs() });
      record(description);
      return reply;
    },

    'fault.clear': (call) => {
      const r = faultClearSchema.safeParse(call.params);
      if (!r.success) throw new ControlRequestError('invalid-params', describeIssues(r.error.issues));
      const { links } = targets(r.data.link);
      for (const l of links) l.clearFaults();
      const description = r.data.link === 'both' ? 'clear' : `clear --link ${r.data.link}`;
      log.warn('fault.clear', { link: r.data.link, ...specs() });
      record(description);
      return { applied: description } satisfies FaultReply;
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
      return { links: linkStatuses(v), faultLog: [...v.faultLog] };
    },
  };
}
