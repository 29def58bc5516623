import { describe, expect, it } from 'vitest';
import { createLogger, formatLine } from '../../../src/cli/log.js';

describe('log', () => {
  const t = new Date('2026-01-02T03:04:05.678Z');

  it('formats one line: time, level, event, key=value', () => {
    expect(formatLine(t, 'info', 'conn.open', { remote: '1.2.3.4:5', n: 3, gone: undefined })).toBe(
      '2026-01-02T03:04:05.678Z INFO  conn.open remote=1.2.3.4:5 n=3',
    );
  });

  it('quotes values that would break the line or the key=value split', () => {
    const line = formatLine(t, 'error', 'x', { msg: 'two\nlines', eq: 'a=b', empty: '' });
    expect(line).not.toContain('\n');
    expect(line).toContain('msg="two\\nlines"');
    expect(line).toContain('eq="a=b"');
    expect(line).toContain('empty=""');
  });

  it('writes one JSON object per line by default: level name, ISO time, event and fields', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', write: (l) => lines.push(l), now: () => t });
    log.info('conn.open', { remote: '1.2.3.4:5', n: 3, gone: undefined, level: 'shadow' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('\n');
    expect(JSON.parse(lines[0]!)).toEqual({
      level: 'info',
      time: '2026-01-02T03:04:05.678Z',
      pid: process.pid,
      event: 'conn.open',
      remote: '1.2.3.4:5',
      n: 3,
      // A field named like one of the logger's own keys is kept under another name.
      level_: 'shadow',
    });
  });

  it('pretty format turns the same record into the readable line', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'debug', format: 'pretty', write: (l) => lines.push(l), now: () => t });
    log.debug('fault.set', { fault: 'loss 5 --link client', in: 'loss=5' });
    expect(lines).toEqual(['2026-01-02T03:04:05.678Z DEBUG fault.set fault="loss 5 --link client" in="loss=5"']);
  });

  it('drops lines below the level', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'warn', format: 'pretty', write: (l) => lines.push(l), now: () => t });
    log.debug('a');
    log.info('b');
    log.warn('c');
    log.error('d');
    expect(lines.map((l) => l.split(/ +/)[2])).toEqual(['c', 'd']);
    expect(log.enabled('info')).toBe(false);
    expect(log.enabled('error')).toBe(true);
  });
});
