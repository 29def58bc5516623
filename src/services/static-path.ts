// Maps a request target to a regular file under the served root, refusing anything that leaves
// it: ".." after percent-decoding, and symlinks (followed with realpath) that point outside.

import { realpath, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';

export type StaticPath =
  | { kind: 'file'; path: string }
  | { kind: 'not-found' }
  | { kind: 'forbidden' }
  | { kind: 'bad-request' };

export function isWithin(root: string, path: string): boolean {
  if (path === root) return true;
  return path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** The decoded path part of a request target, or undefined when it is not one we accept. */
export function requestPathname(target: string): string | undefined {
  let path = target;
  // Absolute-form ("GET http://host/x") is legal HTTP/1.1; only its path matters here.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
    try {
      path = new URL(path).pathname;
    } catch {
      return undefined;
    }
  }
  const cut = path.search(/[?#]/);
  if (cut >= 0) path = path.slice(0, cut);
  if (!path.startsWith('/')) return undefined;
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return undefined;
  }
  return decoded.includes('\0') ? undefined : decoded;
}

/** `realRoot` must already be a realpath, so that prefix checks compare like with like. */
export async function resolveStaticPath(realRoot: string, target: string): Promise<StaticPath> {
  const pathname = requestPathname(target);
  if (pathname === undefined) return { kind: 'bad-request' };
  const candidate = resolve(realRoot, '.' + pathname);
  if (!isWithin(realRoot, candidate)) return { kind: 'forbidden' };

  const real = await realpathOrUndefined(candidate);
  if (real === undefined) return { kind: 'not-found' };
  if (!isWithin(realRoot, real)) return { kind: 'forbidden' };

  const st = await stat(real);
  if (st.isDirectory()) {
    const index = await realpathOrUndefined(join(real, 'index.html'));
    if (index === undefined) return { kind: 'not-found' };
    if (!isWithin(realRoot, index)) return { kind: 'forbidden' };
    return (await stat(index)).isFile() ? { kind: 'file', path: index } : { kind: 'not-found' };
  }
  return st.isFile() ? { kind: 'file', path: real } : { kind: 'not-found' };
}

async function realpathOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await realpath(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG') return undefined;
    throw err;
  }
}
