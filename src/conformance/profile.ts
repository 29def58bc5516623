// The FreeBSD profile: the values the suite's scripts hard-code, how the scripts' sysctls map onto
// our TcpConfig, and the named relaxations the runner applies where our stack cannot or should not
// behave like FreeBSD. Every relaxation is printed with each run, so none is silent.

import type { TcpConfig } from '../stack/tcp/api.js';
import { freebsdProfileConfig } from '../stack/tcp/config.js';
import { ipv4FromString, type Ipv4Addr } from '../stack/wire/types.js';

export type RelaxationId = 'rto-slop' | 'close-at-end';

export interface Relaxation {
  id: RelaxationId;
  /** What the runner stops checking. */
  description: string;
  /** Why this difference is acceptable for our stack. */
  reason: string;
}

/**
 * Places where the runner stands in for FreeBSD's socket layer or its command-line tools.
 * These do not weaken a check on the stack's packets; they are listed so a reader knows which
 * script lines are answered by the runner rather than by the stack.
 */
export interface Emulation {
  id: string;
  description: string;
}

export interface ConformanceProfile {
  name: string;
  /** packetdrill's addresses: the stack under test is local, the script plays the remote. */
  localAddr: Ipv4Addr;
  remoteAddr: Ipv4Addr;
  /** The port bind() gives a socket (packetdrill's --bind_port). */
  bindPort: number;
  /** The remote port connect() goes to (packetdrill's --connect_port). */
  connectPort: number;
  /** The remote port the script's peer uses towards a listener. */
  remotePort: number;
  /** The remote's ISN: script sequence numbers of inbound segments are offset by this. */
  remoteIsn: number;
  /** Names defined for the scripts' `#ifdef` blocks. */
  defines: string[];
  defaultMtu: number;
  /** packetdrill's default when a script sets no --tolerance_usecs. */
  defaultToleranceUs: number;
  relaxations: Relaxation[];
  emulations: Emulation[];
}

export const FREEBSD_PROFILE: ConformanceProfile = {
  name: 'freebsd',
  localAddr: ipv4FromString('192.168.0.1')!,
  remoteAddr: ipv4FromString('192.0.2.1')!,
  bindPort: 8080,
  connectPort: 8080,
  remotePort: 40000,
  // Away from 0 so that the relative numbers in the scripts are not also the absolute ones.
  remoteIsn: 1_000_000,
  // RFC behaviour where the suite shows FreeBSD's alongside it.
  defines: ['STANDARD'],
  defaultMtu: 1500,
  defaultToleranceUs: 4000,
  relaxations: [
    {
      id: 'rto-slop',
      description:
        'a retransmission may be sent up to net.inet.tcp.rexmit_slop (200 ms) earlier than the script ' +
        'says, beyond the tolerance',
      reason:
        'FreeBSD adds rexmit_slop to every backed-off RTO (TCPT_RANGESET), giving SYN retransmissions ' +
        'at +1, +2.2, +4.2 s; RFC 6298 has no such term, so ours come at +1, +2, +4 s',
    },
    {
      id: 'close-at-end',
      description:
        "packets that the script's final close() calls send, after the last packet the script expects, " +
        'are not checked',
      reason:
        'the scripts end with close() to clean up and were written for packetdrill, which stops comparing ' +
        "at the last line, so they never list the FIN (or RST) that close() sends; any other packet after " +
        'the last expected one still fails the script',
    },
  ],
  emulations: [
    {
      id: 'so-rcvbuf',
      description:
        'getsockopt(SO_RCVBUF) reports net.inet.tcp.recvspace before the handshake and the buffer ' +
        'rounded up to a multiple of the MSS after it, as FreeBSD does',
    },
    {
      id: 'tcp-keepinit',
      description:
        'TCP_KEEPINIT / net.inet.tcp.keepinit: the runner aborts a connection still in SYN-SENT when ' +
        'the limit passes and reports ETIMEDOUT',
    },
    {
      id: 'sockstat',
      description:
        '`sockstat ... | grep -c STATE | grep N` counts the connections in STATE; ' +
        '`tcpdrop -s TIME_WAIT` aborts them',
    },
    {
      id: 'tcp-info',
      description:
        '%{ assert tcpi_state == ... }% reads the state of the socket under test; tcpi_options is ' +
        'derived from the options both SYNs carried',
    },
  ],
};

/** The sysctls the scripts set, as name -> value text. */
export type Sysctls = ReadonlyMap<string, string>;

/** FreeBSD's defaults for the sysctls the profile reads, before a script sets any. */
const SYSCTL_DEFAULTS: Record<string, string> = {
  'net.inet.tcp.rfc1323': '1',
  'net.inet.tcp.sack.enable': '1',
  'kern.ipc.maxsockbuf': '2097152',
  'net.inet.tcp.recvspace': '65536',
  'net.inet.tcp.sendspace': '32768',
  'net.inet.tcp.delacktime': '100',
  'net.inet.tcp.rexmit_initial': '1000',
  'net.inet.tcp.keepinit': '75000',
  'net.inet.tcp.rexmit_slop': '200',
};

/**
 * Sysctls with no counterpart in our stack, and the value our stack behaves like. A script that
 * sets a different value is still run; its result records the mismatch.
 */
const FIXED_SYSCTLS: Record<string, { value: string; why: string; alsoFine?: string[] }> = {
  'net.inet.tcp.insecure_rst': { value: '0', why: 'RFC 5961 section 3 RST handling is always on' },
  'net.inet.tcp.insecure_syn': { value: '0', why: 'RFC 5961 section 4 SYN handling is always on' },
  'net.inet.tcp.blackhole': { value: '0', why: 'segments to closed ports get a RST' },
  // 2 (answer ECN only when the peer asks) looks like 0 until a peer asks.
  'net.inet.tcp.ecn.enable': { value: '0', why: 'no ECN (RFC 3168) at all', alsoFine: ['2'] },
};

/** Switches that map onto optional TcpConfig fields; unset, the core's FreeBSD profile decides. */
const SWITCH_SYSCTLS = new Set([
  'net.inet.tcp.drop_synfin',
  'net.inet.tcp.rexmit_drop_options',
  'net.inet.tcp.tolerate_missing_ts',
  'net.inet.tcp.icmp_may_rst',
]);

/** Whether a sysctl feeds the TcpConfig, which is fixed once the Host is built. */
export function shapesTcpConfig(name: string): boolean {
  return name in SYSCTL_DEFAULTS || SWITCH_SYSCTLS.has(name);
}

/** Sysctls that only steer FreeBSD internals the scripts do not observe, or tune what we compute. */
const IGNORED_SYSCTLS = new Set([
  'net.inet.tcp.hostcache.purgenow',
  'net.inet.tcp.syncookies',
  'net.inet.tcp.syncookies_only',
  'net.inet.tcp.ecn.maxretries',
]);

export function sysctlValue(sysctls: Sysctls, name: string): string {
  return sysctls.get(name) ?? SYSCTL_DEFAULTS[name] ?? '';
}

/**
 * FreeBSD's choice of window scale: the smallest shift that lets a 16-bit window cover the
 * largest socket buffer allowed (kern.ipc.maxsockbuf), up to 14 (RFC 7323).
 */
export function windowScaleFor(maxSockBuf: number): number {
  let shift = 0;
  while (shift < 14 && 65535 * 2 ** shift < maxSockBuf) shift++;
  return shift;
}

/** FreeBSD rounds the receive buffer up to a whole number of segments once the MSS is known. */
export function roundUpToMss(bytes: number, mss: number): number {
  return mss > 0 ? Math.ceil(bytes / mss) * mss : bytes;
}

/** TCP_NOOPT: no options at all, not even MSS. */
export const NO_OPTIONS: Partial<TcpConfig> = { noOptions: true, windowScale: null, sack: false, timestamps: false };

export interface SocketOptions {
  /** TCP_NOOPT: send no TCP options at all. */
  noOptions: boolean;
}

/** The TCP configuration a script's sysctls and an MTU call for. */
export function tcpConfigFor(sysctls: Sysctls, mtu: number, sock?: SocketOptions): TcpConfig {
  const cfg = freebsdProfileConfig();
  const num = (name: string): number => Number(sysctlValue(sysctls, name));
  const rfc1323 = num('net.inet.tcp.rfc1323') !== 0;
  cfg.mss = mtu - 40;
  cfg.windowScale = rfc1323 ? windowScaleFor(num('kern.ipc.maxsockbuf')) : null;
  cfg.timestamps = rfc1323;
  cfg.sack = num('net.inet.tcp.sack.enable') !== 0;
  // The scripts' peers offer an MSS of 1460; FreeBSD grows the buffer to whole segments of it.
  cfg.rcvBuf = roundUpToMss(num('net.inet.tcp.recvspace'), Math.min(1460, cfg.mss));
  cfg.sndBuf = num('net.inet.tcp.sendspace');
  cfg.delayedAckUs = num('net.inet.tcp.delacktime') * 1000;
  cfg.initialRtoUs = num('net.inet.tcp.rexmit_initial') * 1000;
  // TCP_MAXRXTSHIFT: FreeBSD retries a SYN up to 12 times, though net.inet.tcp.keepinit (75 s,
  // enforced by the runner) usually ends SYN-SENT first.
  cfg.synRetries = 12;
  const on = (name: string): boolean | undefined => (sysctls.has(name) ? sysctls.get(name) !== '0' : undefined);
  const dropSynFin = on('net.inet.tcp.drop_synfin');
  if (dropSynFin !== undefined) cfg.dropSynFin = dropSynFin;
  const tolerateMissingTs = on('net.inet.tcp.tolerate_missing_ts');
  if (tolerateMissingTs !== undefined) cfg.tolerateMissingTimestamps = tolerateMissingTs;
  const icmpMayReset = on('net.inet.tcp.icmp_may_rst');
  if (icmpMayReset !== undefined) cfg.icmpMayReset = icmpMayReset;
  // FreeBSD keeps only the MSS option from the third SYN retransmission on.
  if (on('net.inet.tcp.rexmit_drop_options')) cfg.dropSynOptionsAfterRetries = 3;
  if (sock?.noOptions) Object.assign(cfg, NO_OPTIONS);
  return cfg;
}

export interface SysctlReport {
  /** Set to a value our stack does not behave like: name=value (why). */
  unsupported: string[];
  /** Names the profile does not know at all. */
  unknown: string[];
}

export function checkSysctls(sysctls: Sysctls): SysctlReport {
  const unsupported: string[] = [];
  const unknown: string[] = [];
  for (const [name, value] of sysctls) {
    const fixed = FIXED_SYSCTLS[name];
    if (fixed) {
      if (fixed.value !== value && !fixed.alsoFine?.includes(value))
        unsupported.push(`${name}=${value} (ours: ${fixed.value}; ${fixed.why})`);
    } else if (!shapesTcpConfig(name) && !IGNORED_SYSCTLS.has(name)) {
      unknown.push(`${name}=${value}`);
    }
  }
  return { unsupported, unknown };
}

/** Policy: RFC 5961 behaviour. Scripts marked insecure test the RFC 793 behaviour instead. */
export function isInsecureScript(relPath: string): boolean {
  return /(^|[/-])insecure([/-]|\.pkt$)/.test(relPath);
}
