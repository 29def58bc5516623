// Lab naming. Every namespace of a lab is `us-<owner pid>-<random>-<role>`: the prefix lets the
// sweeper find our leftovers, the owner pid tells a live lab from an abandoned one (pid 0 marks a
// lab made by `lab up`, which outlives its creator on purpose), and the random part keeps labs of
// the same process apart. Interface names live inside the namespaces, so they stay short and fixed.

import { randomBytes } from 'node:crypto';

export const LAB_PREFIX = 'us-';

export type LabNode = 'switch' | 'client' | 'primary' | 'backup';
export const LAB_NODES: readonly LabNode[] = ['switch', 'client', 'primary', 'backup'];

const ROLE_SUFFIX: Record<LabNode, string> = { switch: 'sw', client: 'client', primary: 'primary', backup: 'backup' };

export function newLabId(ownerPid: number): string {
  return `${LAB_PREFIX}${ownerPid}-${randomBytes(3).toString('hex')}`;
}

export function nsName(labId: string, node: LabNode): string {
  return `${labId}-${ROLE_SUFFIX[node]}`;
}

export interface ParsedNs {
  labId: string;
  ownerPid: number;
  node: LabNode;
}

const NS_RE = /^(us-(\d+)-[0-9a-f]{6})-(sw|client|primary|backup)$/;

export function parseNsName(name: string): ParsedNs | undefined {
  const m = NS_RE.exec(name);
  if (!m) return undefined;
  const node = (Object.keys(ROLE_SUFFIX) as LabNode[]).find((k) => ROLE_SUFFIX[k] === m[3])!;
  return { labId: m[1]!, ownerPid: Number(m[2]), node };
}

/** Addresses of the lab, all from 198.18.0.0/15 (RFC 2544 benchmarking space). */
export const LAB_ADDR = {
  client: '198.18.0.10',
  primary: '198.18.0.1',
  backup: '198.18.0.2',
  vip: '198.18.0.100',
  lanPrefixLen: 24,
  replPrimary: '198.19.0.1',
  replBackup: '198.19.0.2',
  replPrefixLen: 30,
} as const;

/** Interface names inside the node namespaces. */
export const LAN_IFACE = 'eth0';
export const REPL_IFACE = 'repl0';
/** The bridge inside the switch namespace; its ports are named after the nodes. */
export const BRIDGE = 'br0';
