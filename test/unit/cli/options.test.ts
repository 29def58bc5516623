import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { parseInterfaceName, parseIpv4, parseLogLevel, parseMtu, parsePort, parseService, parseSynBacklog, parseTunName } from '../../../src/cli/options.js';

describe('option validators', () => {
  it('accepts and normalises IPv4 addresses', () => {
    expect(parseIpv4('198.18.0.100')).toBe('198.18.0.100');
    expect(parseIpv4('010.001.0.1')).toBe('10.1.0.1');
  });

  it.each(['300.1.1.1', '1.2.3', '1.2.3.4.5', 'a.b.c.d', '', '1.2.3.-4', ' 1.2.3.4', '0.0.0.0', '255.255.255.255', '127.0.0.1', '224.0.0.1'])(
    'rejects VIP %j',
    (v) => {
      expect(() => parseIpv4(v)).toThrow(InvalidArgumentError);
    },
  );

  it('bounds ports to 1..65535', () => {
    expect(parsePort('1')).toBe(1);
    expect(parsePort('65535')).toBe(65535);
    for (const bad of ['0', '65536', '-1', '80.5', '1e3', 'http', '']) expect(() => parsePort(bad)).toThrow(InvalidArgumentError);
  });

  it('bounds the MTU to 576..65535', () => {
    expect(parseMtu('576')).toBe(576);
    expect(parseMtu('9000')).toBe(9000);
    for (const bad of ['575', '65536', '1500.0', 'jumbo']) expect(() => parseMtu(bad)).toThrow(/576\.\.65535/);
  });

  it('bounds the SYN backlog to 1..65535 half-open connections', () => {
    expect(parseSynBacklog('1')).toBe(1);
    expect(parseSynBacklog('256')).toBe(256);
    for (const bad of ['0', '65536', '2.5', 'many']) expect(() => parseSynBacklog(bad)).toThrow(InvalidArgumentError);
  });

  it('knows the log levels', () => {
    expect(parseLogLevel('debug')).toBe('debug');
    expect(() => parseLogLevel('trace')).toThrow(/debug, info, warn, error/);
  });

  it('checks interface names', () => {
    expect(parseInterfaceName('eth0')).toBe('eth0');
    expect(parseInterfaceName('a23456789012345')).toBe('a23456789012345');
    for (const bad of ['', 'a234567890123456', 'eth/0', 'eth 0', '..', 'eth0:1']) expect(() => parseInterfaceName(bad)).toThrow(InvalidArgumentError);
    expect(parseTunName('us%d')).toBe('us%d');
    expect(() => parseTunName('us%d%d')).toThrow(/one "%d"/);
    expect(() => parseTunName('us%x')).toThrow(/one "%d"/);
  });

  it('turns service spec errors into argument errors', () => {
    expect(parseService('echo')).toEqual({ kind: 'echo' });
    expect(() => parseService('gopher')).toThrow(InvalidArgumentError);
    expect(parseService('proxy:1.2.3.4:80')).toEqual({ kind: 'proxy', host: '1.2.3.4', port: 80 });
    expect(() => parseService('proxy:1.2.3.4')).toThrow(/^Proxy: "1\.2\.3\.4" is not <host>:<port>/);
  });
});
