import { describe, expect, it } from 'vitest';
import { LineSplitter, parseRequest } from '../../../src/control/protocol.js';

function splitter(max = 16): { lines: string[]; overflows: number; s: LineSplitter } {
  const out = { lines: [] as string[], overflows: 0, s: undefined as unknown as LineSplitter };
  out.s = new LineSplitter(max, (l) => out.lines.push(l), () => out.overflows++);
  return out;
}

describe('control protocol: line splitting', () => {
  it('joins a line split across chunks and splits several lines in one chunk', () => {
    const t = splitter();
    t.s.push(Buffer.from('ab'));
    t.s.push(Buffer.from('c\nde\nf'));
    t.s.push(Buffer.from('\r\n'));
    expect(t.lines).toEqual(['abc', 'de', 'f']);
    expect(t.s.pending).toBe(0);
  });

  it('skips blank lines', () => {
    const t = splitter();
    t.s.push(Buffer.from('\n  \nx\n'));
    expect(t.lines).toEqual(['x']);
  });

  it('reports an over-long line once, drops it up to its newline, and reads the next line', () => {
    const t = splitter(8);
    t.s.push(Buffer.from('0123456'));
    t.s.push(Buffer.from('789abcdef'));
    t.s.push(Buffer.from('more garbage'));
    expect(t.overflows).toBe(1);
    expect(t.s.pending).toBe(0); // nothing of the long line is kept
    t.s.push(Buffer.from('tail\nok\n'));
    expect(t.lines).toEqual(['ok']);
  });

  it('accepts a line of exactly the limit', () => {
    const t = splitter(4);
    t.s.push(Buffer.from('abcd\n'));
    expect(t.lines).toEqual(['abcd']);
    expect(t.overflows).toBe(0);
  });
});

describe('control protocol: requests', () => {
  it('reads id, method and params', () => {
    expect(parseRequest('{"id":7,"method":"status","params":{"a":1}}')).toEqual({ request: { id: 7, method: 'status', params: { a: 1 } } });
    expect(parseRequest('{"id":"x","method":"fault.list"}')).toEqual({ request: { id: 'x', method: 'fault.list', params: {} } });
  });

  it.each([
    ['not json', null, 'parse-error'],
    ['[1,2]', null, 'invalid-request'],
    ['"status"', null, 'invalid-request'],
    ['{"method":"status"}', null, 'invalid-request'],
    ['{"id":{},"method":"status"}', null, 'invalid-request'],
    ['{"id":3}', 3, 'invalid-request'],
    ['{"id":3,"method":""}', 3, 'invalid-request'],
    ['{"id":3,"method":"status","params":[1]}', 3, 'invalid-request'],
  ])('%s is refused as %s with a message', (line, id, code) => {
    const r = parseRequest(line);
    expect('error' in r).toBe(true);
    if (!('error' in r)) return;
    expect(r.id).toBe(id);
    expect(r.error.code).toBe(code);
    expect(r.error.message.length).toBeGreaterThan(5);
  });
});
