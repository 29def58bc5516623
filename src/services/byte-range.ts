// The Range header (RFC 9110 14.2), reduced to what http-static serves: one byte range. Several
// ranges would need multipart/byteranges; serving the whole file with 200 is allowed (a server may
// ignore Range) and every client copes with it.

export type RangeRequest =
  /** No usable Range header: serve the whole representation with 200. */
  | { kind: 'none' }
  /** Serve bytes start..end inclusive with 206. */
  | { kind: 'range'; start: number; end: number }
  /** A well-formed range that misses the file: 416. */
  | { kind: 'unsatisfiable' }
  /** More than one range: served as the whole file with 200, see the file comment. */
  | { kind: 'multiple' };

const SPEC = /^(\d*)-(\d*)$/;

export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'none' };
  const eq = header.indexOf('=');
  if (eq < 0 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') return { kind: 'none' };
  const specs = header
    .slice(eq + 1)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (specs.length === 0) return { kind: 'none' };
  // A malformed set is ignored as a whole (RFC 9110: a recipient may ignore an invalid Range).
  const parsed = specs.map((s) => SPEC.exec(s));
  if (parsed.some((m) => m === null || (m[1] === '' && m[2] === ''))) return { kind: 'none' };
  if (specs.length > 1) return { kind: 'multiple' };

  const [, first = '', last = ''] = parsed[0] as RegExpExecArray;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return { kind: 'none' };
  if (start >= size) return { kind: 'unsatisfiable' };
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  return { kind: 'range', start, end };
}
