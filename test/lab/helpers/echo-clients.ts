// Python clients for the replication lab tests (python3 is in every lab namespace; bash's /dev/tcp
// is not everywhere), and handles on the long-running ones (many paced echo streams; connections
// opened in a tight loop) that print `progress N` lines and a JSON verdict last.

import type { ChildProcess } from 'node:child_process';
import type { Lab } from '../../../scripts/lab.js';

// Connections at once, each sending seeded random bytes at a paced rate (so the streams last
// several seconds) from its own thread while another reads the echo; progress lines (bytes echoed
// in total) let the test kill the primary mid-stream; the last line is the JSON verdict.
// Arguments: host port connections bytes-each bytes-per-second idle-timeout-s [source-port-base]
// (with a base, connection i binds source port base+i).
export const PY_MANY_ECHO = String.raw`
import json, random, socket, sys, threading, time
host, port, conns, n, rate, idle = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
sport = int(sys.argv[7]) if len(sys.argv) > 7 else None
received = [0] * conns
took = [0.0] * conns
failures = []
ok = [0]
lock = threading.Lock()
def one(i):
    t_start = time.time()
    data = random.Random(1000 + i).randbytes(n)
    try:
        s = socket.create_connection((host, port), timeout=idle, source_address=None if sport is None else ('', sport + i))
    except Exception as e:
        with lock: failures.append('conn %d: connect: %r' % (i, e))
        return
    def sender():
        t0 = time.time()
        off = 0
        try:
            while off < n:
                k = s.send(data[off:off + 16384])
                off += k
                ahead = off / rate - (time.time() - t0)
                if ahead > 0: time.sleep(ahead)
            s.shutdown(socket.SHUT_WR)
        except Exception as e:
            with lock: failures.append('conn %d: send after %d: %r' % (i, off, e))
    th = threading.Thread(target=sender)
    th.start()
    buf = bytearray()
    try:
        while True:
            d = s.recv(1 << 16)
            if not d: break
            buf += d
            received[i] = len(buf)
    except Exception as e:
        with lock: failures.append('conn %d: recv after %d: %r' % (i, len(buf), e))
    th.join()
    s.close()
    took[i] = time.time() - t_start
    if bytes(buf) == data:
        with lock: ok[0] += 1
    else:
        m = next((j for j in range(min(len(buf), n)) if buf[j] != data[j]), min(len(buf), n))
        with lock: failures.append('conn %d: got %d of %d bytes, first difference at %d' % (i, len(buf), n, m))
threads = [threading.Thread(target=one, args=(i,)) for i in range(conns)]
for t in threads: t.start()
while any(t.is_alive() for t in threads):
    print('progress %d' % sum(received), flush=True)
    time.sleep(0.05)
for t in threads: t.join()
slow = sorted(range(conns), key=lambda i: -took[i])[:3]
print(json.dumps({'ok': ok[0], 'failures': failures, 'slowest': [[i, round(took[i], 2)] for i in slow]}), flush=True)
`;

/** A client process in the lab that prints `progress N` lines and a JSON verdict as its last line. */
export interface ProgressClient<T> {
  /** The last progress figure printed. */
  progress(): number;
  /** True once the process has exited. */
  exited(): boolean;
  /** Its output so far (for failure messages). */
  output(): string;
  /** Resolves with the exit code and the verdict; rejects when it does not end within timeoutMs. */
  result(timeoutMs: number): Promise<{ code: number | null; verdict: T }>;
  /** Asks the client to finish (a line on its stdin): clients that loop stop starting new work. */
  finish(): void;
}

function progressClient<T>(child: ChildProcess, what: string): ProgressClient<T> {
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  let code: number | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (c) => {
      code = c;
      resolve();
    }),
  );
  return {
    progress: () => {
      const m = [...out.matchAll(/^progress (\d+)$/gm)].at(-1);
      return m === undefined ? 0 : Number(m[1]);
    },
    exited: () => code !== undefined,
    output: () => `${out.slice(-2000)}\n${err.slice(-2000)}`,
    finish: () => {
      child.stdin?.end('stop\n');
    },
    async result(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs)));
      const late = await Promise.race([exit.then(() => false), timedOut]);
      clearTimeout(timer);
      if (late) {
        child.kill('SIGKILL');
        throw new Error(`${what} did not end within ${timeoutMs / 1000} s:\n${out.slice(-2000)}\n${err.slice(-2000)}`);
      }
      const last = out.trim().split('\n').at(-1) ?? '';
      try {
        return { code: code ?? null, verdict: JSON.parse(last) as T };
      } catch {
        throw new Error(`${what} exited with ${String(code)} without a verdict:\n${out.slice(-2000)}\n${err.slice(-2000)}`);
      }
    },
  };
}

export interface EchoStreamsVerdict {
  /** Connections whose echo came back byte for byte. */
  ok: number;
  failures: string[];
  /** The three slowest connections: [index, seconds from start to close]. */
  slowest: [number, number][];
}

/**
 * `conns` connections at once through echo, each sending `bytes` seeded random bytes at `rate`
 * bytes/s (so that the streams last long enough to kill a node part-way) while reading the echo;
 * progress is the number of bytes echoed so far over every connection.
 */
export function startEchoStreams(lab: Lab, host: string, port: number, opts: { conns: number; bytes: number; rate: number; idleTimeoutS: number }): ProgressClient<EchoStreamsVerdict> {
  const argv = [host, String(port), String(opts.conns), String(opts.bytes), String(opts.rate), String(opts.idleTimeoutS)];
  return progressClient(lab.spawn('client', 'python3', ['-c', PY_MANY_ECHO, ...argv]), 'the echo-streams client');
}

export interface ConnectLoopVerdict {
  /** Connections that completed with their echo intact. */
  ok: number;
  /** Each failed connection: worker, phase and error. */
  failures: string[];
  /** The slowest completed connection, seconds (a SYN retransmitted by the client shows here). */
  slowestS: number;
}

/**
 * `workers` threads each opening connections in a tight loop (connect, send `size` bytes, read the
 * echo, close) until finish(); progress is the number of connections completed.
 */
export function startConnectLoop(lab: Lab, host: string, port: number, opts: { workers: number; size: number; timeoutS: number }): ProgressClient<ConnectLoopVerdict> {
  const argv = [host, String(port), String(opts.workers), String(opts.size), String(opts.timeoutS)];
  return progressClient(lab.spawn('client', 'python3', ['-c', PY_CONNECT_LOOP, ...argv]), 'the connect-loop client');
}

// The loop stops starting connections once a line arrives on stdin. A connect that gets no answer
// is left to the kernel's own SYN retransmissions (the timeout is far above them).
const PY_CONNECT_LOOP = String.raw`
import json, random, socket, sys, threading, time
host, port, workers, size, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
stop = threading.Event()
lock = threading.Lock()
ok = [0]
slowest = [0.0]
failures = []
def worker(w):
    rnd = random.Random(w)
    i = 0
    while not stop.is_set():
        data = rnd.randbytes(size)
        phase = 'connect'
        t0 = time.time()
        try:
            s = socket.create_connection((host, port), timeout=timeout)
            try:
                phase = 'send'
                s.sendall(data)
                phase = 'recv'
                buf = b''
                while len(buf) < size:
                    d = s.recv(size - len(buf))
                    if not d: break
                    buf += d
            finally:
                s.close()
            if buf != data:
                with lock: failures.append('worker %d conn %d: echo differs (%d of %d bytes)' % (w, i, len(buf), size))
            else:
                with lock:
                    ok[0] += 1
                    slowest[0] = max(slowest[0], time.time() - t0)
        except Exception as e:
            with lock: failures.append('worker %d conn %d: %s: %r' % (w, i, phase, e))
        i += 1
def watch_stdin():
    sys.stdin.readline()
    stop.set()
threading.Thread(target=watch_stdin, daemon=True).start()
threads = [threading.Thread(target=worker, args=(w,)) for w in range(workers)]
for t in threads: t.start()
while any(t.is_alive() for t in threads):
    print('progress %d' % ok[0], flush=True)
    time.sleep(0.05)
for t in threads: t.join()
print(json.dumps({'ok': ok[0], 'failures': failures, 'slowestS': slowest[0]}), flush=True)
`;

export interface IdleEchoVerdict {
  /** Connections whose every echo came back exactly and that ended with a clean close. */
  ok: number;
  failures: string[];
  /** Rounds of sampled echoes completed (each to a rotating sample of the connections). */
  rounds: number;
  /** The longest round, seconds (a takeover's pause shows here). */
  slowestRoundS: number;
}

/**
 * `conns` connections held open, mostly idle: once `connected N` is printed, every `periodS` a
 * rotating sample of `sample` connections each sends 64 seeded bytes and waits for their echo;
 * progress is the number of rounds done. After finish() every connection echoes once more, then
 * half-closes and reads to the end: a connection lost or reset anywhere is a failure.
 */
export function startIdleEcho(lab: Lab, host: string, port: number, opts: { conns: number; sourcePortBase: number; sample: number; periodS: number; timeoutS: number }): ProgressClient<IdleEchoVerdict> {
  const argv = [host, String(port), String(opts.conns), String(opts.sourcePortBase), String(opts.sample), String(opts.periodS), String(opts.timeoutS)];
  return progressClient(lab.spawn('client', 'python3', ['-c', PY_IDLE_ECHO, ...argv]), 'the idle-echo client');
}

// One thread and poll: a thousand threads would load the two cores the nodes need (select stops at fd 1024).
const PY_IDLE_ECHO = String.raw`
import json, random, select, socket, sys, threading, time
host, port, conns, base, sample, period, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
stop = threading.Event()
def watch_stdin():
    sys.stdin.readline()
    stop.set()
threading.Thread(target=watch_stdin, daemon=True).start()
rnd = random.Random(7)
socks = []
bad = {}
for i in range(conns):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('', base + i))
    s.settimeout(timeout)
    s.connect((host, port))
    s.setblocking(False)
    socks.append(s)
print('connected %d' % conns, flush=True)
def echo_round(idx):
    want = {}
    for i in idx:
        if i in bad: continue
        d = rnd.randbytes(64)
        try:
            socks[i].sendall(d)
        except Exception as e:
            bad[i] = 'send: %r' % e
            continue
        want[i] = [d, b'']
    deadline = time.time() + timeout
    while want and time.time() < deadline:
        fds = {socks[i].fileno(): i for i in want}
        poller = select.poll()
        for fd in fds: poller.register(fd, select.POLLIN)
        for fd, _ in poller.poll(500):
            i = fds[fd]
            try:
                got = socks[i].recv(4096)
            except Exception as e:
                bad[i] = 'recv: %r' % e
                del want[i]
                continue
            if not got:
                bad[i] = 'closed by the server'
                del want[i]
                continue
            want[i][1] += got
            if len(want[i][1]) >= 64:
                if want[i][1] != want[i][0]: bad[i] = 'echo differs'
                del want[i]
    for i in want: bad[i] = 'no echo within %g s' % timeout
rounds = 0
slowest = 0.0
nxt = 0
while not stop.is_set():
    t0 = time.time()
    echo_round([(nxt + k) % conns for k in range(sample)])
    nxt = (nxt + sample) % conns
    rounds += 1
    slowest = max(slowest, time.time() - t0)
    print('progress %d' % rounds, flush=True)
    time.sleep(max(0.0, period - (time.time() - t0)))
echo_round(range(conns))
for i, s in enumerate(socks):
    if i in bad: continue
    try:
        s.setblocking(True)
        s.shutdown(socket.SHUT_WR)
        if s.recv(1) != b'': bad[i] = 'data after the end'
    except Exception as e:
        bad[i] = 'close: %r' % e
for s in socks: s.close()
failures = ['conn %d: %s' % (i, why) for i, why in sorted(bad.items())[:20]]
print(json.dumps({'ok': conns - len(bad), 'failures': failures, 'rounds': rounds, 'slowestRoundS': round(slowest, 2)}), flush=True)
`;
