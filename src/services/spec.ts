// Service specs as written on the command line: "echo", "discard", "http-static:<dir>". The spec
// is checked (including that the directory exists) before the node touches the network, so a
// typo fails at startup with one line instead of at the first connection.

import { statSync } from 'node:fs';
import { createDiscardService } from './discard.js';
import { createEchoService } from './echo.js';
import { createHttpStaticService } from './http-static.js';
import type { Service } from './service.js';

export type ServiceSpec = { kind: 'echo' } | { kind: 'discard' } | { kind: 'http-static'; dir: string };

export class ServiceSpecError extends Error {
  override readonly name = 'ServiceSpecError';
}

const KNOWN = 'echo, discard, http-static:<dir>';
/** Kinds that another issue will bring; named here so the error says "later", not "unknown". */
const PLANNED = ['proxy', 'module'];

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
    default:
      if (PLANNED.includes(kind)) throw new ServiceSpecError(`service "${kind}:" is not yet supported`);
      throw new ServiceSpecError(`unknown service "${text}" (expected one of: ${KNOWN})`);
  }
}

export function createService(spec: ServiceSpec): Service {
  switch (spec.kind) {
    case 'echo':
      return createEchoService();
    case 'discard':
      return createDiscardService();
    case 'http-static':
      return createHttpStaticService(spec.dir);
  }
}

export function parseServiceSpec(text: string): Service {
  return createService(readServiceSpec(text));
}
