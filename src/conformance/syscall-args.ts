// Reading a system call's arguments as the scripts write them: names, `A | B` flag sets,
// `[value]` out-parameters and poll()'s `{fd=..., events=...}` entries.

import type { SyscallArg, SyscallSpec } from './script.js';

/** FreeBSD's poll(2) bits. */
export const POLL_BITS: Readonly<Record<string, number>> = {
  POLLIN: 0x1,
  POLLPRI: 0x2,
  POLLOUT: 0x4,
  POLLERR: 0x8,
  POLLHUP: 0x10,
  POLLNVAL: 0x20,
  POLLRDNORM: 0x40,
  POLLWRNORM: 0x4,
};

export function pollMask(a: SyscallArg | undefined): number {
  return argNames(a).reduce((m, n) => m | (POLL_BITS[n] ?? 0), a?.kind === 'number' ? a.value : 0);
}

export function pollNames(mask: number): string {
  const names = Object.entries(POLL_BITS)
    .filter(([n, b]) => mask & b && n !== 'POLLWRNORM')
    .map(([n]) => n);
  return names.length > 0 ? names.join('|') : '0';
}

export function argName(a: SyscallArg | undefined): string | undefined {
  return a?.kind === 'name' ? a.name : undefined;
}

export function argNames(a: SyscallArg | undefined): string[] {
  if (!a) return [];
  if (a.kind === 'name') return [a.name];
  if (a.kind === 'or') return a.operands.flatMap(argNames);
  return [];
}

export function listNumber(a: SyscallArg | undefined): number | undefined {
  if (a?.kind === 'list' && a.items[0]?.kind === 'number') return a.items[0].value;
  if (a?.kind === 'number') return a.value;
  return undefined;
}

export function argText(a: SyscallArg | undefined): string {
  if (!a) return '';
  switch (a.kind) {
    case 'name':
      return a.name;
    case 'number':
      return String(a.value);
    default:
      return '...';
  }
}

/** getsockopt's expected value: the first item of the fourth argument, `[65536]` or `[ECONNRESET]`. */
export function expectedOutValue(call: SyscallSpec): number | string | undefined {
  const a = call.args[3];
  if (a?.kind !== 'list') return undefined;
  const item = a.items[0];
  if (item?.kind === 'number') return item.value;
  if (item?.kind === 'name') return item.name;
  return undefined;
}

/** FreeBSD defines EWOULDBLOCK as EAGAIN. */
export function errnoEquals(want: string, got: string | undefined): boolean {
  const norm = (e: string | undefined): string | undefined => (e === 'EWOULDBLOCK' ? 'EAGAIN' : e);
  return norm(want) === norm(got);
}
