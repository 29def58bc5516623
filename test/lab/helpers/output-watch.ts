// A lab child's output (stdout and stderr) as lines, for failure messages and for waiting on a log
// line such as node.ready.

import type { ChildProcess } from 'node:child_process';

/** Collects a child's output lines and waits for one that matches. */
export class OutputWatch {
  readonly lines: string[] = [];
  private partial = '';
  private waiters: { re: RegExp; resolve: (line: string) => void }[] = [];

  constructor(child: ChildProcess) {
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => this.push(chunk));
    }
  }

  private push(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      this.lines.push(line);
      this.waiters = this.waiters.filter((w) => {
        if (!w.re.test(line)) return true;
        w.resolve(line);
        return false;
      });
    }
  }

  waitFor(re: RegExp, timeoutMs: number, exited: Promise<unknown>): Promise<string> {
    const seen = this.lines.find((l) => re.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; output:\n${this.text()}`)), timeoutMs);
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`the node exited before printing ${re}; output:\n${this.text()}`));
      });
      this.waiters.push({
        re,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  }

  text(): string {
    return [...this.lines, this.partial].join('\n');
  }
}
