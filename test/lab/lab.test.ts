// The lab itself: namespaces, addresses, processes, teardown (explicit, on exit and on signals),
// and the persistent labs of `lab up` with their removal.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { createLab, listLabs, removeLab } from '../../scripts/lab.js';
import { listNamespaces, pidAlive } from '../../scripts/lab/netns.js';
import { useLab } from './helpers/lab-fixture.js';

const childScript = new URL('./helpers/lab-child.ts', import.meta.url).pathname;

async function runChild(mode: 'idle' | 'exit'): Promise<{ child: ReturnType<typeof spawn>; info: { id: string; ns: Record<string, string>; sleeperPid: number } }> {
  const child = spawn(process.execPath, ['--import', 'tsx', childScript, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await once(lines, 'line')) as [string];
  return { child, info: JSON.parse(line) as { id: string; ns: Record<string, string>; sleeperPid: number } };
}

describe('lab with client, primary, backup and a replication link', () => {
  const lab = useLab({ replicationLink: true });

  it('names every namespace with the lab id and creates them', () => {
    const l = lab();
    const all = listNamespaces();
    for (const ns of [l.ns.switch, l.ns.client, l.ns.primary, l.ns.backup!]) {
      expect(ns.startsWith(`${l.id}-`)).toBe(true);
      expect(all).toContain(ns);
    }
    expect(l.id).toMatch(new RegExp(`^us-${process.pid}-`));
  });

  it('lets the client reach primary and backup over the switch', async () => {
    const l = lab();
    const r = await l.exec('client', 'ping', ['-c', '2', '-i', '0.2', '-W', '2', l.addr.primary]);
    expect(r.stdout).toMatch(/2 received/);
    const b = await l.exec('client', 'ping', ['-c', '1', '-W', '2', l.addr.backup]);
    expect(b.stdout).toMatch(/1 received/);
  });

  it('connects primary and backup directly on the replication link', async () => {
    const l = lab();
    const r = await l.exec('primary', 'ping', ['-c', '1', '-W', '2', l.addr.replBackup]);
    expect(r.stdout).toMatch(/1 received/);
    const route = await l.exec('primary', 'ip', ['route', 'get', l.addr.replBackup]);
    expect(route.stdout).toContain(`dev ${l.replIface}`);
  });

  it('keeps the lab away from the host namespace', async () => {
    const l = lab();
    // The switch namespace holds only the bridge and its ports; no address in 198.18/15 is here.
    const sw = await l.exec('switch', 'ip', ['-br', 'addr']);
    expect(sw.stdout).not.toMatch(/198\.1[89]\./);
    const host = await import('node:child_process').then((cp) => cp.execFileSync('ip', ['-br', 'addr'], { encoding: 'utf8' }));
    expect(host).not.toMatch(/198\.18\.0\./);
  });

  it('reports a failing command with its output, unless asked not to', async () => {
    const l = lab();
    await expect(l.exec('client', 'ping', ['-c', '1', '-W', '1', '198.18.0.250'])).rejects.toThrow(/ping/);
    const r = await l.exec('client', 'false', [], { allowFailure: true });
    expect(r.code).toBe(1);
  });

  it('gives each node interface a distinct MAC', async () => {
    const l = lab();
    const macs = await Promise.all([l.macOf('client'), l.macOf('primary'), l.macOf('backup')]);
    for (const m of macs) expect(m).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(new Set(macs).size).toBe(3);
  });
});

describe('lab teardown', () => {
  it('destroy() removes namespaces and kills spawned processes, and can be called twice', async () => {
    const lab = await createLab();
    try {
      const sleeper = lab.spawn('primary', 'sleep', ['300'], { stdio: 'ignore' });
      const pid = sleeper.pid!;
      expect(pidAlive(pid)).toBe(true);
      const exited = once(sleeper, 'exit');
      await lab.destroy();
      await exited;
      expect(pidAlive(pid)).toBe(false);
      const left = listNamespaces().filter((n) => n.startsWith(lab.id));
      expect(left).toEqual([]);
    } finally {
      await lab.destroy();
    }
    await expect(lab.destroy()).resolves.toBeUndefined();
    expect(() => lab.spawn('client', 'true')).toThrow(/destroyed/);
  });

  it('removes the lab when its process is terminated by SIGTERM', async () => {
    const { child, info } = await runChild('idle');
    try {
      expect(listNamespaces()).toContain(info.ns.client);
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
      expect(signal ?? code).toBe('SIGTERM');
      expect(listNamespaces().filter((n) => n.startsWith(info.id))).toEqual([]);
      expect(pidAlive(info.sleeperPid)).toBe(false);
    } finally {
      child.kill('SIGKILL');
      removeLab(info.id);
    }
  });

  it('removes the lab when its process exits normally', async () => {
    const { child, info } = await runChild('exit');
    try {
      await once(child, 'exit');
      expect(listNamespaces().filter((n) => n.startsWith(info.id))).toEqual([]);
    } finally {
      removeLab(info.id);
    }
  });

  it('keeps a persistent lab after it is abandoned, lists it as ownerless, and removes it on request', async () => {
    const lab = await createLab({ persistent: true });
    try {
      const listed = listLabs().find((l) => l.id === lab.id);
      expect(listed).toBeDefined();
      expect(listed!.ownerPid).toBe(0);
      expect(listed!.ownerAlive).toBe(false);
      expect(Object.keys(listed!.namespaces).sort()).toEqual(['client', 'primary', 'switch']);
      const removed = removeLab(lab.id);
      expect(removed).toHaveLength(3);
      expect(listLabs().find((l) => l.id === lab.id)).toBeUndefined();
    } finally {
      await lab.destroy();
    }
  });

  it('lists a lab of a running process as owned and alive', async () => {
    const lab = await createLab();
    try {
      const listed = listLabs().find((l) => l.id === lab.id);
      expect(listed?.ownerPid).toBe(process.pid);
      expect(listed?.ownerAlive).toBe(true);
    } finally {
      await lab.destroy();
    }
  });
});
