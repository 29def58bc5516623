// The real `understudy` command, run from the host namespace against a lab node's control socket
// (a Unix socket path is not namespaced): what an operator would type.

import type { ChildProcess } from 'node:child_process';
import { expect } from 'vitest';
import { run, type RunResult } from '../../../bench/proc.js';
import type { Lab } from '../../../scripts/lab.js';
import type { NodeStatus } from '../../../src/control/status.js';

export function understudy(args: string[], timeoutMs = 20_000): Promise<RunResult> {
  return run([process.execPath, 'bin/understudy.js', ...args], { timeoutMs });
}

/** `understudy node` alone (no replication) in the primary namespace, serving port 80 on the VIP, info logs in pretty form. */
export function spawnSoloNode(l: Lab, o: { service: string; tun: string; control: string }): ChildProcess {
  return l.spawn('primary', process.execPath, [
    'bin/understudy.js', 'node',
    '--vip', l.addr.vip, '--port', '80',
    '--service', o.service,
    '--lan', l.lanIface, '--tun', o.tun,
    '--log-level', 'info', '--log-format', 'pretty',
    '--control', o.control,
  ]);
}

/** `understudy status --json`; throws with its stderr when it fails. */
export async function statusJson(control: string): Promise<NodeStatus> {
  const r = await understudy(['status', '--json', '--control', control]);
  if (r.code !== 0) throw new Error(`status failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as NodeStatus;
}

/** `understudy fault <args>`, which must succeed. */
export async function fault(control: string, args: string[]): Promise<RunResult> {
  const r = await understudy(['fault', ...args, '--control', control]);
  expect(r.code, `fault ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}
