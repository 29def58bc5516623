// Validators for command-line values. Each returns the parsed value or throws
// InvalidArgumentError, which commander turns into a one-line "option ... is invalid" error.

import { InvalidArgumentError } from 'commander';
import { ipv4FromString } from '../stack/wire/types.js';
import { readServiceSpec, ServiceSpecError, type ServiceSpec } from '../services/spec.js';
import { isLogFormat, isLogLevel, LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './log.js';

export const MIN_MTU = 576;
export const MAX_MTU = 65535;

export function parseIpv4(text: string): string {
  const addr = ipv4FromString(text);
  if (addr === undefined) throw new InvalidArgumentError('Not an IPv4 address (expected a.b.c.d).');
  if (addr === 0 || addr === 0xffffffff || addr >>> 24 === 127 || addr >>> 28 >= 0xe) {
    throw new InvalidArgumentError('Not a unicast address a node can serve.');
  }
  // Normalised so that "010.1.1.1" and "10.1.1.1" are the same VIP in logs and routes.
  return text
    .split('.')
    .map((p) => String(Number(p)))
    .join('.');
}

function parseIntegerIn(text: string, min: number, max: number, what: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError(`Expected an integer in ${min}..${max} (${what}).`);
  const n = Number(text);
  if (n < min || n > max) throw new InvalidArgumentError(`The ${what} must be in ${min}..${max}.`);
  return n;
}

export function parsePort(text: string): number {
  return parseIntegerIn(text, 1, 65535, 'port');
}

export function parseMtu(text: string): number {
  return parseIntegerIn(text, MIN_MTU, MAX_MTU, 'MTU');
}

/** Half-open connections per listener before SYN cookies (Linux: net.ipv4.tcp_max_syn_backlog). */
export function parseSynBacklog(text: string): number {
  return parseIntegerIn(text, 1, 65535, 'half-open connections');
}

export function parseLogLevel(text: string): LogLevel {
  if (!isLogLevel(text)) throw new InvalidArgumentError(`Expected one of ${LOG_LEVELS.join(', ')}.`);
  return text;
}

export function parseLogFormat(text: string): LogFormat {
  if (!isLogFormat(text)) throw new InvalidArgumentError(`Expected one of ${LOG_FORMATS.join(', ')}.`);
  return text;
}

export interface HostPort {
  host: string;
  port: number;
}

/** "host:port" for a TCP listener; the host is an IPv4 address or "localhost". */
export function parseHostPort(text: string): HostPort {
  const colon = text.lastIndexOf(':');
  if (colon <= 0) throw new InvalidArgumentError('Expected host:port, e.g. 127.0.0.1:9464.');
  const host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) throw new InvalidArgumentError('Expected host:port with a port in 0..65535.');
  if (host !== 'localhost' && ipv4FromString(host) === undefined) throw new InvalidArgumentError('Expected host:port with an IPv4 host (or localhost).');
  return { host, port: Number(portText) };
}

/** A percentage, fractions allowed (0.5 is one packet in two hundred). */
export function parsePercent(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) throw new InvalidArgumentError('Expected a percentage in 0..100.');
  return n;
}

/** Milliseconds, a whole number in min..max. */
export function parseMillis(min: number, max: number): (text: string) => number {
  return (text) => parseIntegerIn(text, min, max, 'milliseconds');
}

/** Linux interface names: 1..15 bytes, no slash, no whitespace, not "." or "..". */
export function parseInterfaceName(text: string): string {
  if (text.length === 0 || Buffer.byteLength(text) > 15 || /[\s/:]/.test(text) || text === '.' || text === '..') {
    throw new InvalidArgumentError('Not a valid interface name (1-15 characters, no "/", ":" or spaces).');
  }
  return text;
}

/** Like parseInterfaceName, but allows one "%d" for the kernel to fill in. */
export function parseTunName(text: string): string {
  const name = parseInterfaceName(text);
  if ((name.match(/%/g) ?? []).length > (name.includes('%d') ? 1 : 0)) {
    throw new InvalidArgumentError('Only one "%d" may appear in a tun name.');
  }
  return name;
}

export function parseService(text: string): ServiceSpec {
  try {
    return readServiceSpec(text);
  } catch (err) {
    if (err instanceof ServiceSpecError) throw new InvalidArgumentError(capitalize(err.message));
    throw err;
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
