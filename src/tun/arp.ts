// Answering ARP for the VIP on the LAN (proxy ARP), and announcing a takeover with gratuitous ARP
// frames we build and send ourselves on an AF_PACKET socket, so no `arping` is needed.

import { checkIfname, checkIpv4, IpCommandError, runIp, writeSysctl, type NetnsOption } from './iproute.js';
import { makeIfreq } from './ifreq.js';
import { O_CLOEXEC, sysClose, sysIoctl, sysSendto, sysSocket, withNetns } from './libc.js';
import { ipv4FromString } from '../stack/wire/types.js';

const AF_PACKET = 17;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = O_CLOEXEC;
const ETH_P_ARP = 0x0806;
const ARPHRD_ETHER = 1;
const SIOCGIFHWADDR = 0x8927;
const SIOCGIFINDEX = 0x8933;

/**
 * Makes the kernel answer ARP for `vip` on `lanIface` with its own MAC, and forward what arrives
 * for it (to the tun route). proxy_delay=0 because by default proxy replies wait up to 0.8 s.
 */
export async function enableProxyArp(vip: string, lanIface: string, opts: NetnsOption = {}): Promise<void> {
  checkIpv4(vip);
  checkIfname(lanIface);
  writeSysctl('net.ipv4.ip_forward', '1', opts);
  writeSysctl(`net.ipv4.neigh.${lanIface}.proxy_delay`, '0', opts);
  try {
    await runIp(['neigh', 'add', 'proxy', vip, 'dev', lanIface], opts);
  } catch (e) {
    if (!(e instanceof IpCommandError && /File exists/.test(e.stderr))) throw e;
  }
}

/**
 * Stops answering ARP for `vip`. ip_forward stays on: other routes on the host may rely on it, and
 * without the proxy entry and the tun route nothing reaches the VIP here anyway.
 */
export async function disableProxyArp(vip: string, lanIface: string, opts: NetnsOption = {}): Promise<void> {
  checkIpv4(vip);
  checkIfname(lanIface);
  try {
    await runIp(['neigh', 'del', 'proxy', vip, 'dev', lanIface], opts);
  } catch (e) {
    if (!(e instanceof IpCommandError && /No such file|not found|Cannot find/i.test(e.stderr))) throw e;
  }
}

/**
 * A gratuitous ARP request (RFC 5227 announcement: sender and target IP both the VIP, target MAC
 * zero) from `mac`, broadcast. Linux neighbours update an existing entry on it regardless of
 * locktime, because sender IP equals target IP.
 */
export function gratuitousArpFrame(vip: string, mac: Uint8Array): Uint8Array {
  const ip = ipv4FromString(checkIpv4(vip))!;
  if (mac.length !== 6) throw new RangeError('MAC must be 6 bytes');
  const f = new Uint8Array(42);
  const v = new DataView(f.buffer);
  f.fill(0xff, 0, 6); // Ethernet broadcast
  f.set(mac, 6);
  v.setUint16(12, ETH_P_ARP);
  v.setUint16(14, ARPHRD_ETHER); // hardware type
  v.setUint16(16, 0x0800); // protocol type IPv4
  f[18] = 6;
  f[19] = 4;
  v.setUint16(20, 1); // request
  f.set(mac, 22); // sender MAC
  v.setUint32(28, ip); // sender IP
  // target MAC stays zero
  v.setUint32(38, ip); // target IP
  return f;
}

export interface GratuitousArpOptions extends NetnsOption {
  /** Pause between frames; default 200 ms. */
  intervalMs?: number;
}

/** Sends `count` gratuitous ARP frames for `vip` out of `lanIface`, with its MAC. */
export async function sendGratuitousArp(
  vip: string,
  lanIface: string,
  count: number,
  opts: GratuitousArpOptions = {},
): Promise<void> {
  checkIpv4(vip);
  checkIfname(lanIface);
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`count must be a positive integer, got ${count}`);
  const intervalMs = opts.intervalMs ?? 200;
  // The socket belongs to the namespace it was created in, so only its creation and the interface
  // lookups need to happen there; later sends work from anywhere.
  const { fd, frame, addr } = withNetns(opts.netns, () => {
    const fd = sysSocket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ARP));
    try {
      const idxReq = makeIfreq(lanIface);
      sysIoctl(fd, SIOCGIFINDEX, idxReq, `SIOCGIFINDEX ${lanIface}`);
      const ifindex = idxReq.readInt32LE(16);
      const hwReq = makeIfreq(lanIface);
      sysIoctl(fd, SIOCGIFHWADDR, hwReq, `SIOCGIFHWADDR ${lanIface}`);
      if (hwReq.readUInt16LE(16) !== ARPHRD_ETHER) throw new Error(`${lanIface} is not an Ethernet interface`);
      const mac = Uint8Array.from(hwReq.subarray(18, 24));
      return { fd, frame: gratuitousArpFrame(vip, mac), addr: sockaddrLl(ifindex) };
    } catch (e) {
      sysClose(fd);
      throw e;
    }
  });
  try {
    for (let i = 0; i < count; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, intervalMs));
      sysSendto(fd, frame, addr);
    }
  } finally {
    sysClose(fd);
  }
}

/** struct sockaddr_ll for sending a broadcast ARP frame out of `ifindex`. */
function sockaddrLl(ifindex: number): Uint8Array {
  const a = Buffer.alloc(20);
  a.writeUInt16LE(AF_PACKET, 0);
  a.writeUInt16BE(ETH_P_ARP, 2); // sll_protocol, network order
  a.writeInt32LE(ifindex, 4);
  a.writeUInt16LE(ARPHRD_ETHER, 8);
  a[10] = 0; // sll_pkttype
  a[11] = 6; // sll_halen
  a.fill(0xff, 12, 18);
  return a;
}

function htons(v: number): number {
  return ((v & 0xff) << 8) | ((v >> 8) & 0xff);
}
