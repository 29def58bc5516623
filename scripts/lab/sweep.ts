// Finding labs by their namespaces, and removing abandoned ones.

import { deleteNamespaceSync, listNamespaces, pidAlive } from './netns.js';
import { parseNsName, type LabNode } from './names.js';

export interface LabListing {
  id: string;
  ownerPid: number;
  /** True while the creating process runs (never for persistent labs, whose owner is 0). */
  ownerAlive: boolean;
  namespaces: Partial<Record<LabNode, string>>;
}

export function listLabs(): LabListing[] {
  const labs = new Map<string, LabListing>();
  for (const ns of listNamespaces()) {
    const p = parseNsName(ns);
    if (!p) continue;
    let lab = labs.get(p.labId);
    if (!lab) {
      lab = { id: p.labId, ownerPid: p.ownerPid, ownerAlive: pidAlive(p.ownerPid), namespaces: {} };
      labs.set(p.labId, lab);
    }
    lab.namespaces[p.node] = ns;
  }
  return [...labs.values()].sort((a, b) => a.id.localeCompare(b.id));
}

/** Removes one lab's namespaces (and their processes). Returns the namespaces removed. */
export function removeLab(id: string): string[] {
  const lab = listLabs().find((l) => l.id === id);
  if (!lab) return [];
  // Host namespaces first, the switch last: veth ends vanish with either side anyway.
  const order: LabNode[] = ['client', 'primary', 'backup', 'switch'];
  const removed: string[] = [];
  for (const node of order) {
    const ns = lab.namespaces[node];
    if (ns === undefined) continue;
    deleteNamespaceSync(ns);
    removed.push(ns);
  }
  return removed;
}

/**
 * Removes labs whose creator is gone (crashed tests, `lab up` labs). Labs of running processes
 * are left alone unless `includeLive`, so a sweep never pulls a lab from under a running test.
 */
export function sweepLabs(includeLive = false): string[] {
  const removed: string[] = [];
  for (const lab of listLabs()) {
    if (lab.ownerAlive && !includeLive) continue;
    removed.push(...removeLab(lab.id));
  }
  return removed;
}
