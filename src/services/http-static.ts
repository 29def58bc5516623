// http-static: GET and HEAD of the files under one directory, on Node's own HTTP/1.1 server fed
// with sockets from whatever accepted them. Files are streamed (read stream piped into the
// response) so memory stays flat for downloads of any size and the socket's backpressure holds.

import { statSync, realpathSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { parseRange } from './byte-range.js';
import { contentTypeFor } from './content-type.js';
import { httpServerService } from './http-server-service.js';
import type { Service, ServiceSocket } from './service.js';
import { resolveStaticPath } from './static-path.js';

// Per read of the file: the thread-pool round trip, the socket write and, on a replicated node,
// the output record (a digest), its frame, the backup's acknowledgement and the wake-ups of both
// nodes are paid per chunk, so larger chunks cost less CPU per MiB on the primary, the backup and
// an unreplicated node alike (bench/RESULTS.md, session 4: 512 KiB against 256 KiB). The send
// buffer (tcp/config.ts) takes one whole.
const READ_CHUNK = 512 * 1024;

export interface HttpStaticOptions {
  /** Idle time before a keep-alive connection is closed; Node's default is 5 s. */
  keepAliveTimeoutMs?: number;
}

/** Throws when `dir` is not an existing directory, so a bad spec fails at startup. */
export function createHttpStaticService(dir: string, options: HttpStaticOptions = {}): Service {
  const root = realpathSync(dir);
  if (!statSync(root).isDirectory()) throw new Error(`http-static: ${dir} is not a directory`);

  const server = createServer((req, res) => {
    markBoundaryWhenDone(req, res);
    serve(root, req, res).catch((err: unknown) => failed(res, err));
  });
  if (options.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = options.keepAliveTimeoutMs;
  return { ...httpServerService(`http-static:${root}`, server), deterministic: true };
}

/** Requests of a connection whose responses are not finished yet (HTTP/1.1 pipelining may queue several). */
const unanswered = new WeakMap<object, number>();

/**
 * A keep-alive connection between requests holds no state of ours (5.5): once a response is fully
 * written, its request was read to the end and no other request is waiting, the client's next
 * bytes start a new request. Bytes of a next request the parser already took but has not yet
 * turned into a request are not seen here; clients do not pipeline without waiting in practice,
 * and the first request's (0,0) start boundary covers a one-request download anyway.
 */
function markBoundaryWhenDone(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket as ServiceSocket;
  unanswered.set(socket, (unanswered.get(socket) ?? 0) + 1);
  res.once('finish', () => {
    const left = (unanswered.get(socket) ?? 1) - 1;
    unanswered.set(socket, left);
    if (left === 0 && req.complete && socket.readableLength === 0) socket.markBoundary?.();
  });
}

async function serve(root: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return plain(res, 405, 'method not allowed', { Allow: 'GET, HEAD' });
  }
  const target = await resolveStaticPath(root, req.url ?? '');
  switch (target.kind) {
    case 'bad-request':
      return plain(res, 400, 'bad request');
    case 'forbidden':
      return plain(res, 403, 'forbidden');
    case 'not-found':
      return plain(res, 404, 'not found');
    case 'file':
      break;
  }

  const file = await open(target.path, 'r');
  let streaming = false;
  try {
    const st = await file.stat();
    const size = st.size;
    const lastModified = new Date(Math.floor(st.mtimeMs / 1000) * 1000);
    const etag = `"${size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    const headers: Record<string, string | number> = {
      'Content-Type': contentTypeFor(target.path),
      'Last-Modified': lastModified.toUTCString(),
      ETag: etag,
      'Accept-Ranges': 'bytes',
    };

    if (notModified(req, etag, lastModified)) {
      res.writeHead(304, headers);
      res.end();
      return;
    }

    const range = rangeApplies(req, etag, lastModified) ? parseRange(req.headers.range, size) : { kind: 'none' as const };
    let start = 0;
    let end = size - 1;
    let status = 200;
    if (range.kind === 'unsatisfiable') {
      return plain(res, 416, 'range not satisfiable', { 'Content-Range': `bytes */${size}` });
    }
    if (range.kind === 'range') {
      ({ start, end } = range);
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    }
    headers['Content-Length'] = end - start + 1;
    res.writeHead(status, headers);

    if (req.method === 'HEAD' || size === 0) {
      res.end();
      return;
    }
    streaming = true;
    // The read stream owns the handle from here and closes it when done or destroyed.
    // 256 KiB reads instead of the stream's 64 KiB: each read is a thread-pool round trip (two
    // wake-ups) and a write into the socket; a download is a few hundred of them per second.
    const body = file.createReadStream({ start, end, highWaterMark: READ_CHUNK });
    await pipeline(body, res).catch(() => {
      // The client went away mid-body; pipeline has already destroyed both ends.
    });
  } finally {
    if (!streaming) await file.close();
  }
}

/** RFC 9110 13.1.3 / 13.1.2: If-None-Match wins over If-Modified-Since. */
function notModified(req: IncomingMessage, etag: string, lastModified: Date): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) {
    return inm.split(',').some((t) => {
      const tag = t.trim();
      return tag === '*' || tag === etag || tag === `W/${etag}`;
    });
  }
  const ims = req.headers['if-modified-since'];
  if (ims === undefined) return false;
  const since = Date.parse(ims);
  return !Number.isNaN(since) && lastModified.getTime() <= since;
}

/** If-Range (RFC 9110 13.1.5): a stale validator means "send the whole file". */
function rangeApplies(req: IncomingMessage, etag: string, lastModified: Date): boolean {
  const ifRange = req.headers['if-range'];
  if (ifRange === undefined) return true;
  const v = (Array.isArray(ifRange) ? ifRange.join(',') : ifRange).trim();
  if (v.startsWith('"') || v.startsWith('W/')) return v === etag;
  return Date.parse(v) === lastModified.getTime();
}

function plain(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  const body = `${text}\n`;
  res.writeHead(status, {
    ...extra,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function failed(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy(err instanceof Error ? err : undefined);
    return;
  }
  plain(res, 500, 'internal error');
}

