// Where a node's control socket lives, and how a command finds it: --control, or --tun (the
// default path of that device), or the only socket in the default directory.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ControlClientError } from '../control/client.js';
import { UsageError } from './usage-error.js';

export const DEFAULT_CONTROL_DIR = '/run/understudy';

export function defaultControlPath(tunName: string, dir: string = DEFAULT_CONTROL_DIR): string {
  return join(dir, `${tunName}.sock`);
}

export interface ControlTarget {
  control?: string | undefined;
  tun?: string | undefined;
}

export function resolveControlPath(target: ControlTarget, dir: string = DEFAULT_CONTROL_DIR): string {
  if (target.control !== undefined) return target.control;
  if (target.tun !== undefined) return defaultControlPath(target.tun, dir);
  let sockets: string[];
  try {
    sockets = readdirSync(dir).filter((f) => f.endsWith('.sock')).sort();
  } catch {
    sockets = [];
  }
  if (sockets.length === 1) return join(dir, sockets[0]!);
  if (sockets.length === 0) throw new ControlClientError('no-node', `no node running here (no control socket in ${dir}); give --control <path> if it uses another`);
  throw new UsageError(`several nodes run here (${sockets.join(', ')} in ${dir}): choose one with --tun <name> or --control <path>`);
}
