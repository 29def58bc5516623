import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseServiceSpec, readServiceSpec, ServiceSpecError } from '../../../src/services/spec.js';

describe('service specs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-spec-'));
  const file = join(dir, 'f.txt');
  writeFileSync(file, 'x');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the built-in services', () => {
    expect(readServiceSpec('echo')).toEqual({ kind: 'echo' });
    expect(readServiceSpec('discard')).toEqual({ kind: 'discard' });
    expect(readServiceSpec(`http-static:${dir}`)).toEqual({ kind: 'http-static', dir });
    expect(readServiceSpec('proxy:127.0.0.1:8080')).toEqual({ kind: 'proxy', host: '127.0.0.1', port: 8080 });
    expect(readServiceSpec(`module:${file}`)).toEqual({ kind: 'module', path: file });
  });

  it('builds services with their names', async () => {
    const echo = parseServiceSpec('echo');
    expect(echo.name).toBe('echo');
    const http = parseServiceSpec(`http-static:${dir}`);
    expect(http.name).toBe(`http-static:${dir}`);
    await Promise.all([echo.close(), http.close()]);
  });

  it.each([
    ['nope', /unknown service "nope" \(expected one of: echo, discard, http-static:<dir>, proxy:<host>:<port>, module:<path>\)/],
    ['', /unknown service ""/],
    ['echo:1', /takes no argument/],
    ['http-static', /needs a directory/],
    ['http-static:', /needs a directory/],
    ['http-static:/definitely/not/here', /does not exist/],
    [`http-static:${file}`, /is not a directory/],
    ['proxy:127.0.0.1', /is not <host>:<port>/],
    ['module:./definitely/not/here.mjs', /module: file ".*" does not exist/],
  ])('rejects %j', (spec, message) => {
    expect(() => readServiceSpec(spec)).toThrow(ServiceSpecError);
    expect(() => readServiceSpec(spec)).toThrow(message);
  });
});
