import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ControlClientError } from '../../../src/control/client.js';
import { defaultControlPath, resolveControlPath } from '../../../src/cli/control-path.js';
import { UsageError } from '../../../src/cli/usage-error.js';

describe('finding a node\'s control socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-ctlpath-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('defaults to /run/understudy/<tun>.sock', () => {
    expect(defaultControlPath('understudy0')).toBe('/run/understudy/understudy0.sock');
  });

  it('--control wins, then --tun', () => {
    expect(resolveControlPath({ control: '/x.sock', tun: 'a0' }, dir)).toBe('/x.sock');
    expect(resolveControlPath({ tun: 'a0' }, dir)).toBe(join(dir, 'a0.sock'));
  });

  it('without either: no socket is "no node", one is used, several is a usage error naming them', () => {
    expect(() => resolveControlPath({}, dir)).toThrow(ControlClientError);
    expect(() => resolveControlPath({}, join(dir, 'missing'))).toThrow(/no node running here/);
    writeFileSync(join(dir, 'a0.sock'), '');
    writeFileSync(join(dir, 'notes.txt'), '');
    expect(resolveControlPath({}, dir)).toBe(join(dir, 'a0.sock'));
    writeFileSync(join(dir, 'b0.sock'), '');
    expect(() => resolveControlPath({}, dir)).toThrow(UsageError);
    expect(() => resolveControlPath({}, dir)).toThrow(/several nodes run here \(a0\.sock, b0\.sock/);
  });
});
