// What a failover test asks of its clients, whichever fixture runs the nodes (ReplicatedPair, or
// the failover bench's Nodes): issue 3, "curl exits 0, SHA-256 matches, and a capture on the
// client's interface shows no RST", and for echo "every byte comes back exactly once and in
// order on every connection". One copy of those checks, so that no test asks less than another.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { expect } from 'vitest';
import type { Lab } from '../../../scripts/lab.js';
import { Capture, describeRsts, RST_FILTER } from './capture.js';
import { curl, type CurlResult } from './clients.js';
import type { EchoStreamsVerdict, ProgressClient } from './echo-clients.js';

export const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** True once an HTTP service answers on the VIP (a 404 is an answer); for waitUntil. */
export async function vipAnswersHttp(l: Lab): Promise<boolean> {
  return (await curl(l.ns.client, [`http://${l.addr.vip}/nothing`], ['/dev/null'], 3000)).exitCode === 0;
}

/** A curl download in the client namespace, followed by the size of what it wrote. */
export interface Download {
  /** Resolves when curl has exited. */
  readonly result: Promise<CurlResult>;
  finished(): boolean;
  /** Bytes the client has so far: the point at which to kill a node is "part-way" by these. */
  bytes(): number;
  readonly out: string;
}

/**
 * `out` is removed first, so that its size counts only what this download wrote. `rate`: curl's
 * --limit-rate; leave it out when the link is paced instead (scripts/lab/pace.ts), which a test needs
 * when the kill must land while the transfer is on the wire.
 */
export function startDownload(l: Lab, url: string, out: string, opts: { rate?: number; timeoutMs: number; curlArgs?: string[] }): Download {
  rmSync(out, { force: true });
  const limit = opts.rate === undefined ? [] : ['--limit-rate', String(opts.rate)];
  const result = curl(l.ns.client, [url], [out], opts.timeoutMs, [...limit, ...(opts.curlArgs ?? [])]);
  let finished = false;
  void result.finally(() => (finished = true));
  return { result, out, finished: () => finished, bytes: () => (existsSync(out) ? statSync(out).size : 0) };
}

/** curl exited 0 and wrote exactly the expected bytes. `logs`: the nodes' log tails, for failures. */
export async function expectDownloadIntact(d: Download, want: { bytes: number; sha256: string }, logs: string): Promise<void> {
  const r = await d.result;
  expect(r.exitCode, `curl: ${r.stderr}\n${logs}`).toBe(0);
  const got = readFileSync(d.out);
  expect(got.length).toBe(want.bytes);
  expect(sha256Hex(got)).toBe(want.sha256);
}

/** The echo-streams client ended well and every one of its `conns` connections came back intact. */
export async function expectEchoStreamsIntact(client: ProgressClient<EchoStreamsVerdict>, conns: number, logs: string, timeoutMs = 120_000): Promise<EchoStreamsVerdict> {
  const { code, verdict } = await client.result(timeoutMs);
  expect(code, `echo client: ${client.output()}\n${logs}`).toBe(0);
  expect(verdict.failures, logs).toEqual([]);
  expect(verdict.ok).toBe(conns);
  return verdict;
}

/** tcpdump on the client's LAN interface for RSTs (and the FINs that tell which ones count). */
export function captureClientRsts(l: Lab): Promise<Capture> {
  return Capture.start({ ns: l.ns.client, iface: l.lanIface, filter: RST_FILTER, label: 'client' });
}

/** Stops the capture: the client's interface saw no RST during `step`. */
export async function expectNoRst(cap: Capture, step: string): Promise<void> {
  const rsts = await cap.stop();
  expect(rsts.packets, describeRsts(step, rsts)).toBe(0);
}

/** Runs `body` with the process frozen (SIGSTOP) and resumes it (SIGCONT) however `body` ends. */
export async function whileStopped(pid: number, body: () => Promise<void>): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  try {
    await body();
  } finally {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // already gone
    }
  }
}
