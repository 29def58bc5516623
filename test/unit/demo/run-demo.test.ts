// The parts of `understudy demo` that need no lab: refusing to run on a build without
// replication, the command line, and the default output directory.

import { describe, expect, it } from 'vitest';
import { runCli, type CliIo } from '../../../src/cli/program.js';
import { defaultOutDir, missingReplicationOptions } from '../../../src/demo/run-demo.js';

function capture(): CliIo & { out: string; err: string } {
  const io = { out: '', err: '', stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
  return io;
}

describe('the replication check', () => {
  it('finds every replication option in a help text that lists them', () => {
    const help = [
      'Options:',
      '  --role <role>           primary | backup',
      '  --replication <addr>    own host:port for the replication channel',
      '  --peer <host:port>      the other node',
      '  --key-file <path>       shared key',
      '  --vip <ipv4>            virtual IPv4 address to serve (required)',
    ].join('\n');
    expect(missingReplicationOptions(help)).toEqual([]);
  });

  it('reports the options a help text lacks, and is not fooled by words that contain them', () => {
    const help = ['Options:', '  --vip <ipv4>   serve on this', '  --roles-file <p>  not the same option', '  --peerless     nor this'].join('\n');
    expect(missingReplicationOptions(help)).toEqual(['--role', '--replication', '--peer', '--key-file']);
  });
});

describe('understudy demo on the command line', () => {
  it('is listed by --help', async () => {
    const io = capture();
    expect(await runCli(['--help'], io)).toBe(0);
    expect(io.out).toMatch(/\bdemo\b/);
  });

  it.each([['0'], ['-3'], ['1.5'], ['lots'], ['5000']])('--size %s is a usage error (exit 2, one line)', async (size) => {
    const io = capture();
    expect(await runCli(['demo', '--size', size], io)).toBe(2);
    expect(io.err).toMatch(/^understudy: .*--size.*1\.\.4096/);
    expect(io.err.trim().split('\n')).toHaveLength(1);
  });

  it('documents --size, --keep and --out', async () => {
    const io = capture();
    await runCli(['demo', '--help'], io);
    expect(io.out).toMatch(/--size <MiB>[\s\S]*default 256/);
    expect(io.out).toMatch(/--keep/);
    expect(io.out).toMatch(/--out <dir>/);
  });
});

describe('defaultOutDir', () => {
  it('names the directory after the UTC time, in the current directory', () => {
    const dir = defaultOutDir(new Date('2026-11-28T15:04:05.678Z'));
    expect(dir).toBe(`${process.cwd()}/understudy-demo-20261128-150405`);
  });
});
