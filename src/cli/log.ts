// Logging through pino: one JSON object per line by default (for log shippers), or with
// `--log-format pretty` one readable line "time LEVEL event key=value ...". The Logger interface
// is what the rest of the CLI depends on, so callers never see pino itself.

import { pino, stdTimeFunctions, type Logger as PinoLogger } from 'pino';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export type LogValue = string | number | boolean | null | undefined;
export type LogFields = Readonly<Record<string, LogValue>>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** False when lines of this level are dropped, so callers can skip building costly fields. */
  enabled(level: LogLevel): boolean;
}

export interface LoggerOptions {
  level: LogLevel;
  /** Default json. */
  format?: LogFormat;
  /** Receives one complete line without the newline; default writes to stderr. */
  write?: (line: string) => void;
  now?: () => Date;
}

export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

export function isLogFormat(s: string): s is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(s);
}

/** Keys pino writes itself: a field of the same name would be shadowed or shadow them. */
const RESERVED = new Set(['level', 'time', 'pid', 'event']);

export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => void process.stderr.write(line + '\n'));
  const format = options.format ?? 'json';
  const now = options.now;
  const emitLine = format === 'json' ? write : (json: string) => write(prettyLine(json));
  const p: PinoLogger = pino(
    {
      level: options.level,
      messageKey: 'event',
      base: { pid: process.pid },
      timestamp: now === undefined ? stdTimeFunctions.isoTime : () => `,"time":"${now().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    // A synchronous destination: lines are out before a crash fault's SIGKILL, and in order with
    // what the CLI prints itself.
    { write: (chunk: string) => emitLine(chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk) },
  );
  const emit = (level: LogLevel) => (event: string, fields?: LogFields) => {
    if (!p.isLevelEnabled(level)) return;
    p[level](fields === undefined ? {} : safeFields(fields), event);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error'), enabled: (l) => p.isLevelEnabled(l) };
}

function safeFields(fields: LogFields): Record<string, LogValue> {
  let out: Record<string, LogValue> | undefined;
  for (const key of Object.keys(fields)) {
    if (!RESERVED.has(key)) continue;
    out ??= { ...fields };
    delete out[key];
    out[`${key}_`] = fields[key];
  }
  return out ?? fields;
}

/** A logger that drops everything, for callers that make logging optional. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  enabled: () => false,
};

/** One pino JSON line as "time LEVEL event key=value ...". */
export function prettyLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { time, level, event, pid: _pid, ...fields } = record;
  const lvl = typeof level === 'string' && isLogLevel(level) ? level : 'info';
  const t = typeof time === 'string' ? new Date(time) : new Date();
  const flat: Record<string, LogValue> = {};
  for (const [k, v] of Object.entries(fields)) flat[k] = isLogValue(v) ? v : JSON.stringify(v);
  return formatLine(t, lvl, typeof event === 'string' ? event : '?', flat);
}

function isLogValue(v: unknown): v is LogValue {
  return v === null || v === undefined || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

export function formatLine(time: Date, level: LogLevel, event: string, fields?: LogFields): string {
  let line = `${time.toISOString()} ${level.toUpperCase().padEnd(5)} ${event}`;
  if (fields !== undefined) {
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      line += ` ${key}=${formatValue(value)}`;
    }
  }
  return line;
}

function formatValue(value: LogValue): string {
  const s = String(value);
  // Quote anything that would break "key=value" splitting or the one-line rule.
  return s === '' || /[\s"=\\]/.test(s) || /[^\x20-\x7e]/.test(s) ? JSON.stringify(s) : s;
}
