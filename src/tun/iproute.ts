// Running iproute2's `ip` and writing sysctls, optionally inside a named network namespace. The
// CLI runs inside its host's namespace and passes no netns; tests and the lab pass one.

import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { withNetns } from './libc.js';
import { ipv4FromString } from '../stack/wire/types.js';

export interface NetnsOption {
  /** Act inside this named network namespace (/var/run/netns/NAME) instead of our own. */
  netns?: string;
}

export class IpCommandError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly stderr: string,
    readonly code: number | null,
  ) {
    super(`ip ${args.join(' ')} failed (exit ${code}): ${stderr.trim()}`);
    this.name = 'IpCommandError';
  }
}

/** Runs `ip [-n NETNS] ARGS...`; resolves with stdout, rejects with IpCommandError. */
export function runIp(args: readonly string[], opts: NetnsOption = {}): Promise<string> {
  const full = opts.netns === undefined ? [...args] : ['-n', opts.netns, ...args];
  return new Promise((resolve, reject) => {
    execFile('ip', full, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const code = typeof err.code === 'number' ? err.code : null;
        reject(new IpCommandError(full, stderr || err.message, code));
      } else resolve(stdout);
    });
  });
}

/** Writes e.g. `net.ipv4.ip_forward` = "1" (dotted name, as sysctl(8) takes it). */
export function writeSysctl(name: string, value: string, opts: NetnsOption = {}): void {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new RangeError(`bad sysctl name ${name}`);
  // /proc/sys/net resolves against the calling thread's namespace, so the write goes where
  // withNetns put us. Interface names may contain dots, which sysctl(8) spells as '/': callers pass
  // names whose interface parts have no dots (ours never do).
  const path = `/proc/sys/${name.replace(/\./g, '/')}`;
  withNetns(opts.netns, () => writeFileSync(path, value));
}

/** Checks a dotted-quad address and returns it unchanged. */
export function checkIpv4(addr: string): string {
  if (ipv4FromString(addr) === undefined) throw new RangeError(`not an IPv4 address: ${JSON.stringify(addr)}`);
  return addr;
}

export function checkIfname(name: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,14}$/.test(name)) throw new RangeError(`bad interface name ${JSON.stringify(name)}`);
  return name;
}
