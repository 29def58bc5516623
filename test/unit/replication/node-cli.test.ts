// The replication options of `understudy node`: all four of --role, --replication, --peer and
// --key-file or none, timing options only with them, and a key file that cannot be used refused in
// one line before anything touches the network (no deps are called: the checks come first).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runNodeCommand, type NodeCommandOptions } from '../../../src/cli/node-command.js';
import type { NodeDeps } from '../../../src/cli/node-runner.js';
import { UsageError } from '../../../src/cli/usage-error.js';

const dir = mkdtempSync(join(tmpdir(), 'understudy-node-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base: NodeCommandOptions = { vip: '198.18.0.100', port: 80, service: { kind: 'echo' }, tun: 'fake%d', mtu: 1500, logLevel: 'info' };
const repl = { role: 'primary' as const, replication: { host: '127.0.0.1', port: 7070 }, peer: { host: '127.0.0.1', port: 7071 } };
// Any use of the deps would be a bug here: every case must be refused before startup.
const deps = new Proxy({}, { get: () => { throw new Error('deps used'); } }) as unknown as NodeDeps;

function run(opts: Partial<NodeCommandOptions>): { code: Promise<number>; err: () => string } {
  let err = '';
  const io = { stdout: () => undefined, stderr: (t: string) => void (err += t) };
  return { code: runNodeCommand({ ...base, ...opts }, { io, exitCode: 0 }, deps), err: () => err };
}

describe('node replication options', () => {
  it('needs all of --role, --replication, --peer and --key-file', async () => {
    await expect(run({ role: 'backup' }).code).rejects.toThrow(UsageError);
    await expect(run({ ...repl }).code).rejects.toThrow(/--role, --replication, --peer and --key-file/);
  });

  it('takes --heartbeat, --dead-after and --on-takeover only with replication', async () => {
    await expect(run({ heartbeat: 20 }).code).rejects.toThrow(/--heartbeat needs --role/);
    await expect(run({ onTakeover: 'true' }).code).rejects.toThrow(/--on-takeover needs --role/);
  });

  it('refuses a dead-after shorter than two heartbeats', async () => {
    const key = join(dir, 'ok.key');
    writeFileSync(key, 'ab'.repeat(32));
    await expect(run({ ...repl, keyFile: key, heartbeat: 100, deadAfter: 150 }).code).rejects.toThrow(/at least twice --heartbeat/);
  });

  it('refuses a missing or short key file in one line, exit 1', async () => {
    const missing = run({ ...repl, keyFile: join(dir, 'nope.key') });
    expect(await missing.code).toBe(1);
    expect(missing.err()).toMatch(/^understudy: replication key file .*nope\.key does not exist/);
    expect(missing.err().trim().split('\n')).toHaveLength(1);
    const shortKey = join(dir, 'short.key');
    writeFileSync(shortKey, 'abcd');
    const short = run({ ...repl, keyFile: shortKey });
    expect(await short.code).toBe(1);
    expect(short.err()).toMatch(/at least 32 are needed/);
  });
});
