import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigFileError, parseConfigText, readConfigFile } from '../../../src/cli/config-file.js';
import { mergeNodeOptions } from '../../../src/cli/node-command.js';
import { runCli, type CliIo } from '../../../src/cli/program.js';

const dir = mkdtempSync(join(tmpdir(), 'understudy-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const refusal = (text: string, where = 'config.yaml'): string => {
  try {
    parseConfigText(text, where);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigFileError);
    return (err as Error).message;
  }
  throw new Error('the config was accepted');
};

describe('config file', () => {
  it('reads every node option from YAML, with the command-line names as keys', () => {
    const c = readConfigFile(
      file(
        'full.yaml',
        ['vip: 198.18.0.100', 'port: 8080', 'service: echo', 'tun: us%d', 'mtu: 9000', 'log-level: debug', 'log-format: pretty', 'control: /tmp/x.sock', 'metrics: 127.0.0.1:9464', 'lan: lo'].join('\n'),
      ),
    );
    expect(c).toEqual({
      vip: '198.18.0.100',
      port: 8080,
      service: { kind: 'echo' },
      tun: 'us%d',
      mtu: 9000,
      'log-level': 'debug',
      'log-format': 'pretty',
      control: '/tmp/x.sock',
      metrics: { host: '127.0.0.1', port: 9464 },
      lan: 'lo',
    });
  });

  it('reads JSON', () => {
    expect(readConfigFile(file('c.json', '{"vip": "198.18.0.100", "port": 80}'))).toEqual({ vip: '198.18.0.100', port: 80 });
  });

  it('an empty file sets nothing', () => {
    expect(parseConfigText('', 'empty.yaml')).toEqual({});
  });

  it.each([
    ['port: 70000', 'config.yaml: port: expected an integer 1..65535'],
    ['port: "80"', 'config.yaml: port: expected an integer 1..65535'],
    ['port: 1.5', 'config.yaml: port: expected an integer 1..65535'],
    ['mtu: 100', 'config.yaml: mtu: expected an integer 576..65535'],
    ['vip: 300.1.1.1', 'config.yaml: vip: not an IPv4 address (expected a.b.c.d)'],
    ['vip: 10', 'config.yaml: vip: expected a string'],
    ['service: telnet', 'config.yaml: service: unknown service "telnet"'],
    ['log-level: loud', 'config.yaml: log-level: expected one of debug, info, warn, error'],
    ['metrics: nowhere', 'config.yaml: metrics: expected host:port'],
    ['prot: 80', 'config.yaml: prot: unknown option (known: vip, port'],
    ['- a\n- b', 'config.yaml: expected a mapping of option: value'],
    ['port: [80', 'config.yaml: not valid YAML'],
    ['port: 80\nport: 81', 'config.yaml: not valid YAML'],
  ])('refuses %j naming the key', (text, message) => {
    expect(refusal(text)).toContain(message);
  });

  it('says which file could not be read', () => {
    expect(() => readConfigFile(join(dir, 'missing.yaml'))).toThrow(`${join(dir, 'missing.yaml')}: cannot read (ENOENT)`);
  });
});

describe('config file and command line together', () => {
  const fileConfig = { vip: '198.18.0.100', port: 80, service: { kind: 'echo' as const }, mtu: 9000, 'log-level': 'warn' as const };

  it('the command line overrides the file, the file overrides the defaults', () => {
    const o = mergeNodeOptions({ config: 'x.yaml', port: 8080 }, () => fileConfig);
    expect(o).toMatchObject({ vip: '198.18.0.100', port: 8080, mtu: 9000, logLevel: 'warn', logFormat: 'json', tun: 'understudy%d' });
  });

  it('still requires vip, port and service from one source or the other', () => {
    expect(() => mergeNodeOptions({ config: 'x.yaml' }, () => ({ vip: '198.18.0.100', port: 80 }))).toThrow(/required option '--service <spec>' not specified/);
  });

  it('understudy node --config with a bad file exits 2 with the key in one line', async () => {
    const p = file('bad.yaml', 'vip: 198.18.0.100\nport: 0\nservice: echo\n');
    const io: CliIo & { err: string } = { err: '', stdout: () => undefined, stderr: (t) => void (io.err += t) };
    expect(await runCli(['node', '--config', p], io)).toBe(2);
    expect(io.err).toBe(`understudy: ${p}: port: expected an integer 1..65535\n`);
  });
});
