// proxy: and module: end to end: the real `understudy node` in the primary namespace, real curl in
// the client namespace. First in front of `python3 -m http.server` bound to 127.0.0.1 inside the
// primary (the backend is reachable only through the proxy), then with the fixture Express-style
// app as a module. Each node is stopped with SIGTERM and must exit 0.

import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Lab } from '../../scripts/lab.js';
import { curl } from './helpers/clients.js';
import { useLab } from './helpers/lab-fixture.js';

const TUN = 'ussvc0';
const BACKEND_PORT = 8081;
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A node's output, line by line, with a wait for a line that matches. */
class Output {
  readonly lines: string[] = [];
  private partial = '';
  private waiters: { re: RegExp; resolve: () => void }[] = [];

  constructor(child: ChildProcess) {
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const parts = (this.partial + chunk).split('\n');
        this.partial = parts.pop() ?? '';
        for (const line of parts) {
          this.lines.push(line);
          this.waiters = this.waiters.filter((w) => (w.re.test(line) ? (w.resolve(), false) : true));
        }
      });
    }
  }

  text(): string {
    return [...this.lines, this.partial].join('\n');
  }

  waitFor(re: RegExp, timeoutMs: number, exited: Promise<unknown>): Promise<void> {
    if (this.lines.some((l) => re.test(l))) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms:\n${this.text()}`)), timeoutMs);
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`the node exited before printing ${re}:\n${this.text()}`));
      });
      this.waiters.push({
        re,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}

interface RunningNode {
  child: ChildProcess;
  output: Output;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

async function startNode(l: Lab, service: string, control: string): Promise<RunningNode> {
  const child = l.spawn('primary', process.execPath, [
    'bin/understudy.js', 'node',
    '--vip', l.addr.vip, '--port', '80',
    '--service', service,
    '--lan', l.lanIface, '--tun', TUN,
    '--log-level', 'info', '--log-format', 'pretty',
    '--control', control,
  ]);
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const output = new Output(child);
  await output.waitFor(/ node\.ready /, 30_000, exited);
  return { child, output, exited };
}

async function stopNode(node: RunningNode): Promise<void> {
  node.child.kill('SIGTERM');
  const [code, signal] = await Promise.race([
    node.exited,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no exit 15 s after SIGTERM:\n${node.output.text()}`)), 15_000)),
  ]);
  expect({ code, signal }, node.output.text()).toEqual({ code: 0, signal: null });
}

/** Polls until `url` answers over the VIP: the first ARP exchange may take a moment. */
async function untilAnswering(l: Lab, url: string, out: string, node: RunningNode): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await curl(l.ns.client, [url], [out], 5_000);
    if (r.exitCode === 0 && r.transfers[0]?.httpCode !== undefined && r.transfers[0].httpCode > 0) return;
    if (Date.now() > deadline) throw new Error(`${url} never answered: ${r.stderr}\n${node.output.text()}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

function kill(child: ChildProcess | undefined): void {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

describe('services in the lab', () => {
  const lab = useLab();
  const dir = mkdtempSync(join(tmpdir(), 'understudy-services-lab-'));
  const www = join(dir, 'www');
  const out = join(dir, 'out');
  let backend: ChildProcess | undefined;
  let node: RunningNode | undefined;

  afterAll(() => {
    // lab.destroy() (in useLab) kills whatever is still running in the namespaces as well.
    kill(node?.child);
    kill(backend);
    rmSync(dir, { recursive: true, force: true });
  });

  describe('proxy: in front of python3 -m http.server', () => {
    it('starts the backend on 127.0.0.1 inside the primary and a node proxying to it', async () => {
      const l = lab();
      await l.exec('primary', 'mkdir', ['-p', www, out]);
      backend = l.spawn('primary', 'python3', ['-m', 'http.server', String(BACKEND_PORT), '--bind', '127.0.0.1', '--directory', www], { stdio: 'ignore' });
      // The backend is up once a connection to it succeeds from inside the same namespace.
      const probe = `import socket,time
for _ in range(200):
    try:
        socket.create_connection(('127.0.0.1', ${BACKEND_PORT}), 1).close(); break
    except OSError: time.sleep(0.05)
else: raise SystemExit('backend never listened')`;
      await l.exec('primary', 'python3', ['-c', probe], { timeoutMs: 20_000 });
      writeFileSync(join(www, 'hello.txt'), 'hello through the proxy\n');
      node = await startNode(l, `proxy:127.0.0.1:${BACKEND_PORT}`, join(dir, 'proxy.sock'));
      await untilAnswering(l, `http://${l.addr.vip}/hello.txt`, join(out, 'probe.txt'), node);
      expect(readFileSync(join(out, 'probe.txt'), 'utf8')).toBe('hello through the proxy\n');
    });

    it('downloads a 32 MiB file byte-exact through the proxy', async () => {
      const l = lab();
      const blob = randomBytes(32 * 1024 * 1024);
      writeFileSync(join(www, 'big.bin'), blob);
      const file = join(out, 'big.bin');
      const r = await curl(l.ns.client, [`http://${l.addr.vip}/big.bin`], [file], 120_000);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.transfers[0]?.httpCode).toBe(200);
      const got = readFileSync(file);
      expect(got.length).toBe(blob.length);
      expect(sha256(got)).toBe(sha256(blob));
    }, 150_000);

    it('resets the client and logs why when the backend is gone', async () => {
      const l = lab();
      if (node === undefined || backend === undefined) throw new Error('not started');
      backend.kill('SIGKILL');
      await once(backend, 'exit');
      const r = await curl(l.ns.client, [`http://${l.addr.vip}/hello.txt`], [join(out, 'gone.txt')], 10_000);
      // curl: "Recv failure: Connection reset by peer" (56), or "Send failure" (55) if the reset came
      // first; or "Couldn't connect" (7) when the reset lands right behind the SYN-ACK, before curl
      // reads SO_ERROR at the end of its non-blocking connect (the refusal takes under 1 ms); or
      // 55 with "getpeername() failed ... Transport endpoint is not connected" when the reset
      // lands between the connect and curl asking for the peer's address.
      expect([7, 55, 56], r.stderr).toContain(r.exitCode);
      if (r.exitCode !== 7) expect(r.stderr).toMatch(/reset|not connected/i);
      await node.output.waitFor(/ conn\.error .*EBACKEND.*proxy: cannot connect to backend 127\.0\.0\.1:8081 \(ECONNREFUSED\)/, 5_000, node.exited);
    });

    it('stops on SIGTERM with exit 0', async () => {
      if (node === undefined) throw new Error('not started');
      await stopNode(node);
      node = undefined;
    });
  });

  describe('module: with an Express-style app', () => {
    it('starts with the fixture app, given relative to the working directory', async () => {
      const l = lab();
      node = await startNode(l, 'module:test/fixtures/express-style-app.mjs', join(dir, 'module.sock'));
      await untilAnswering(l, `http://${l.addr.vip}/`, join(out, 'root.txt'), node);
      expect(readFileSync(join(out, 'root.txt'), 'utf8')).toBe('understudy module app\n');
    });

    it('answers a route with a path parameter', async () => {
      const l = lab();
      const r = await l.exec('client', 'curl', ['-sS', '--max-time', '10', `http://${l.addr.vip}/hello/lab`]);
      expect(JSON.parse(r.stdout)).toEqual({ hello: 'lab' });
    });

    it('takes a JSON body and answers with JSON', async () => {
      const l = lab();
      const r = await l.exec('client', 'curl', [
        '-sS', '--max-time', '10', '-H', 'Content-Type: application/json', '--data', '{"numbers":[40,2]}', `http://${l.addr.vip}/sum`,
      ]);
      expect(JSON.parse(r.stdout)).toEqual({ sum: 42, count: 2 });
    });

    it('answers 404 for an unknown route', async () => {
      const l = lab();
      const r = await l.exec('client', 'curl', ['-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', `http://${l.addr.vip}/nowhere`]);
      expect(r.stdout).toBe('404');
    });

    it('stops on SIGTERM with exit 0', async () => {
      if (node === undefined) throw new Error('not started');
      await stopNode(node);
      expect(node.output.text()).toMatch(/ node\.starting .*service=module/);
      node = undefined;
    });
  });
});
