// A deliberately small logger: one line per event, "time LEVEL event key=value ...", filtered by
// level. The interface is what the rest of the CLI depends on, so the structured logger planned
// for the operator work can replace createLogger() without touching callers.

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

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
  /** Receives one complete line without the newline; default writes to stderr. */
  write?: (line: string) => void;
  now?: () => Date;
}

export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

export function createLogger(options: LoggerOptions): Logger {
  const threshold = LOG_LEVELS.indexOf(options.level);
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const now = options.now ?? (() => new Date());
  const enabled = (level: LogLevel) => LOG_LEVELS.indexOf(level) >= threshold;
  const emit = (level: LogLevel) => (event: string, fields?: LogFields) => {
    if (enabled(level)) write(formatLine(now(), level, event, fields));
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error'), enabled };
}

/** A logger that drops everything, for callers that make logging optional. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  enabled: () => false,
};

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
