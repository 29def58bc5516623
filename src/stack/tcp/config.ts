// Tunables for one connection. Two profiles: Linux-like defaults for production, and the values
// FreeBSD's packetdrill suite hard-codes, so that the conformance runner compares like with like.

import type { TcpConfig } from './api.js';

const MS = 1000;
const S = 1000 * MS;

/** Linux-like defaults (net.ipv4.tcp_* as shipped by current kernels). */
export function defaultTcpConfig(): TcpConfig {
  return {
    mss: 1460,
    rcvBuf: 256 * 1024,
    // Linux grows a bulk sender's buffer towards tcp_wmem's 4 MiB. 2 MiB keeps a download's
    // pipeline full when a replicated primary's segments wait for the backup's acknowledgement
    // (output commit), and with the write-space wake-up at a quarter of it (stack/socket.ts) it
    // takes http-static's 512 KiB reads whole: one replication record, frame and acknowledgement
    // per half megabyte (bench/RESULTS.md, session 4). It only holds what the service wrote, so
    // idle connections pay nothing.
    sndBuf: 2 * 1024 * 1024,
    windowScale: 7,
    sack: true,
    timestamps: true,
    nagle: true,
    delayedAckUs: 40 * MS,
    initialRtoUs: 1 * S,
    minRtoUs: 200 * MS,
    maxRtoUs: 120 * S,
    synRetries: 6,
    maxRetransmits: 15,
    timeWaitUs: 60 * S,
    keepalive: null,
    // tcp_keepalive_time 7200 s, tcp_keepalive_intvl 75 s, tcp_keepalive_probes 9
    keepaliveDefaults: { idleUs: 7200 * S, intervalUs: 75 * S, probes: 9 },
    congestionControl: 'newreno',
    initialWindowSegments: 10,
    challengeAckPerSecond: 1000,
    optionLayout: 'linux',
    // Clients reuse ports faster than 2MSL under load (wrk, ab with Connection: close).
    timeWaitReuse: true,
  };
}

/**
 * FreeBSD as the conformance scripts expect it: `net.inet.tcp.recvspace=65536` grows to 65700 once
 * the MSS is known (the scripts read SO_RCVBUF back as 65700 and probe the window's right edge
 * at RCV.NXT + 65700), the SYN carries `win 65535` and `wscale 6`, sendspace is 32768,
 * delacktime 100 ms, rexmit_min 30 ms, rexmit_initial 1 s, MSL 30 s (TIME-WAIT 60 s).
 */
export function freebsdProfileConfig(): TcpConfig {
  return {
    ...defaultTcpConfig(),
    rcvBuf: 65700,
    sndBuf: 32768,
    windowScale: 6,
    delayedAckUs: 100 * MS,
    initialRtoUs: 1 * S,
    minRtoUs: 30 * MS,
    maxRtoUs: 64 * S,
    // net.inet.tcp.keepinit is 75 s; FreeBSD retries the SYN with backoff until then (about 6 times)
    synRetries: 6,
    maxRetransmits: 12,
    timeWaitUs: 60 * S,
    // net.inet.tcp.keepidle 7200 s, keepintvl 75 s, keepcnt 8
    keepaliveDefaults: { idleUs: 7200 * S, intervalUs: 75 * S, probes: 8 },
    optionLayout: 'freebsd',
    resendFinWithAck: true,
    timeWaitReuse: false,
    // FreeBSD's default stack detects loss by DupThresh alone (RACK is the separate tcp_rack stack).
    rack: false,
    // net.inet.tcp.abc_l_var: slow start grows by at most 2*SMSS per ACK (RFC 3465 section 2.2).
    slowStartAckLimitSegments: 2,
  };
}
