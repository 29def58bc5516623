import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyError, MAC_BYTES, MIN_KEY_BYTES, SESSION_TAG_BYTES, helloMac, loadKeyFile, parseKey, sessionMac } from '../../../src/replication/auth.js';

const dir = mkdtempSync(join(tmpdir(), 'understudy-key-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hex64 = 'ab'.repeat(32);

function file(name: string, content: string | Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

describe('key files', () => {
  it('read hex text, ignoring surrounding whitespace, as the decoded bytes', async () => {
    const fromHex = await loadKeyFile(file('hex', `  ${hex64}\n`));
    const fromRaw = parseKey(Buffer.from(hex64, 'hex'));
    expect(fromHex.hmac([Buffer.from('x')])).toEqual(fromRaw.hmac([Buffer.from('x')]));
  });

  it('read anything else as raw bytes', async () => {
    const raw = new Uint8Array(40).map((_, i) => i * 7);
    const k = await loadKeyFile(file('raw', raw));
    expect(k.hmac([Buffer.from('x')])).toEqual(parseKey(raw).hmac([Buffer.from('x')]));
  });

  it('refuse a key shorter than 32 bytes, saying how long it is and how to make one', async () => {
    await expect(loadKeyFile(file('short-hex', 'ab'.repeat(31)))).rejects.toThrow(/31 bytes \(read as hex: the file holds only hex digits\), at least 32.*openssl rand -hex 32/);
    await expect(loadKeyFile(file('short-raw', 'not a key'))).rejects.toThrow(KeyError);
    await expect(loadKeyFile(file('empty', ''))).rejects.toThrow(/0 raw bytes/);
    expect(MIN_KEY_BYTES).toBe(32);
  });

  it('name a missing file clearly', async () => {
    await expect(loadKeyFile(join(dir, 'nope'))).rejects.toThrow(/replication key file .*nope does not exist/);
  });

  it('name a path that cannot be read as a file, with the system error', async () => {
    await expect(loadKeyFile(dir)).rejects.toThrow(/replication key file .* cannot be read \(EISDIR\)/);
  });

  it('never show the key bytes when printed or serialised', () => {
    const k = parseKey(Buffer.from(hex64, 'hex'));
    expect(String(k)).toBe('[ReplicationKey]');
    expect(JSON.stringify({ k })).toBe('{"k":"[ReplicationKey]"}');
    expect(inspect(k)).not.toContain('171');
    expect(inspect(k)).toContain('ReplicationKey');
  });
});

describe('frame MACs', () => {
  const key = parseKey(Buffer.from(hex64, 'hex'));
  const other = parseKey(Buffer.from('cd'.repeat(32), 'hex'));
  const n1 = new Uint8Array(16).fill(1);
  const n2 = new Uint8Array(16).fill(2);
  const msg = [Buffer.from('frame')];

  it('differ by key and by direction', () => {
    const a = helloMac(key, 'dialer-to-listener').mac(msg, 0);
    expect(helloMac(key, 'dialer-to-listener').mac(msg, 0)).toEqual(a);
    expect(helloMac(key, 'listener-to-dialer').mac(msg, 0)).not.toEqual(a);
    expect(helloMac(other, 'dialer-to-listener').mac(msg, 0)).not.toEqual(a);
  });

  it('of a session depend on both nonces, so another session cannot replay them', () => {
    const a = sessionMac(key, 'dialer-to-listener', n1, n2).mac(msg, 0);
    expect(sessionMac(key, 'dialer-to-listener', n1, n2).mac(msg, 0)).toEqual(a);
    expect(sessionMac(key, 'dialer-to-listener', n2, n2).mac(msg, 0)).not.toEqual(a);
    expect(sessionMac(key, 'dialer-to-listener', n1, n1).mac(msg, 0)).not.toEqual(a);
    expect(sessionMac(key, 'listener-to-dialer', n1, n2).mac(msg, 0)).not.toEqual(a);
    expect(helloMac(key, 'dialer-to-listener').mac(msg, 0)).not.toEqual(a);
  });

  it('of a session are 16-byte GMAC tags that change with the frame counter (their nonce)', () => {
    const s = sessionMac(key, 'dialer-to-listener', n1, n2);
    const a = s.mac(msg, 7);
    expect(s.bytes).toBe(SESSION_TAG_BYTES);
    expect(a.length).toBe(SESSION_TAG_BYTES);
    expect(s.mac(msg, 7)).toEqual(a);
    expect(s.mac(msg, 8)).not.toEqual(a);
    expect(s.mac(msg, 7 + 2 ** 32)).not.toEqual(a);
    // The parts are MAC'd as one byte string, however they are cut.
    expect(s.mac([Buffer.from('fr'), Buffer.from('ame')], 7)).toEqual(a);
    expect(s.mac([Buffer.from('framf')], 7)).not.toEqual(a);
    expect(helloMac(key, 'dialer-to-listener').bytes).toBe(MAC_BYTES);
  });
});

describe('derived secrets', () => {
  const key = parseKey(Buffer.from(hex64, 'hex'));

  it('are the same on every node holding the key, and differ by label and by key', () => {
    const a = key.derive('syn cookie');
    expect(a).toHaveLength(16);
    expect(parseKey(Buffer.from(hex64, 'hex')).derive('syn cookie')).toEqual(a);
    expect(key.derive('isn')).not.toEqual(a);
    expect(parseKey(Buffer.from('cd'.repeat(32), 'hex')).derive('syn cookie')).not.toEqual(a);
    expect(key.derive('tsval offset', 4)).toHaveLength(4);
  });
});
