// `understudy demo`: a failover, shown end to end with nothing prepared. It builds a namespace lab
// (client, primary, backup, a replication link), starts a backup and a primary serving a random
// file over http-static on the VIP, downloads it with a real curl from the client over a link paced
// so that the transfer lasts about ten seconds, SIGKILLs the primary part-way, and reports what the
// client saw: bytes, SHA-256, RSTs on its interface, the stall, and the backup's takeover steps —
// with the capture and a timeline picture written to the output directory.

import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../scripts/lab.js';
import { controlRequest } from '../control/client.js';
import { analyzeCapture, parseNodeLog, takeoverMoment, takeoverSteps, type LogEvent } from './analysis.js';
import { flagString, readPcapFile } from './pcap.js';
import { demoExitCode, formatReport, type DemoOutcome } from './report.js';
import { renderTimelineSvg } from './timeline.js';
import { sha256File, waitForOutput, writeRandomFile } from './io.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(REPO_ROOT, 'bin', 'understudy.js');

export const DEFAULT_SIZE_MIB = 256;
const MIB = 1024 * 1024;
const PORT = 80;
const REPL_PORT = 7070;
const TUN = 'usdemo0';
const FILE_NAME = 'demo.bin';
/** After the kill, this long without a new byte at the client means the failover failed. */
const NO_PROGRESS_GIVE_UP_MS = 20_000;

export interface DemoOptions {
  sizeMiB: number;
  keep: boolean;
  /** Default ./understudy-demo-<UTC timestamp>. */
  outDir?: string | undefined;
  /** Where in the download to kill the primary (default 0.4). */
  killAt?: number;
  /** How long the download should take, which sets the pace of the client's link (default 10 s). */
  transferSeconds?: number;
}

export interface DemoIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Options of `understudy node` the demo relies on (the replication CLI). */
export const REPLICATION_OPTIONS = ['--role', '--replication', '--peer', '--key-file'] as const;

export const NO_REPLICATION_MESSAGE = 'demo needs replication (`understudy node --role`), which this build does not have yet';

/** Which of the replication options `understudy node --help` does not list. */
export function missingReplicationOptions(nodeHelp: string): string[] {
  return REPLICATION_OPTIONS.filter((o) => !new RegExp(`(^|\\s)${o}\\b`, 'm').test(nodeHelp));
}

export function defaultOutDir(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return path.resolve(`understudy-demo-${stamp}`);
}

/** A failure that ends the demo with one line (the teardown still runs). */
class DemoError extends Error {}

export async function runDemo(opts: DemoOptions, io: DemoIo): Promise<number> {
  const started = Date.now();
  // Set by Ctrl-C: the demo's flow still runs for the moment it takes to exit (curl's death wakes
  // it), but has nothing more to say.
  let interrupted = false;
  const progress = (msg: string): void => void (interrupted || io.stdout(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${msg}\n`));

  // This build's node must speak replication; the demo is meaningless without it.
  const help = spawnSync(process.execPath, [BIN, 'node', '--help'], { encoding: 'utf8', timeout: 30_000 });
  if (missingReplicationOptions(`${help.stdout ?? ''}${help.stderr ?? ''}`).length > 0) {
    io.stderr(`understudy: ${NO_REPLICATION_MESSAGE}\n`);
    return 1;
  }
  for (const tool of ['tcpdump', 'curl']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      io.stderr(`understudy: demo needs \`${tool}\` (apt-get install -y ${tool})\n`);
      return 1;
    }
  }

  const sizeBytes = opts.sizeMiB * MIB;
  const outDir = path.resolve(opts.outDir ?? defaultOutDir());
  const transferSeconds = opts.transferSeconds ?? 10;
  const killAt = opts.killAt ?? 0.4;
  mkdirSync(outDir, { recursive: true });
  // The served file and the download live outside the output directory: they are big and the
  // operator wants the evidence, not two copies of random bytes.
  const work = mkdtempSync(path.join(tmpdir(), 'understudy-demo-'));
  const removeWork = (): void => rmSync(work, { recursive: true, force: true });
  // Everything started in the lab, to be stopped and waited for before the lab goes (below).
  const children: ChildProcess[] = [];
  // Ctrl-C must not leave 2 x --size MiB in /tmp: remove the work directory and exit. The lab
  // removes itself on 'exit' (scripts/lab/lab.ts), which process.exit still runs; its own signal
  // handler, which runs right after this one, SIGKILLs the lab's processes. Waiting (briefly) for
  // them to be gone before exiting leaves no zombie for init to reap and says what happened.
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) process.exit(sig === 'SIGINT' ? 130 : 143); // a second Ctrl-C: now
    interrupted = true;
    io.stderr(`understudy: demo interrupted (${sig}), tearing down the lab\n`);
    removeWork();
    const exit = (): never => process.exit(sig === 'SIGINT' ? 130 : 143);
    setTimeout(exit, 3000).unref();
    void Promise.all(children.map((c) => stopProcess(c, 'SIGKILL', 1000))).then(exit, exit);
  };
  if (!opts.keep) {
    process.once('exit', removeWork);
    // `on`, not `once`: the lab's handler re-raises the signal (killing the process at once,
    // before the wait above) when it is the only listener left.
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }

  let lab: Lab | undefined;
  try {
    // Loaded here so that `demo --help` and the checks above never load the FFI layer.
    const { createLab } = await import('../../scripts/lab.js');
    const { paceToNode } = await import('../../scripts/lab/pace.js');
    progress(`building the lab (client, primary, backup, replication link)${opts.keep ? ', kept afterwards' : ''}`);
    lab = await createLab({ replicationLink: true, persistent: opts.keep });
    const l = lab;

    const www = path.join(work, 'www');
    mkdirSync(www);
    const keyFile = path.join(work, 'replication.key');
    writeFileSync(keyFile, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    progress(`writing a ${opts.sizeMiB} MiB file of random bytes`);
    const sha256Expected = writeRandomFile(path.join(www, FILE_NAME), sizeBytes);

    const logs = { primary: path.join(outDir, 'primary.log'), backup: path.join(outDir, 'backup.log') };
    const control = { primary: path.join(work, 'primary.sock'), backup: path.join(work, 'backup.sock') };
    const nodeArgs = (role: 'primary' | 'backup'): string[] => [
      BIN, 'node',
      '--role', role,
      '--replication', `${role === 'primary' ? l.addr.replPrimary : l.addr.replBackup}:${REPL_PORT}`,
      '--peer', `${role === 'primary' ? l.addr.replBackup : l.addr.replPrimary}:${REPL_PORT}`,
      '--key-file', keyFile,
      '--vip', l.addr.vip, '--port', String(PORT),
      '--service', `http-static:${www}`,
      '--lan', l.lanIface, '--tun', TUN,
      '--log-format', 'json',
      '--control', control[role],
    ];
    const startNode = (role: 'primary' | 'backup'): ChildProcess => {
      // The log goes straight to a file: it must survive the SIGKILL and the demo's own crash.
      const fd = openSync(logs[role], 'w');
      try {
        const child = l.spawn(role, process.execPath, nodeArgs(role), { stdio: ['ignore', fd, fd] });
        children.push(child);
        return child;
      } finally {
        closeSync(fd);
      }
    };

    progress('starting the backup');
    const backup = startNode('backup');
    // A backup holds no route and may log no `node.ready`: its control socket answering will do.
    await waitForStatus(control.backup, backup, logs.backup, 'backup', () => true, 30_000);
    progress('starting the primary');
    const primary = startNode('primary');
    await waitForStatus(control.primary, primary, logs.primary, 'primary', (s) => s['protected'] === true, 45_000);
    progress('the primary is protected by the backup');

    const pcapFile = path.join(outDir, 'client.pcap');
    // The snap length keeps headers only: the analysis needs no payload, and a 256 MiB download
    // would otherwise make a capture as big as the file.
    const tcpdump = l.spawn('client', 'tcpdump', ['-i', l.lanIface, '-n', '-s', '128', '--immediate-mode', '-U', '-Z', 'root', '-w', pcapFile, `tcp port ${PORT} or arp`]);
    children.push(tcpdump);
    await waitForOutput(tcpdump, /listening on/, 15_000, 'tcpdump');

    const download = path.join(work, 'download.bin');
    const rate = Math.max(64 * 1024, Math.ceil(sizeBytes / transferSeconds));
    const maxSeconds = Math.ceil(transferSeconds * 3 + 30);
    const url = `http://${l.addr.vip}/${FILE_NAME}`;
    // The wire is paced, not curl's reads (scripts/lab/pace.ts): with --limit-rate the server
    // fills the client's receive buffer ahead of curl, and a kill "at 68%" found the whole file
    // already in the client's kernel (nothing left to fail over).
    const paced = await paceToNode(l, 'client', rate);
    progress(`curl ${url} from the client, over a link paced at ${(rate / MIB).toFixed(1)} MiB/s (about ${transferSeconds} s)`);
    const curl = l.spawn('client', 'curl', ['-sS', '--max-time', String(maxSeconds), '-o', download, url]);
    children.push(curl);
    let curlErr = '';
    curl.stderr?.setEncoding('utf8').on('data', (d: string) => (curlErr += d));
    const curlDone = new Promise<number | null>((resolve) => curl.once('exit', (code) => resolve(code)));
    let curlExit: number | null | undefined;
    void curlDone.then((c) => (curlExit = c));

    // Kill on the number of bytes the client has, not after a delay: the point is "part-way".
    const killBytes = Math.floor(sizeBytes * killAt);
    let killedAtMs: number | undefined;
    let killedAtBytes: number | undefined;
    let lastReport = 0;
    let reported = -1;
    let lastChange = Date.now();
    let seen = 0;
    let gaveUp = false;
    let announcedTakeover = false;
    while (curlExit === undefined) {
      const have = fileSize(download);
      if (have !== seen) {
        seen = have;
        lastChange = Date.now();
      }
      if (killedAtMs === undefined && have >= killBytes) {
        killedAtBytes = have;
        process.kill(primary.pid!, 'SIGKILL');
        killedAtMs = Date.now();
        progress(`SIGKILL to the primary at ${(have / MIB).toFixed(1)} MiB (${Math.round((100 * have) / sizeBytes)}%)`);
      }
      // Say when the backup has taken over, as it happens: the operator watching should not have
      // to wait for the report to learn that the silence after the kill has ended. The backup's
      // log is a few kB, cheap to reread every 100 ms until its `takeover.done` is there.
      if (killedAtMs !== undefined && !announcedTakeover) {
        const done = parseNodeLog(readText(logs.backup), 'backup').find((e) => e.event === 'takeover.done');
        if (done !== undefined) {
          announcedTakeover = true;
          progress(`the backup took over, ${Math.round(done.timeMs - killedAtMs)} ms after the kill`);
        }
      }
      // Once a second while bytes come in; every five seconds while they do not.
      if ((have !== reported && Date.now() - lastReport >= 1000) || Date.now() - lastReport >= 5000) {
        lastReport = Date.now();
        reported = have;
        const idle = Date.now() - lastChange >= 1000 ? `, nothing new for ${((Date.now() - lastChange) / 1000).toFixed(0)} s` : '';
        progress(`client has ${(have / MIB).toFixed(1)} of ${opts.sizeMiB} MiB${idle}`);
      }
      // A failover that has not resumed the download by now will not: end the wait, and the
      // demo, instead of sitting out curl's own timeout.
      if (killedAtMs !== undefined && !gaveUp && Date.now() - lastChange > NO_PROGRESS_GIVE_UP_MS) {
        gaveUp = true;
        progress(`no data for ${NO_PROGRESS_GIVE_UP_MS / 1000} s since the kill: stopping curl`);
        curl.kill('SIGTERM');
      }
      await sleep(killedAtMs === undefined ? 10 : 100);
    }
    progress(`curl exited with ${curlExit}`);
    // A kept lab is left as it was built.
    await paced.undo();
    // Let the connection's last segments (FIN, ACK) reach the capture before stopping it, and a
    // tcpdump that fell behind on a busy machine write what it still has to: a SIGINT ends its
    // loop, and packets it had not read yet would be lost (a capture without the resumed transfer).
    await sleep(300);
    await captureSettled(pcapFile, 250, 5000);
    await stopProcess(tcpdump, 'SIGINT', 5000);

    progress('hashing the download and reading the capture');
    const received = existsSync(download) ? await sha256File(download) : { hex: '', bytes: 0 };
    const pcap = readPcapFile(pcapFile);
    const nodeEvents = [...parseNodeLog(readText(logs.primary), 'primary'), ...parseNodeLog(readText(logs.backup), 'backup')];
    const steps = takeoverSteps(nodeEvents);
    const tookOverMs = takeoverMoment(steps);
    const analysis = analyzeCapture(pcap.tcp, {
      server: { ip: l.addr.vip, port: PORT },
      ...(killedAtMs === undefined ? {} : { killedAtUs: killedAtMs * 1000 }),
      // The pause the failover caused is the one across the backup's decision; without that, a
      // pause long after the takeover is the link's pace, not the failover.
      ...(steps[0] === undefined ? {} : { failoverAtUs: steps[0].timeMs * 1000 }),
      ...(tookOverMs === undefined ? {} : { searchUntilUs: (tookOverMs + 2000) * 1000 }),
    });

    const files = [pcapFile];
    const notes: string[] = [];
    if (!pcap.ok || pcap.truncated) notes.push(`capture: ${pcap.problem ?? 'unreadable'}`);
    if (killedAtMs === undefined) notes.push('the download ended before the kill point: nothing was failed over');
    if (gaveUp) notes.push(`curl was stopped after ${NO_PROGRESS_GIVE_UP_MS / 1000} s without data following the kill`);
    const originMs = analysis.originUs / 1000;
    const svg = renderTimelineSvg({
      title: `understudy: ${opts.sizeMiB} MiB download through a failover`,
      subtitle:
        'curl on the client, capture of its interface; ' +
        // Where the kill really landed (the client's bytes then), not where it was aimed.
        (killedAtBytes === undefined ? 'the download ended before the primary was killed' : `primary SIGKILLed at ${Math.round((100 * killedAtBytes) / sizeBytes)}% of the download`) +
        (analysis.stall ? `, stall ${Math.round(analysis.stall.ms)} ms` : ''),
      data: analysis.data,
      acks: analysis.acks,
      ...(killedAtMs === undefined ? {} : { killedMs: killedAtMs - originMs }),
      ...(tookOverMs === undefined ? {} : { takeoverMs: tookOverMs - originMs }),
      ...(analysis.stall === undefined ? {} : { stall: { fromMs: analysis.stall.fromUs / 1000 - originMs, toMs: analysis.stall.toUs / 1000 - originMs } }),
    });
    const svgFile = path.join(outDir, 'timeline.svg');
    writeFileSync(svgFile, svg);
    files.push(svgFile);
    const png = toPng(svgFile);
    if (png !== undefined) files.push(png);
    else notes.push('no PNG: neither rsvg-convert nor an SVG-capable convert here');
    files.push(...[logs.primary, logs.backup].filter((f) => existsSync(f)));

    const outcome: DemoOutcome = {
      sizeBytes,
      curlExit: curlExit ?? null,
      curlError: curlErr.trim().split('\n').at(-1) ?? '',
      bytesReceived: received.bytes,
      sha256Expected,
      sha256Received: received.hex,
      rsts: analysis.rsts.length,
      rstLines: analysis.rsts.slice(0, 5).map((e) => `+${((e.timeUs - analysis.originUs) / 1000).toFixed(1)} ms ${e.src}:${e.srcPort} > ${e.dst}:${e.dstPort} [${flagString(e.flags)}]`),
      killedAtMs,
      killSignal: 'SIGKILL',
      ...(killedAtBytes === undefined ? {} : { killedAtBytes }),
      stallMs: analysis.stall?.ms,
      takeoverSteps: steps,
      files: [...files, path.join(outDir, 'report.txt')],
      notes,
    };
    const report = formatReport(outcome);
    writeFileSync(path.join(outDir, 'report.txt'), report);
    if (!interrupted) io.stdout(report);
    if (opts.keep) {
      io.stdout(
        `kept: lab ${l.id} with its nodes (e.g. understudy status --control ${control.backup}); ` +
          `remove with: npx tsx scripts/lab.ts down ${l.id} && rm -r ${work}\n`,
      );
    }
    return demoExitCode(outcome);
  } catch (e) {
    if (!interrupted) io.stderr(`understudy: demo failed: ${e instanceof Error ? e.message : String(e)} (nodes' logs in ${outDir})\n`);
    return 1;
  } finally {
    if (!opts.keep) {
      progress('tearing down the lab');
      // The lab's own teardown SIGKILLs its processes without waiting for them, so the demo could
      // exit while the node that took over was still dying, and leave it to init as a zombie for
      // a moment. Stop them first and wait: the surviving node gets a SIGTERM and shuts down in
      // order; whatever ignores it gets a SIGKILL after the grace period.
      await Promise.all(children.map((c) => stopProcess(c, 'SIGTERM', 5000)));
      await lab?.destroy();
      removeWork();
      process.off('exit', removeWork);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}

/**
 * Polls a node's control socket until `ready` holds for its status. Fails at once, with the end
 * of its log, if the node exits first.
 */
async function waitForStatus(
  control: string,
  child: ChildProcess,
  logFile: string,
  role: string,
  ready: (status: Record<string, unknown>, log: LogEvent[]) => boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new DemoError(`the ${role} exited (${child.exitCode ?? child.signalCode}) while starting: ${tail(readText(logFile))}`);
    }
    try {
      const s = (await controlRequest(control, 'status', {}, 2000)) as Record<string, unknown>;
      if (ready(s, parseNodeLog(readText(logFile), role))) return;
      last = `role ${String(s['role'])}, protected ${String(s['protected'])} (${String(s['protectedReason'])})`;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() > deadline) throw new DemoError(`the ${role} was not ready within ${timeoutMs / 1000} s: ${last}; log: ${tail(readText(logFile))}`);
    await sleep(200);
  }
}

async function stopProcess(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** timeline.png beside the SVG when a converter exists here; undefined otherwise. */
function toPng(svgFile: string): string | undefined {
  const png = svgFile.replace(/\.svg$/, '.png');
  const attempts: Array<[string, string[]]> = [
    ['rsvg-convert', ['-w', '1200', '-h', '600', '-o', png, svgFile]],
    ['convert', [svgFile, png]],
  ];
  for (const [cmd, args] of attempts) {
    rmSync(png, { force: true });
    const r = spawnSync(cmd, args, { timeout: 30_000, stdio: 'ignore' });
    // Some `convert`s exist but cannot read SVG (or are stand-ins): trust only a real PNG file.
    if (r.status === 0 && isPng(png)) return png;
  }
  rmSync(png, { force: true });
  return undefined;
}

function isPng(file: string): boolean {
  try {
    return readFileSync(file).subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  } catch {
    return false;
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function tail(text: string, lines = 5): string {
  return text.trimEnd().split('\n').slice(-lines).join(' | ') || '(empty)';
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until `file` has not grown for `quietMs` (at most `maxMs`). */
async function captureSettled(file: string, quietMs: number, maxMs: number): Promise<void> {
  const size = (): number => (existsSync(file) ? statSync(file).size : 0);
  const until = Date.now() + maxMs;
  let last = size();
  let since = Date.now();
  while (Date.now() < until && Date.now() - since < quietMs) {
    await sleep(50);
    const now = size();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
}
