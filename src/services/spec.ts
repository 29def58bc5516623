// Service specs as written on the command line: "echo", "discard", "http-static:<dir>",
// "proxy:<host>:<port>", "module:<path>". The spec is checked (the directory or file exists, the
// backend address is well-formed) before the node touches the network, so a typo fails at
// startup with one line instead of at the first connection. A module is loaded by
// createService(), not here: parsing arguments should not run the user's code.

import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ipv4FromString } from '../stack/wire/types.js';
import { createDiscardService } from './discard.js';
import { createEchoService } from './echo.js';
import { createHttpStaticService } from './http-static.js';
import { createModuleService } from './module-service.js';
import { createProxyService } from './proxy.js';
import type { Service } from './service.js';

export type ServiceSpec =
  | { kind: 'echo' }
  | { kind: 'discard' }
  | { kind: 'http-static'; dir: string }
  /** host is dotted-quad IPv4: "localhost" is stored as 127.0.0.1. */
  | { kind: 'proxy'; host: string; port: number }
  /** path is absolute (resolved against the working directory when the spec was read). */
  | { kind: 'module'; path: string };

export class ServiceSpecError extends Error {
  override readonly name = 'ServiceSpecError';
}

const KNOWN = 'echo, discard, http-static:<dir>, proxy:<host>:<port>, module:<path>';

export function readServiceSpec(text: string): ServiceSpec {
  const colon = text.indexOf(':');
  const kind = colon < 0 ? text : text.slice(0, colon);
  const arg = colon < 0 ? undefined : text.slice(colon + 1);

  switch (kind) {
    case 'echo':
    case 'discard':
      if (arg !== undefined) throw new ServiceSpecError(`service "${kind}" takes no argument (got "${text}")`);
      return { kind };
    case 'http-static': {
      if (arg === undefined || arg === '') throw new ServiceSpecError('service "http-static" needs a directory: http-static:<dir>');
      let isDir: boolean;
      try {
        isDir = statSync(arg).isDirectory();
      } catch {
        throw new ServiceSpecError(`http-static: directory "${arg}" does not exist`);
      }
      if (!isDir) throw new ServiceSpecError(`http-static: "${arg}" is not a directory`);
      return { kind, dir: arg };
    }
    case 'proxy':
      return readProxyTarget(arg);
    case 'module': {
      if (arg === undefined || arg === '') throw new ServiceSpecError('service "module" needs a file: module:<path>');
      const path = resolve(arg);
      let isFile: boolean;
      try {
        isFile = statSync(path).isFile();
      } catch {
        throw new ServiceSpecError(`module: file "${arg}" does not exist`);
      }
      if (!isFile) throw new ServiceSpecError(`module: "${arg}" is not a file`);
      return { kind, path };
    }
    default:
      throw new ServiceSpecError(`unknown service "${text}" (expected one of: ${KNOWN})`);
  }
}

function readProxyTarget(arg: string | undefined): ServiceSpec {
  if (arg === undefined || arg === '') throw new ServiceSpecError('service "proxy" needs a backend: proxy:<host>:<port>, e.g. proxy:127.0.0.1:8080');
  const colon = arg.lastIndexOf(':');
  if (colon < 0) throw new ServiceSpecError(`proxy: "${arg}" is not <host>:<port> (e.g. proxy:127.0.0.1:8080)`);
  const hostText = arg.slice(0, colon);
  const portText = arg.slice(colon + 1);
  // understudy speaks IPv4 only, and a name other than localhost would make the backend depend
  // on DNS at every connection; "localhost" is pinned to 127.0.0.1 rather than resolved, since
  // it may resolve to ::1 first and miss a backend bound to 127.0.0.1.
  let host: string;
  if (hostText === 'localhost') host = '127.0.0.1';
  else {
    const addr = ipv4FromString(hostText);
    if (addr === undefined) throw new ServiceSpecError(`proxy: host "${hostText}" must be an IPv4 address (a.b.c.d) or localhost`);
    if (addr === 0 || addr >>> 28 >= 0xe) throw new ServiceSpecError(`proxy: host "${hostText}" is not a unicast address`);
    host = hostText
      .split('.')
      .map((p) => String(Number(p)))
      .join('.');
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    throw new ServiceSpecError(`proxy: port "${portText}" must be a number from 1 to 65535`);
  }
  return { kind: 'proxy', host, port: Number(portText) };
}

/** The spec as an operator would write it, for logs and status. */
export function describeServiceSpec(spec: ServiceSpec): string {
  switch (spec.kind) {
    case 'echo':
    case 'discard':
      return spec.kind;
    case 'http-static':
      return `http-static:${spec.dir}`;
    case 'proxy':
      return `proxy:${spec.host}:${spec.port}`;
    case 'module':
      return `module:${spec.path}`;
  }
}

/**
 * Builds the service. Throws when it cannot serve: for module:, a module that fails to load or
 * exports no usable handler (one line, naming the file).
 */
export function createService(spec: ServiceSpec): Service {
  switch (spec.kind) {
    case 'echo':
      return createEchoService();
    case 'discard':
      return createDiscardService();
    case 'http-static':
      return createHttpStaticService(spec.dir);
    case 'proxy':
      return createProxyService({ host: spec.host, port: spec.port });
    case 'module':
      return createModuleService(spec.path);
  }
}

export function parseServiceSpec(text: string): Service {
  return createService(readServiceSpec(text));
}
