import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { oneLine, runCli, type CliIo } from '../../../src/cli/program.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function capture(): CliIo & { out: string; err: string } {
  const io = {
    out: '',
    err: '',
    stdout: (t: string) => void (io.out += t),
    stderr: (t: string) => void (io.err += t),
  };
  return io;
}

const valid = ['node', '--vip', '198.18.0.100', '--port', '80', '--service', 'echo'];

describe('understudy command line (in process)', () => {
  it('--help lists the commands and exits 0', async () => {
    const io = capture();
    expect(await runCli(['--help'], io)).toBe(0);
    expect(io.out).toMatch(/Commands:/);
    expect(io.out).toMatch(/\bnode\b/);
  });

  it.each([
    [['frob'], /unknown command 'frob'/],
    [['--frob'], /unknown option '--frob'/],
    [[...valid, '--frob'], /unknown option '--frob'/],
    [['node', '--port', '80', '--service', 'echo'], /required option '--vip/],
    [[...valid.slice(0, 2), '300.1.1.1', ...valid.slice(3)], /Not an IPv4 address/],
    [[...valid.slice(0, 4), '70000', ...valid.slice(5)], /1\.\.65535/],
    [[...valid.slice(0, 6), 'telnet'], /Unknown service "telnet"/],
    [[...valid.slice(0, 6), 'http-static:/no/such/dir'], /does not exist/],
    [[...valid, '--mtu', '100'], /576\.\.65535/],
    [[...valid, '--log-level', 'loud'], /debug, info, warn, error/],
    [[...valid, '--tun', 'has/slash'], /interface name/],
    [[...valid, '--lan', 'nosuchif0'], /no network interface named "nosuchif0"/],
    [[...valid, 'extra'], /too many arguments/],
    [[...valid, '--log-format', 'xml'], /json, pretty/],
    [[...valid, '--metrics', 'nowhere'], /host:port/],
    [['fault'], /fault: missing kind \(crash, hang, loss/],
    [['fault', 'frob'], /fault: unknown kind 'frob'/],
    [['fault', 'loss'], /missing required argument 'pct'/],
    [['fault', 'loss', '101'], /0\.\.100/],
    [['fault', 'loss', 'lots'], /0\.\.100/],
    [['fault', 'loss', '5', '--direction', 'up'], /Allowed choices are in, out, both/],
    [['fault', 'corrupt', '5', '--link', 'wan'], /Allowed choices are client, replication/],
    [['fault', 'delay', '10', '--jitter', 'x'], /--jitter/],
    [['fault', 'hang', '0'], /1\.\.600000/],
    [['fault', 'partition', '--link', 'wan'], /Allowed choices are client, replication, both/],
    [['fault', 'crash', 'now'], /too many arguments/],
    [['status', '--watch', '5'], /--watch: expected milliseconds >= 100/],
    [['status', '--control', '/x.sock', '--tun', 'us0'], /cannot be used with/],
    [['switchover', '--timeout', '5'], /100\.\.60000/],
    [['switchover', '--timeout', 'soon'], /100\.\.60000/],
    [['switchover', 'now'], /too many arguments/],
    [['switchover', '--force'], /unknown option '--force'/],
    [['switchover', '--control', '/x.sock', '--tun', 'us0'], /cannot be used with/],
  ])('%j fails with one line and exit 2', async (argv, message) => {
    const io = capture();
    expect(await runCli(argv, io)).toBe(2);
    expect(io.err).toMatch(message);
    expect(io.err.trimEnd().split('\n')).toHaveLength(1);
    expect(io.err).toMatch(/^understudy: /);
  });

  it.each([
    [['status']],
    [['status', '--json', '--watch', '200']],
    [['fault', 'loss', '5']],
    [['fault', 'clear']],
    [['fault', 'list']],
    [['switchover']],
  ])('%j with no node at the control path fails with one line and exit 1', async (argv) => {
    const io = capture();
    expect(await runCli([...argv, '--control', '/nonexistent/understudy-test.sock'], io)).toBe(1);
    expect(io.err).toBe('understudy: no node at /nonexistent/understudy-test.sock (no such socket)\n');
    expect(io.out).toBe('');
  });

  it('no arguments prints help to stderr and exits 2', async () => {
    const io = capture();
    expect(await runCli([], io)).toBe(2);
    expect(io.err).toMatch(/Usage: understudy/);
  });

  it('folds commander suggestions into the one line', () => {
    expect(oneLine("error: unknown option '--prot'\n(Did you mean --port?)\n")).toBe("understudy: unknown option '--prot' (Did you mean --port?)\n");
  });
});

describe('bin/understudy.js (spawned)', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [join(repo, 'bin', 'understudy.js'), ...args], { cwd: repo, encoding: 'utf8', timeout: 30_000 });

  it('rejects a bad VIP with exit 2 and one line on stderr', () => {
    const r = run(['node', '--vip', '300.1.1.1', '--port', '80', '--service', 'echo']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^understudy: .*'300\.1\.1\.1'.*Not an IPv4 address/);
  });

  it('--help exits 0 and lists the node command', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/node \[options\]/);
  });

  it('an unknown command exits 2', () => {
    const r = run(['frobnicate']);
    expect(r.status).toBe(2);
    expect(r.stderr.trimEnd()).toBe("understudy: unknown command 'frobnicate'");
  });
});
