// Executes one packetdrill script against our sans-IO Host on a virtual clock (microseconds).
//
// Semantics follow packetdrill: `<` lines are injected at their time; `>` lines take the next
// packet the stack sent, which must match field by field and be sent within --tolerance_usecs of
// the line's time; relative times count from when the previous event actually completed; system
// calls run at their time, and a blocking one that cannot complete yet keeps running while later
// lines execute, and must return at its `...end` time. Sequence numbers are relative to each
// side's ISN. Unlike packetdrill, a packet sent after the last `>` line fails the script too,
// unless the script's final close() sent it (the close-at-end relaxation).

import type { Host, HostConfig } from '../stack/host-api.js';
import type { TcpConnection } from '../stack/tcp/api.js';
import { tupleKey, type FourTuple } from '../stack/wire/types.js';
import { icmpTypeCode } from './icmp-names.js';
import { decodePacket, DecodeError, encodeIcmpError, encodeTcpPacket, FLAG, type RawPacket } from './packet-codec.js';
import {
  compareOutbound,
  ecnBits,
  flagsFromLetters,
  formatActual,
  learnTimestamps,
  liveOptions,
  type Flow,
} from './packet-match.js';
import { parseScript } from './parser.js';
import {
  checkSysctls,
  FREEBSD_PROFILE,
  shapesTcpConfig,
  sysctlValue,
  tcpConfigFor,
  type ConformanceProfile,
  type RelaxationId,
  type SysctlReport,
} from './profile.js';
import {
  ScriptParseError,
  type IcmpPacketSpec,
  type Script,
  type ScriptEvent,
  type SyscallSpec,
  type TcpPacketSpec,
} from './script.js';
import { SocketLayer } from './socket-layer.js';
import { bsdStateName, WOULD_BLOCK, type Attempt, type CallOutcome, type SocketFd } from './sockets.js';
import { argText, errnoEquals, expectedOutValue } from './syscall-args.js';
import { createVirtualEnv } from './virtual-env.js';

export type HostFactory = (config: HostConfig) => Host;

export interface RunOptions {
  createHost: HostFactory;
  profile?: ConformanceProfile;
  /** Receives one line per script event and per packet the stack sends, for debugging. */
  trace?: (line: string) => void;
}

export interface ScriptFailure {
  line: number;
  message: string;
}

export interface ScriptResult {
  passed: boolean;
  failure?: ScriptFailure;
  /** Relaxations that turned a mismatch into a match in this script. */
  relaxationsUsed: RelaxationId[];
  sysctls: SysctlReport;
  /** Shell commands the runner does not emulate (treated as succeeding). */
  ignoredCommands: string[];
  /** What a relaxation let pass unchecked in this script. */
  notes: string[];
}

class ScriptFailed extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

/** How far past a missed deadline the runner looks, to tell a late packet from a missing one. */
const LATE_LOOKAHEAD_US = 60_000_000;

/** How long the loop may spin on timers that do not move time forward before calling it a bug. */
const MAX_TIMER_SPINS = 100_000;

/** Timer firings one script may cause: far above any script's needs, it bounds a runaway stack. */
const MAX_TIMER_FIRINGS = 1_000_000;

/** How long a `*` line waits for its packet. */
const ANY_TIME_LIMIT_US = 3_600_000_000;

interface QueuedPacket {
  time: number;
  raw: RawPacket;
  /** Sent by a close() call rather than by a timer or an arriving segment. */
  byClose: boolean;
}

interface PendingCall {
  event: ScriptEvent & { type: 'syscall' };
  start: number;
  expectedEnd: number;
  attempt: () => Attempt;
}

export function runScript(text: string, opts: RunOptions): ScriptResult {
  const profile = opts.profile ?? FREEBSD_PROFILE;
  let script: Script;
  try {
    script = parseScript(text, { defines: profile.defines });
  } catch (e) {
    if (e instanceof ScriptParseError)
      return {
        passed: false,
        failure: { line: e.line, message: `parse error: ${e.detail}` },
        relaxationsUsed: [],
        sysctls: { unsupported: [], unknown: [] },
        ignoredCommands: [],
        notes: [],
      };
    throw e;
  }
  return new ScriptRun(script, profile, opts.createHost, opts.trace).run();
}

class ScriptRun {
  private now = 0;
  private host: Host | undefined;
  private readonly sysctls = new Map<string, string>();
  private readonly sockets: SocketLayer;
  private readonly queue: QueuedPacket[] = [];
  private pending: PendingCall | undefined;
  private flow: Flow;
  /** packetdrill's "socket under test": what %{ }% blocks inspect. */
  private underTest: { fd?: SocketFd; conn?: TcpConnection } = {};
  private readonly tolerance: number;
  private readonly mtu: number;
  private readonly relaxations: ReadonlySet<RelaxationId>;
  private readonly used = new Set<RelaxationId>();
  private readonly ignoredCommands: string[] = [];
  private currentLine = 0;
  private timerFirings = 0;
  /** A close() call is running: what the host sends now is that call's doing. */
  private inClose = false;
  private readonly notes: string[] = [];
  private hostWithoutOptions = false;
  /** Flags, sequence number and length of every segment matched so far: repeats are retransmissions. */
  private readonly sentSegments = new Set<string>();

  constructor(
    private readonly script: Script,
    private readonly profile: ConformanceProfile,
    private readonly createHost: HostFactory,
    private readonly trace?: (line: string) => void,
  ) {
    this.tolerance = Number(script.options['tolerance_usecs'] ?? profile.defaultToleranceUs);
    this.mtu = Number(script.options['mtu'] ?? profile.defaultMtu);
    this.relaxations = new Set(profile.relaxations.map((r) => r.id));
    this.flow = this.newFlow(profile.bindPort, profile.remotePort);
    // The socket layer sees the run through this narrow view.
    const run = this;
    this.sockets = new SocketLayer(
      {
        get now() {
          return run.now;
        },
        host: (noOptions) => this.ensureHost(noOptions),
        existingHost: () => this.host,
        drain: () => this.drain(),
        sysctl: (name) => sysctlValue(this.sysctls, name),
        opened: (localPort, remotePort) => {
          this.flow = this.newFlow(localPort, remotePort);
        },
        setUnderTest: (fd, conn) => {
          this.underTest = conn ? { fd, conn } : { fd };
        },
        peerMss: () => {
          const o = this.flow.peerSynOptions?.find((x) => x.kind === 'mss');
          return o?.kind === 'mss' ? o.value : undefined;
        },
        fail: (line, message) => this.fail(line, message),
      },
      profile,
      this.mtu,
    );
  }

  run(): ScriptResult {
    let failure: ScriptFailure | undefined;
    try {
      for (const ev of this.script.events) {
        this.currentLine = ev.line;
        this.execute(ev);
      }
      this.finish();
    } catch (e) {
      if (e instanceof ScriptFailed) failure = { line: e.line, message: e.message };
      else {
        const err = e as Error;
        const where = err.stack?.split('\n')[1]?.trim() ?? '';
        failure = { line: this.currentLine, message: `the stack threw ${err.name}: ${err.message} ${where}` };
      }
    }
    const result: ScriptResult = {
      passed: failure === undefined,
      relaxationsUsed: [...this.used],
      sysctls: checkSysctls(this.sysctls),
      ignoredCommands: this.ignoredCommands,
      notes: this.notes,
    };
    if (failure) {
      // Say so when the script asked for behaviour our stack does not offer at all.
      if (result.sysctls.unsupported.length > 0)
        failure.message += ` [script sets ${result.sysctls.unsupported.join(', ')}]`;
      result.failure = failure;
    }
    return result;
  }

  private fail(line: number, message: string): never {
    throw new ScriptFailed(line, message);
  }

  private newFlow(localPort: number, remotePort: number): Flow {
    return {
      localAddr: this.profile.localAddr,
      remoteAddr: this.profile.remoteAddr,
      localPort,
      remotePort,
      localIsn: null,
      remoteIsn: this.profile.remoteIsn,
      tsMap: new Map(),
    };
  }

  private get tuple(): FourTuple {
    return {
      localAddr: this.flow.localAddr,
      localPort: this.flow.localPort,
      remoteAddr: this.flow.remoteAddr,
      remotePort: this.flow.remotePort,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Time

  /** When the event is due, in script time; relative times count from the current clock. */
  private dueTime(ev: ScriptEvent): { start: number; end: number } {
    const t = ev.time;
    if (t.kind === 'any') return { start: this.now, end: Infinity };
    const base = t.kind === 'relative' ? this.now : 0;
    const start = base + t.usecs;
    return { start, end: t.endUsecs !== undefined ? base + t.endUsecs : start };
  }

  /**
   * The Host, built at first need from the sysctls set so far. A listener with TCP_NOOPT needs it
   * built without options, since listeners take the host's TcpConfig.
   */
  private ensureHost(noOptions = false): Host {
    if (this.host && noOptions && !this.hostWithoutOptions)
      this.fail(this.currentLine, 'TCP_NOOPT on a listener after the host was built: not supported by the runner');
    if (!this.host) {
      this.hostWithoutOptions = noOptions;
      const tcp = tcpConfigFor(this.sysctls, this.mtu, { noOptions });
      this.host = this.createHost({
        addresses: [this.profile.localAddr],
        mtu: this.mtu,
        tcp,
        env: createVirtualEnv(0x5eed, tcp.challengeAckPerSecond),
        synBacklog: 128,
        icmpEcho: true,
      });
    }
    return this.host;
  }

  private nextDeadline(): number | null {
    const h = this.host?.nextDeadline() ?? null;
    const r = this.sockets.nextDeadline();
    if (h === null) return r;
    if (r === null) return h;
    return Math.min(h, r);
  }

  /**
   * Fires the timers due before `t` (and at `t` too when `inclusive`), then sets the clock to `t`
   * (never backwards). A scripted event at the very instant a timer falls due runs first: the
   * script's packet is already on the wire when the kernel's timer tick comes round.
   */
  private advanceTo(target: number, inclusive = false, stopOnPacket = false): void {
    const t = Math.max(target, this.now);
    let spins = 0;
    for (;;) {
      if (stopOnPacket && this.queue.length > 0) return;
      const d = this.nextDeadline();
      if (d === null || d > t || (d === t && !inclusive)) break;
      const at = Math.max(this.now, d);
      if (at === this.now && ++spins > MAX_TIMER_SPINS)
        this.fail(this.currentLine, `timers stay due at ${fmtTime(this.now)} without progress`);
      if (at > this.now) spins = 0;
      if (++this.timerFirings > MAX_TIMER_FIRINGS)
        this.fail(this.currentLine, `more than ${MAX_TIMER_FIRINGS} timer firings: runaway timers?`);
      this.now = at;
      this.fireTimers();
    }
    if (t > this.now && t !== Infinity) this.now = t;
  }

  private fireTimers(): void {
    const inClose = this.inClose;
    this.inClose = false;
    this.sockets.onTimer(this.now);
    this.host?.onTimer(this.now);
    this.drain();
    this.inClose = inClose;
  }

  /** Collects what the host produced: packets into the queue, events onto the sockets. */
  private drain(): void {
    const host = this.host;
    if (!host) return;
    for (const bytes of host.takePackets(this.now)) {
      let raw: RawPacket;
      try {
        raw = decodePacket(bytes);
      } catch (e) {
        if (e instanceof DecodeError) this.fail(this.currentLine, `the stack sent a malformed packet: ${e.message}`);
        throw e;
      }
      this.queue.push({ time: this.now, raw, byClose: this.inClose });
      this.trace?.(`${fmtTime(this.now)}          sent ${formatActual(raw, this.flow)}`);
    }
    for (const ev of host.takeEvents()) {
      if (ev.type === 'connection' && ev.event.type === 'error') this.sockets.onError(ev.conn, ev.event.code);
    }
    this.tryCompletePending();
  }

  // -------------------------------------------------------------------------------------------
  // Events

  private execute(ev: ScriptEvent): void {
    const due = this.dueTime(ev);
    this.trace?.(`${fmtTime(due.start)} line ${String(ev.line).padStart(3)} ${actionText(ev.source)}`);
    if (ev.type === 'packet' && ev.direction === 'outbound') {
      if (ev.packet.proto !== 'tcp') this.fail(ev.line, 'expecting outbound ICMP is not supported');
      this.expectPacket(ev, ev.packet, due);
      return;
    }
    this.advanceTo(due.start);
    switch (ev.type) {
      case 'packet':
        if (ev.packet.proto === 'tcp') this.injectTcp(ev.packet);
        else this.injectIcmp(ev.line, ev.packet);
        return;
      case 'syscall':
        this.inClose = ev.call.name === 'close';
        try {
          this.syscall(ev);
        } finally {
          this.inClose = false;
        }
        return;
      case 'shell':
        this.shell(ev);
        return;
      case 'code':
        this.code(ev);
        return;
    }
  }

  private finish(): void {
    // A blocking call still running at the last line gets until its expected return.
    if (this.pending) this.advanceTo(this.pending.expectedEnd + this.tolerance, true);
    if (this.pending) {
      const p = this.pending;
      this.fail(p.event.line, `${p.event.call.name}() never returned`);
    }
    const describe = (p: QueuedPacket): string => `'${formatActual(p.raw, this.flow)}' at ${fmtTime(p.time)}`;
    const closing = this.relaxations.has('close-at-end');
    const extra = this.queue.find((p) => !(closing && p.byClose));
    if (extra) this.fail(this.currentLine, `unexpected packet after the last expected one: ${describe(extra)}`);
    if (this.queue.length > 0) {
      this.used.add('close-at-end');
      this.notes.push(...this.queue.map((p) => `not checked, sent by the closing close(): ${describe(p)}`));
    }
  }

  private expectPacket(ev: ScriptEvent, spec: TcpPacketSpec, due: { start: number; end: number }): void {
    const any = ev.time.kind === 'any';
    const latest = any ? this.now + ANY_TIME_LIMIT_US : due.end + this.tolerance;
    if (this.queue.length === 0) this.advanceTo(latest, true, true);
    // Looking past the deadline only serves the message: a late packet is reported as late.
    if (this.queue.length === 0 && !any) this.advanceTo(latest + LATE_LOOKAHEAD_US, true, true);
    const got = this.queue.shift();
    const want = actionText(ev.source);
    if (!got) this.fail(ev.line, `expected '${want}' at ${fmtTime(due.start)}, but nothing was sent`);
    // Our ISN is what our first SYN says; a SYN whose sequence number the script leaves open
    // (`...`) starts a new incarnation with a new one.
    const expectsSyn = (flagsFromLetters(spec.flags) & FLAG.SYN) !== 0;
    if (expectsSyn && got.raw.tcp && got.raw.tcp.flags & FLAG.SYN && (this.flow.localIsn === null || spec.seq === null))
      this.flow.localIsn = (got.raw.tcp.seq - (spec.seq ?? 0)) >>> 0;
    const diffs = compareOutbound(spec, got.raw, this.flow);
    if (diffs.length > 0)
      this.fail(ev.line, `expected '${want}', got '${formatActual(got.raw, this.flow)}' (${diffs.join('; ')})`);
    const key = segmentKey(got.raw);
    let earliest = due.start - this.tolerance;
    if (this.sentSegments.has(key) && this.relaxations.has('rto-slop')) {
      const slop = Number(sysctlValue(this.sysctls, 'net.inet.tcp.rexmit_slop')) * 1000;
      if (got.time < earliest && got.time >= earliest - slop) this.used.add('rto-slop');
      earliest -= slop;
    }
    this.sentSegments.add(key);
    if (!any && (got.time < earliest || got.time > latest)) {
      const range = due.end !== due.start ? `~${fmtTime(due.end)}` : '';
      const tol = `tolerance ${this.tolerance / 1000} ms`;
      this.fail(ev.line, `'${want}' expected at ${fmtTime(due.start)}${range}, sent at ${fmtTime(got.time)} (${tol})`);
    }
    const tcp = got.raw.tcp!;
    learnTimestamps(spec, tcp, this.flow);
    if (tcp.flags & FLAG.SYN) this.flow.ourSynOptions = tcp.options;
    // packetdrill takes the packet when it arrives, so the next relative time counts from then.
    if (got.time > this.now) this.now = got.time;
    this.touchConnection();
  }

  private injectTcp(spec: TcpPacketSpec): void {
    const host = this.ensureHost();
    const flow = this.flow;
    const flags = flagsFromLetters(spec.flags);
    if (flags & FLAG.SYN) flow.peerSynOptions = spec.options === 'any' ? [] : (spec.options ?? []);
    const bytes = encodeTcpPacket({
      src: flow.remoteAddr,
      dst: flow.localAddr,
      srcPort: flow.remotePort,
      dstPort: flow.localPort,
      seq: ((spec.seq ?? 0) + flow.remoteIsn) >>> 0,
      ack: spec.ack !== undefined ? (spec.ack + (flow.localIsn ?? 0)) >>> 0 : 0,
      flags,
      window: spec.win ?? 65535,
      options: spec.options === 'any' ? [] : liveOptions(spec.options ?? [], flow),
      payload: new Uint8Array(spec.len),
      ecn: ecnBits(spec.ecn),
    });
    host.onPacket(this.now, bytes);
    this.drain();
    this.touchConnection();
  }

  private injectIcmp(line: number, spec: IcmpPacketSpec): void {
    const host = this.ensureHost();
    const tc = icmpTypeCode(spec.type, spec.code);
    if (typeof tc === 'string') this.fail(line, tc);
    const flow = this.flow;
    const bytes = encodeIcmpError({
      src: flow.remoteAddr,
      dst: flow.localAddr,
      type: tc.type,
      code: tc.code,
      ...(spec.mtu !== undefined ? { mtu: spec.mtu } : {}),
      quoted: {
        src: flow.localAddr,
        dst: flow.remoteAddr,
        srcPort: flow.localPort,
        dstPort: flow.remotePort,
        seq: ((spec.quoted?.seq ?? 0) + (flow.localIsn ?? 0)) >>> 0,
      },
    });
    host.onPacket(this.now, bytes);
    this.drain();
  }

  /** A packet to or from the connection makes it the socket under test, as in packetdrill. */
  private touchConnection(): void {
    const conn = this.host?.connections.get(tupleKey(this.tuple));
    if (!conn) return;
    const fd = this.sockets.ownerOf(conn);
    this.underTest = fd ? { fd, conn } : { conn };
  }

  private shell(ev: ScriptEvent & { type: 'shell' }): void {
    if (ev.sysctl) {
      const { name, value } = ev.sysctl;
      // The Host's TcpConfig is fixed once built; say so rather than pretend a late change applies.
      if (this.host && shapesTcpConfig(name) && sysctlValue(this.sysctls, name) !== value)
        this.ignoredCommands.push(`${ev.command} (after the host was built)`);
      this.sysctls.set(name, value);
      return;
    }
    const cmd = ev.command;
    const sockstat = /^sockstat\b.*grep -c (\w+)\s*\|\s*grep (\d+)\s*$/.exec(cmd);
    if (sockstat) {
      const [, state, count] = sockstat;
      const n = this.sockets.socketStates().filter((s) => s === state).length;
      if (n !== Number(count)) this.fail(ev.line, `sockstat: ${n} socket(s) in ${state}, expected ${count}`);
      return;
    }
    const tcpdrop = /^tcpdrop\s+-s\s+(\w+)$/.exec(cmd);
    if (tcpdrop) {
      for (const conn of this.sockets.allConnections())
        if (bsdStateName(conn.state) === tcpdrop[1]) conn.abort(this.now);
      this.drain();
      return;
    }
    this.ignoredCommands.push(cmd);
  }

  private code(ev: ScriptEvent & { type: 'code' }): void {
    const a = ev.assertion;
    if (!a) {
      this.ignoredCommands.push(`%{ ${ev.text} }%`);
      return;
    }
    let actual: string;
    if (a.field === 'tcpi_state') {
      const sut = this.underTest;
      const state = sut.conn ? sut.conn.state : sut.fd?.listener ? 'LISTEN' : 'CLOSED';
      actual = `TCPI_${state.replace(/-/g, '_')}`;
    } else if (a.field === 'tcpi_options') {
      actual = String(this.negotiatedOptionBits());
    } else {
      this.ignoredCommands.push(`%{ ${ev.text} }%`);
      return;
    }
    const holds = a.op === '==' ? actual === a.value : actual !== a.value;
    if (!holds) this.fail(ev.line, `assert ${a.field} ${a.op} ${a.value}, but ${a.field} is ${actual}`);
  }

  /** FreeBSD's tcpi_options bits: TS 1, SACK 2, WSCALE 4, for options both SYNs carried. */
  private negotiatedOptionBits(): number {
    const ours = this.flow.ourSynOptions ?? [];
    const peers = this.flow.peerSynOptions ?? [];
    const both = (k: string): boolean => ours.some((o) => o.kind === k) && peers.some((o) => o.kind === k);
    return (both('TS') ? 1 : 0) | (both('sackOK') ? 2 : 0) | (both('wscale') ? 4 : 0);
  }

  // -------------------------------------------------------------------------------------------
  // System calls

  private syscall(ev: ScriptEvent & { type: 'syscall' }): void {
    const call = ev.call;
    const attempt = this.sockets.prepare(ev.line, call);
    const first = attempt();
    if (first !== WOULD_BLOCK) {
      this.checkOutcome(ev.line, call, first);
      return;
    }
    if (this.pending) this.fail(ev.line, `blocking ${call.name}() while ${this.pending.event.call.name}() is still blocked`);
    const start = this.now;
    const expectedEnd =
      call.end === undefined ? start : call.end.kind === 'absolute' ? call.end.usecs : start + call.end.usecs;
    this.pending = { event: ev, start, expectedEnd, attempt };
  }

  private tryCompletePending(): void {
    const p = this.pending;
    if (!p) return;
    // Cleared while the attempt runs: the attempt drains the host, which would re-enter here.
    this.pending = undefined;
    const outcome = p.attempt();
    if (outcome === WOULD_BLOCK) {
      this.pending = p;
      return;
    }
    this.checkOutcome(p.event.line, p.event.call, outcome);
    if (Math.abs(this.now - p.expectedEnd) > this.tolerance) {
      const tol = `tolerance ${this.tolerance / 1000} ms`;
      const name = p.event.call.name;
      this.fail(p.event.line, `${name}() returned at ${fmtTime(this.now)}, expected at ${fmtTime(p.expectedEnd)} (${tol})`);
    }
  }

  private checkOutcome(line: number, call: SyscallSpec, got: CallOutcome): void {
    const show = (r: number, errno?: string): string => (errno ? `${r} ${errno}` : String(r));
    const errnoMatches = call.errno === undefined || errnoEquals(call.errno, got.errno);
    if (got.result !== call.result || !errnoMatches)
      this.fail(line, `${call.name}() returned ${show(got.result, got.errno)}, expected ${show(call.result, call.errno)}`);
    if (got.value !== undefined) {
      const want = expectedOutValue(call);
      if (want !== undefined && String(want) !== String(got.value))
        this.fail(line, `${call.name}(${argText(call.args[2])}) gave [${got.value}], expected [${want}]`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

function segmentKey(p: RawPacket): string {
  return p.tcp ? `${p.tcp.flags}:${p.tcp.seq}:${p.tcp.payload.length}` : `proto ${p.protocol}`;
}

function fmtTime(us: number): string {
  return `${(us / 1e6).toFixed(3)}s`;
}

/** The action part of an event line (without its time), for messages. */
function actionText(source: string): string {
  return source.replace(/^\s*(\*|\+?\s*[\d.]+(~\+?[\d.]+)?)\s*/, '').replace(/\s+/g, ' ');
}
