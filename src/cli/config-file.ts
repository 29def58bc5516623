// `--config <path>`: every option of `understudy node` from a YAML or JSON file, with the option's
// own name as the key (`log-level: debug`). The file is checked against a schema before anything
// starts, and a mistake is reported with the file and the key: `node.yaml: port: expected an
// integer 1..65535`. Values go through the same validators as the command line.

import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { describeIssues } from '../control/fault.js';
import type { ServiceSpec } from '../services/spec.js';
import type { LogFormat, LogLevel } from './log.js';
import { MAX_MTU, MIN_MTU, parseHostPort, parseInterfaceName, parseIpv4, parseLogFormat, parseLogLevel, parseService, parseTunName, type HostPort } from './options.js';

export class ConfigFileError extends Error {
  override readonly name = 'ConfigFileError';
}

/** What a config file may set; the keys are the command-line option names. */
export interface NodeFileConfig {
  vip?: string;
  port?: number;
  service?: ServiceSpec;
  tun?: string;
  lan?: string;
  mtu?: number;
  'log-level'?: LogLevel;
  'log-format'?: LogFormat;
  control?: string;
  metrics?: HostPort;
}

/** A string checked by one of the command-line validators, with its message lower-cased. */
function checked<T>(parse: (text: string) => T) {
  return z.string({ error: 'expected a string' }).transform((text, ctx): T => {
    try {
      return parse(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: tidy(err instanceof Error ? err.message : String(err)) });
      return z.NEVER;
    }
  });
}

function integerIn(min: number, max: number) {
  const error = `expected an integer ${min}..${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

const schema = z
  .object({
    vip: checked(parseIpv4),
    port: integerIn(1, 65535),
    service: checked(parseService),
    tun: checked(parseTunName),
    lan: checked(parseInterfaceName),
    mtu: integerIn(MIN_MTU, MAX_MTU),
    'log-level': checked(parseLogLevel),
    'log-format': checked(parseLogFormat),
    control: z.string({ error: 'expected a path' }).min(1, { error: 'expected a path' }),
    metrics: checked(parseHostPort),
  })
  .partial()
  .strict();

// Compile-time check that the schema yields exactly NodeFileConfig.
const _sameShape: (v: z.output<typeof schema>) => NodeFileConfig = (v) => v;
void _sameShape;

export const CONFIG_KEYS = Object.keys(schema.shape) as (keyof NodeFileConfig)[];

export function readConfigFile(path: string): NodeFileConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigFileError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseConfigText(text, path);
}

/** `where` names the file in messages. JSON is read by the YAML parser too: it is valid YAML. */
export function parseConfigText(text: string, where: string): NodeFileConfig {
  let value: unknown;
  try {
    value = where.endsWith('.json') ? JSON.parse(text) : parseYaml(text, { uniqueKeys: true });
  } catch (err) {
    const msg = err instanceof YAMLParseError ? err.message.split('\n')[0] : err instanceof Error ? err.message : String(err);
    throw new ConfigFileError(`${where}: not valid ${where.endsWith('.json') ? 'JSON' : 'YAML'}: ${msg}`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigFileError(`${where}: expected a mapping of option: value`);
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  if (issue?.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '?';
    throw new ConfigFileError(`${where}: ${key}: unknown option (known: ${CONFIG_KEYS.join(', ')})`);
  }
  throw new ConfigFileError(`${where}: ${describeIssues(r.error.issues)}`);
}

/** "Not an IPv4 address (expected a.b.c.d)." -> "not an IPv4 address (expected a.b.c.d)". */
function tidy(message: string): string {
  const m = message.replace(/\.$/, '');
  return m.charAt(0).toLowerCase() + m.slice(1);
}
