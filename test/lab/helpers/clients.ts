// Real Linux clients for the lab tests, run inside the client namespace: curl, a Python socket
// client streaming through echo, the Node many-connections echo client, and ping. Each returns
// plain data that a test asserts on, with enough detail for a useful failure message.

import { inNs, run, tsNode, type RunResult } from '../../../bench/proc.js';

export interface CurlTransfer {
  httpCode: number;
  sizeDownload: number;
  numConnects: number;
}

export interface CurlResult {
  exitCode: number | null;
  transfers: CurlTransfer[];
  stderr: string;
  timedOut: boolean;
}

const CURL_WRITE_OUT = '%{http_code} %{size_download} %{num_connects}\\n';

/**
 * One curl invocation fetching each URL into the matching output file, over one connection when
 * the server keeps it alive. `extra` adds flags such as `-r 0-99`.
 */
export async function curl(ns: string, urls: string[], outFiles: string[], timeoutMs: number, extra: string[] = []): Promise<CurlResult> {
  if (urls.length !== outFiles.length) throw new Error('curl(): one output file per URL');
  const args = ['curl', '-sS', '--max-time', String(Math.ceil(timeoutMs / 1000)), '-w', CURL_WRITE_OUT, ...extra];
  urls.forEach((u, i) => args.push('-o', outFiles[i]!, u));
  const r = await run(inNs(ns, args), { timeoutMs: timeoutMs + 5000 });
  const transfers = r.stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [code, size, connects] = l.split(' ').map(Number);
      return { httpCode: code!, sizeDownload: size!, numConnects: connects! };
    });
  return { exitCode: r.code, transfers, stderr: r.stderr.trim(), timedOut: r.timedOut };
}

export interface EchoStreamResult {
  sent: number;
  received: number;
  sentSha256: string;
  receivedSha256: string;
  /** Offset of the first byte that differs, -1 when the common prefix matches. */
  firstMismatch: number;
  errors: string[];
  seconds: number;
}

// The payload comes from a seeded generator so a failing run can be reproduced; sending runs in a
// thread so that the echo flowing back never blocks the sender (a deadlock with full windows).
const PY_ECHO_STREAM = String.raw`
import hashlib, json, random, socket, sys, threading, time
host, port, n, seed, idle = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
data = random.Random(seed).randbytes(n)
errors = []
t0 = time.time()
s = socket.create_connection((host, port), timeout=idle)
sent = [0]
def sender():
    view = memoryview(data)
    try:
        while sent[0] < n:
            k = s.send(view[sent[0]:sent[0] + 262144])
            sent[0] += k
        s.shutdown(socket.SHUT_WR)
    except Exception as e:
        errors.append('send failed after %d bytes: %r' % (sent[0], e))
th = threading.Thread(target=sender)
th.start()
buf = bytearray()
while True:
    try:
        d = s.recv(1 << 20)
    except Exception as e:
        errors.append('recv failed after %d bytes (no data for %.0f s?): %r' % (len(buf), idle, e))
        break
    if not d:
        break
    buf += d
th.join()
s.close()
mismatch = -1
m = min(len(buf), n)
step = 65536
for off in range(0, m, step):
    if buf[off:off + step] != data[off:off + step]:
        for i in range(off, min(off + step, m)):
            if buf[i] != data[i]:
                mismatch = i
                break
        break
print(json.dumps({'sent': sent[0], 'received': len(buf), 'sentSha256': hashlib.sha256(data).hexdigest(),
    'receivedSha256': hashlib.sha256(buf).hexdigest(), 'firstMismatch': mismatch, 'errors': errors,
    'seconds': time.time() - t0}))
`;

/** Streams `bytes` seeded random bytes through an echo server and reports what came back. */
export async function pythonEchoStream(
  ns: string,
  host: string,
  port: number,
  bytes: number,
  opts: { seed?: number; idleTimeoutS?: number; timeoutMs: number },
): Promise<EchoStreamResult> {
  const argv = ['python3', '-c', PY_ECHO_STREAM, host, String(port), String(bytes), String(opts.seed ?? 1), String(opts.idleTimeoutS ?? 30)];
  const r = await run(inNs(ns, argv), { timeoutMs: opts.timeoutMs });
  return parseJsonLine<EchoStreamResult>(r, 'python echo client');
}

export interface ManyEchoFailure {
  index: number;
  localPort?: number;
  phase: string;
  received?: number;
  firstMismatch?: number;
  error?: string;
}

export interface ManyEchoResult {
  conns: number;
  bytes: number;
  connectedTogether: number;
  ok: number;
  failed: number;
  failures: ManyEchoFailure[];
  error?: string;
  stuckCount?: number;
  stuck?: { index: number; phase: string; received: number; localPort: number }[];
}

/** Opens `conns` connections at once, then exchanges `bytes` with echo on each (bench/clients/many-echo.ts). */
export async function manyEcho(ns: string, host: string, port: number, conns: number, bytes: number, timeoutMs: number): Promise<ManyEchoResult> {
  const node = tsNode('bench/clients/many-echo.ts', ['--host', host, '--port', String(port), '--conns', String(conns), '--bytes', String(bytes), '--timeout-ms', String(timeoutMs)]);
  // Each connection is a descriptor; the default soft limit can be 1024.
  const argv = inNs(ns, ['sh', '-c', 'ulimit -n 65536 2>/dev/null || ulimit -n 16384; exec "$@"', 'sh', ...node]);
  const r = await run(argv, { timeoutMs: timeoutMs + 15_000 });
  return parseJsonLine<ManyEchoResult>(r, 'many-echo client', true);
}

export interface PingResult {
  transmitted: number;
  received: number;
  output: string;
}

export async function ping(ns: string, host: string, count: number): Promise<PingResult> {
  const r = await run(inNs(ns, ['ping', '-n', '-c', String(count), '-W', '2', '-i', '0.2', host]), { timeoutMs: 10_000 + count * 3000 });
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  return { transmitted: m ? Number(m[1]) : 0, received: m ? Number(m[2]) : 0, output: `${r.stdout}\n${r.stderr}`.trim() };
}

/** The last stdout line as JSON; a clear error when the client printed nothing usable. */
function parseJsonLine<T>(r: RunResult, what: string, allowFailure = false): T {
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  try {
    const v = JSON.parse(last) as T;
    if (r.code !== 0 && !allowFailure && (v as { error?: unknown }).error === undefined)
      throw new Error(`exit code ${r.code}`);
    return v;
  } catch (e) {
    const why = r.timedOut ? 'was killed after its timeout' : `exited with code ${r.code} signal ${r.signal}`;
    throw new Error(`${what} ${why} without a result line (${e instanceof Error ? e.message : String(e)})\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}`);
  }
}
