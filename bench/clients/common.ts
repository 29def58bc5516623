// Helpers shared by the bench clients: flag parsing, connecting, and the JSON result line that the
// orchestrator reads from stdout.

import net from 'node:net';

export function flags(argv: string[] = process.argv.slice(2)): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) continue;
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) m.set(a.slice(2), 'true');
    else {
      m.set(a.slice(2), next);
      i++;
    }
  }
  return m;
}

export function numFlag(f: Map<string, string>, name: string, dflt: number): number {
  const v = f.get(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${v}`);
  return n;
}

export function strFlag(f: Map<string, string>, name: string, dflt?: string): string {
  const v = f.get(name) ?? dflt;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

export function connect(host: string, port: number, timeoutMs = 10_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`connect ${host}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

export function nowUs(): number {
  return Number(process.hrtime.bigint()) / 1000;
}

/** Prints the one result line and exits non-zero when the run failed. */
export function finish(result: Record<string, unknown>, ok = true): never {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(ok ? 0 : 1);
}

export function fail(test: string, err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  return finish({ test, error: message }, false);
}

/**
 * Runs main and turns any rejection or hang into a JSON error line; `partial` adds what the client
 * knows at the moment of a timeout (e.g. which connections are stuck where).
 */
export function runClient(
  test: string,
  main: () => Promise<Record<string, unknown>>,
  timeoutMs: number,
  partial?: () => Record<string, unknown>,
): void {
  const t = setTimeout(
    () => finish({ test, error: `timed out after ${timeoutMs} ms`, ...(partial?.() ?? {}) }, false),
    timeoutMs,
  );
  main().then(
    (r) => {
      clearTimeout(t);
      finish({ test, ...r });
    },
    (e: unknown) => fail(test, e),
  );
}
