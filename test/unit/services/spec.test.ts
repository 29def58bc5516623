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
  });

  it('builds services with their names', async () => {
    const echo = parseServiceSpec('echo');
    expect(echo.name).toBe('echo');
    const http = parseServiceSpec(`http-static:${dir}`);
    expect(http.name).toBe(`http-static:${dir}`);
    await Promise.all([echo.close(), http.close()]);
  });

  it.each([
    ['nope', /unknown service "nope"/],
    ['', /unknown service ""/],
    ['echo:1', /takes no argument/],
    ['http-static', /needs a directory/],
    ['http-static:', /needs a directory/],
    ['http-static:/definitely/not/here', /does not exist/],
    [`http-static:${file}`, /is not a directory/],
    ['proxy:127.0.0.1:80', /"proxy:" is not yet supported/],
    ['module:./x.js', /"module:" is not yet supported/],
  ])('rejects %j', (spec, message) => {
    expect(() => readServiceSpec(spec)).toThrow(ServiceSpecError);
    expect(() => readServiceSpec(spec)).toThrow(message);
  });
});
