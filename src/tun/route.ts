// The VIP's host route into the tun device: the active node has it, the passive node does not.

import { checkIfname, checkIpv4, IpCommandError, runIp, type NetnsOption } from './iproute.js';

/** Routes VIP/32 into `dev` (idempotent: replaces an existing route). */
export async function addRoute(vip: string, dev: string, opts: NetnsOption = {}): Promise<void> {
  await runIp(['route', 'replace', `${checkIpv4(vip)}/32`, 'dev', checkIfname(dev)], opts);
}

/** Removes the VIP/32 route through `dev`; a route that is already gone is not an error. */
export async function removeRoute(vip: string, dev: string, opts: NetnsOption = {}): Promise<void> {
  try {
    await runIp(['route', 'del', `${checkIpv4(vip)}/32`, 'dev', checkIfname(dev)], opts);
  } catch (e) {
    // Also "Cannot find device" once the tun fd is closed: the kernel removed the route with it.
    if (e instanceof IpCommandError && /No such process|Cannot find device/.test(e.stderr)) return;
    throw e;
  }
}
