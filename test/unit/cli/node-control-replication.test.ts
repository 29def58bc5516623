// The fault control methods of a replicated node: --link replication acts on the channel's message
// faults, --link both on both links, and fault list, status and clear show and undo each link apart.

import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/cli/log.js';
import { createControlHandlers, type FaultListResult, type FaultReply } from '../../../src/cli/node-control.js';
import type { NodeView } from '../../../src/cli/node-status.js';
import type { FaultLogEntry, NodeStatus } from '../../../src/control/status.js';
import { MessageFaults } from '../../../src/replication/message-faults.js';
import { FaultLink } from '../../../src/tun/fault-link.js';
import { createMemoryLinkPair } from '../../../src/tun/memory-link.js';

function setup() {
  const [a] = createMemoryLinkPair(1500);
  const clientLink = new FaultLink(a);
  const replFaults = new MessageFaults(1);
  const faultLog: FaultLogEntry[] = [];
  const lines: string[] = [];
  const view = (): NodeView => ({
    vip: '198.18.0.100',
    port: 7,
    service: 'echo',
    tun: 'fake0',
    lan: null,
    control: '/tmp/x.sock',
    metrics: null,
    startedAt: new Date(),
    host: undefined,
    clientLink,
    deviceStats: a.stats,
    connections: { open: 0, total: 0 },
    faultLog,
    replicationLink: () => ({ device: 'tcp 198.19.0.1:7070 <-> 198.19.0.2:7070', faults: replFaults, frames: { sent: 5, received: 4, bytesSent: 500, bytesReceived: 400, refused: 1 } }),
  });
  const handlers = createControlHandlers(view, faultLog, createLogger({ level: 'info', format: 'json', write: (l) => lines.push(l) }), { crash: () => undefined, hang: () => undefined });
  const call = (method: string, params: Record<string, unknown> = {}): unknown => (handlers[method] as (c: unknown) => unknown)({ params, afterReply: () => undefined });
  return { clientLink, replFaults, call, lines };
}

describe('fault control on a replicated node', () => {
  it('loss --link replication --direction out sets the replication link only, that direction only', () => {
    const { clientLink, replFaults, call, lines } = setup();
    const r = call('fault', { kind: 'loss', pct: 100, link: 'replication', direction: 'out' }) as FaultReply;
    expect(r).toEqual({ applied: 'loss 100 --link replication --direction out' });
    expect(replFaults.faults().out.lossPct).toBe(100);
    expect(replFaults.faults().in.lossPct).toBe(0);
    expect(clientLink.faults().out.lossPct).toBe(0);
    expect(lines.at(-1)).toContain('"replicationOut":"loss=100"');
  });

  it('partition --link both partitions both links, and clear --link replication lifts only that one', () => {
    const { clientLink, replFaults, call } = setup();
    expect((call('fault', { kind: 'partition', link: 'both' }) as FaultReply).note).toBeUndefined();
    expect(replFaults.faults().in.partition && replFaults.faults().out.partition).toBe(true);
    expect(clientLink.faults().in.partition && clientLink.faults().out.partition).toBe(true);
    expect((call('fault.clear', { link: 'replication' }) as FaultReply).applied).toBe('clear --link replication');
    expect(replFaults.faults().out.partition).toBe(false);
    expect(clientLink.faults().out.partition).toBe(true);
  });

  it('fault list and status show the replication link beside the client link, counted in frames', () => {
    const { call } = setup();
    call('fault', { kind: 'corrupt', pct: 5, link: 'replication', direction: 'in' });
    const list = call('fault.list') as FaultListResult;
    expect(list.links.map((l) => l.name)).toEqual(['client', 'replication']);
    const repl = list.links[1];
    expect(repl?.device).toBe('tcp 198.19.0.1:7070 <-> 198.19.0.2:7070');
    expect(repl?.faultSpec).toEqual({ in: 'corrupt=5', out: '' });
    expect(repl?.stats).toMatchObject({ txPackets: 5, rxPackets: 4, rxDropped: 1 });
    expect(list.faultLog.map((e) => e.description)).toEqual(['corrupt 5 --link replication --direction in']);
    const st = call('status') as NodeStatus;
    expect(st.links[1]?.faults.in.corruptPct).toBe(5);
  });
});
