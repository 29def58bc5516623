// File and process helpers shared by the demo and the failover benchmark, which run the same kind
// of lab round: write a random file to serve, hash what the client received, wait for a tool to
// say it is ready.

import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, openSync, writeSync } from 'node:fs';

const MIB = 1024 * 1024;

/** Writes `size` random bytes in 1 MiB pieces and returns their SHA-256. */
export function writeRandomFile(file: string, size: number): string {
  const hash = createHash('sha256');
  const fd = openSync(file, 'w');
  try {
    for (let left = size; left > 0; ) {
      const chunk = randomBytes(Math.min(MIB, left));
      hash.update(chunk);
      writeSync(fd, chunk);
      left -= chunk.length;
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** SHA-256 and length of a file, streamed (downloads are hundreds of MiB). */
export async function sha256File(file: string): Promise<{ hex: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * MIB })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { hex: hash.digest('hex'), bytes };
}

/** Resolves when the child prints a line matching `re`; rejects on timeout or exit, with its output. */
export function waitForOutput(child: ChildProcess, re: RegExp, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs / 1000} s: ${text.trim()}`)), timeoutMs);
    const onData = (d: Buffer): void => {
      text += d.toString('utf8');
      if (re.test(text)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}): ${text.trim()}`));
    });
  });
}
