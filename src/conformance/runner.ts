// Executes one packetdrill script against our sans-IO Host on a virtual clock (microseconds).
//
// Semantics follow packetdrill: `<` lines are injected at their time; `>` lines take the next
// packet the stack sent, which must match field by field and be sent within --tolerance_usecs of
// the line's time; relative times count from when the previous event actually completed; system
// calls run at their time, and a blocking one that cannot complete yet keeps running while later
// lines execute, and must return at its `...end` time. Sequence numbers are relative to each
// side's ISN. Unlike packetdrill, a packet the script never asked for fails the script even when
// no later `>` line would have tripped over it.

import type { Host, HostConfig } from '../stack/host-api.js';
import type { TcpConnection } from '../stack/tcp/api.js';
import { tupleKey, type FourTuple } from '../stack/wire/types.js';
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
  roundUpToMss,
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
  type SyscallArg,
  type SyscallSpec,
  type TcpPacketSpec,
} from './script.js';
import { bsdStateName, FdTable, WOULD_BLOCK, type Attempt, type CallOutcome, type SocketFd } from './sockets.js';
import { createVirtualEnv } from './virtual-env.js';

export type HostFactory = (config: HostConfig) => Host;

export interface RunOptions {
  createHost: HostFactory;
  profile?: ConformanceProfile;
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
  /** Findings that did not fail the script because a relaxation covers them. */
  warnings: string[];
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

interface QueuedPacket {
  time: number;
  raw: RawPacket;
  bytes: Uint8Array;
}

interface PendingCall {
  event: ScriptEvent & { type: 'syscall' };
  start: number;
  expectedEnd: number;
  attempt: () => Attempt;
}

/** FreeBSD's poll(2) bits. */
const POLL_BITS: Record<string, number> = { POLLIN: 0x1, POLLPRI: 0x2, POLLOUT: 0x4, POLLERR: 0x8, POLLHUP: 0x10, POLLNVAL: 0x20, POLLRDNORM: 0x40, POLLWRNORM: 0x4 };

const ICMP_TYPES: Record<string, { type: number; codes: Record<string, number> }> = {
  unreachable: {
    type: 3,
    codes: {
      net_unreachable: 0,
      host_unreachable: 1,
      protocol_unreachable: 2,
      port_unreachable: 3,
      frag_needed: 4,
      source_route_failed: 5,
      net_unknown: 6,
      host_unknown: 7,
      source_host_isolated: 8,
      net_prohibited: 9,
      host_prohibited: 10,
      net_unreachable_for_tos: 11,
      host_unreachable_for_tos: 12,
      packet_filtered: 13,
      precedence_violation: 14,
      precedence_cutoff: 15,
    },
  },
  source_quench: { type: 4, codes: {} },
  redirect: { type: 5, codes: { redirect_net: 0, redirect_host: 1, redirect_tos_net: 2, redirect_tos_host: 3 } },
  time_exceeded: { type: 11, codes: { ttl_exceeded_in_transit: 0, frag_reass_exceeded: 1 } },
  parameter_problem: { type: 12, codes: {} },
};

export function runScript(text: string, opts: RunOptions): ScriptResult {
  const profile = opts.profile ?? FREEBSD_PROFILE;
  let script: Script;
  try {
    script = parseScript(text, { defines: profile.defines });
  } catch (e) {
    if (e instanceof ScriptParseError)
      return {
        passed: false,
        failure: { line: e.line, message: `parse error: ${e.message}` },
        relaxationsUsed: [],
        sysctls: { unsupported: [], unknown: [] },
        ignoredCommands: [],
        warnings: [],
      };
    throw e;
  }
  return new ScriptRun(script, profile, opts.createHost).run();
}

class ScriptRun {
  private now = 0;
  private host: Host | undefined;
  private readonly sysctls = new Map<string, string>();
  private readonly fds = new FdTable();
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
  private readonly warnings: string[] = [];
  /** Errors for connections no descriptor owns yet (not accepted): handed over on accept. */
  private readonly orphanErrors = new Map<TcpConnection, SocketFd['error']>();
  private currentLine = 0;
  /** Flags, sequence number and length of every segment matched so far: repeats are retransmissions. */
  private readonly sentSegments = new Set<string>();
  /** When a blocked poll() gives up and returns 0. */
  private pollDeadline: number | undefined;

  constructor(
    private readonly script: Script,
    private readonly profile: ConformanceProfile,
    private readonly createHost: HostFactory,
  ) {
    this.tolerance = Number(script.options['tolerance_usecs'] ?? profile.defaultToleranceUs);
    this.mtu = Number(script.options['mtu'] ?? profile.defaultMtu);
    this.relaxations = new Set(profile.relaxations.map((r) => r.id));
    this.flow = this.newFlow(profile.bindPort, profile.remotePort);
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
      warnings: this.warnings,
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

  private ensureHost(noOptions = false): Host {
    if (!this.host) {
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

  /** The next time the runner's own socket layer needs to act (TCP_KEEPINIT, a poll timeout). */
  private runnerDeadline(): number | null {
    let best: number | null = this.pollDeadline ?? null;
    for (const s of this.fds.all()) {
      if (s.conn?.state !== 'SYN-SENT' || s.connectAt === undefined) continue;
      const t = s.connectAt + this.keepinitUs(s);
      if (best === null || t < best) best = t;
    }
    return best;
  }

  private keepinitUs(s: SocketFd): number {
    return s.keepinitUs ?? Number(sysctlValue(this.sysctls, 'net.inet.tcp.keepinit')) * 1000;
  }

  private nextDeadline(): number | null {
    const h = this.host?.nextDeadline() ?? null;
    const r = this.runnerDeadline();
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
      this.now = at;
      this.fireTimers();
    }
    if (t > this.now && t !== Infinity) this.now = t;
  }

  private fireTimers(): void {
    for (const s of this.fds.all()) {
      if (s.conn?.state === 'SYN-SENT' && s.connectAt !== undefined && this.now >= s.connectAt + this.keepinitUs(s)) {
        s.conn.abort(this.now);
        s.error = 'ETIMEDOUT';
        s.failed = 'ETIMEDOUT';
      }
    }
    this.host?.onTimer(this.now);
    this.drain();
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
      this.queue.push({ time: this.now, raw, bytes });
    }
    for (const ev of host.takeEvents()) {
      if (ev.type !== 'connection' || ev.event.type !== 'error') continue;
      const owner = this.fds.ownerOf(ev.conn);
      if (owner) {
        owner.error = ev.event.code;
        owner.failed = ev.event.code;
      } else this.orphanErrors.set(ev.conn, ev.event.code);
    }
    this.tryCompletePending();
  }

  // -------------------------------------------------------------------------------------------
  // Events

  private execute(ev: ScriptEvent): void {
    const due = this.dueTime(ev);
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
        this.syscall(ev);
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
    if (this.queue.length === 0) return;
    const trailing = this.queue.map((p) => `'${formatActual(p.raw, this.flow)}' at ${fmtTime(p.time)}`);
    if (this.relaxations.has('trailing-packets')) {
      this.used.add('trailing-packets');
      this.warnings.push(...trailing.map((t) => `unchecked packet after the last expected one: ${t}`));
      return;
    }
    this.fail(this.currentLine, `unexpected packet after the last expected one: ${trailing[0]}`);
  }

  private expectPacket(ev: ScriptEvent, spec: TcpPacketSpec, due: { start: number; end: number }): void {
    const any = ev.time.kind === 'any';
    const latest = any ? Infinity : due.end + this.tolerance;
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
    if (!any && (got.time < earliest || got.time > latest))
      this.fail(
        ev.line,
        `'${want}' expected at ${fmtTime(due.start)}${due.end !== due.start ? `~${fmtTime(due.end)}` : ''}, sent at ${fmtTime(got.time)} (tolerance ${this.tolerance / 1000} ms)`,
      );
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
    const kind = ICMP_TYPES[spec.type];
    if (!kind) this.fail(line, `unknown ICMP type '${spec.type}'`);
    let code = 0;
    if (spec.code !== undefined) {
      const m = /^code_(\d+)$/.exec(spec.code);
      const named = kind.codes[spec.code];
      if (named !== undefined) code = named;
      else if (m) code = Number(m[1]);
      else this.fail(line, `unknown ICMP code '${spec.code}'`);
    }
    const flow = this.flow;
    const bytes = encodeIcmpError({
      src: flow.remoteAddr,
      dst: flow.localAddr,
      type: kind.type,
      code,
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
    const fd = this.fds.ownerOf(conn);
    this.underTest = fd ? { fd, conn } : { conn };
  }

  private shell(ev: ScriptEvent & { type: 'shell' }): void {
    if (ev.sysctl) {
      this.sysctls.set(ev.sysctl.name, ev.sysctl.value);
      return;
    }
    const cmd = ev.command;
    const sockstat = /^sockstat\b.*grep -c (\w+)\s*\|\s*grep (\d+)\s*$/.exec(cmd);
    if (sockstat) {
      const [, state, count] = sockstat;
      const n = this.socketStates().filter((s) => s === state).length;
      if (n !== Number(count)) this.fail(ev.line, `sockstat: ${n} socket(s) in ${state}, expected ${count}`);
      return;
    }
    const tcpdrop = /^tcpdrop\s+-s\s+(\w+)$/.exec(cmd);
    if (tcpdrop) {
      for (const conn of this.allConnections())
        if (bsdStateName(conn.state) === tcpdrop[1]) conn.abort(this.now);
      this.drain();
      return;
    }
    this.ignoredCommands.push(cmd);
  }

  private allConnections(): TcpConnection[] {
    const set = new Set<TcpConnection>(this.host?.connections.values() ?? []);
    for (const s of this.fds.all()) if (s.conn) set.add(s.conn);
    return [...set];
  }

  /** What `sockstat -s` would list: every descriptor's socket, plus connections without one. */
  private socketStates(): string[] {
    const states: string[] = [];
    const owned = new Set<TcpConnection>();
    for (const s of this.fds.all()) {
      if (s.conn) {
        owned.add(s.conn);
        states.push(bsdStateName(s.conn.state));
      } else states.push(s.listener ? 'LISTEN' : 'CLOSED');
    }
    for (const conn of this.host?.connections.values() ?? [])
      if (!owned.has(conn)) states.push(bsdStateName(conn.state));
    return states;
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
    const attempt = this.prepareCall(ev.line, call);
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
    if (Math.abs(this.now - p.expectedEnd) > this.tolerance)
      this.fail(
        p.event.line,
        `${p.event.call.name}() returned at ${fmtTime(this.now)}, expected at ${fmtTime(p.expectedEnd)} (tolerance ${this.tolerance / 1000} ms)`,
      );
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

  private sock(line: number, call: SyscallSpec): SocketFd {
    const fdArg = call.args[0];
    const fd = fdArg?.kind === 'number' ? fdArg.value : NaN;
    const s = this.fds.get(fd);
    if (!s) this.fail(line, `${call.name}() on unknown descriptor ${fd}`);
    return s;
  }

  /** Turns a call into a function the runner can retry until it stops blocking. */
  private prepareCall(line: number, call: SyscallSpec): () => Attempt {
    const ok = (result = 0, value?: number | string): CallOutcome =>
      value === undefined ? { result } : { result, value };
    const err = (errno: string): CallOutcome => ({ result: -1, errno });
    switch (call.name) {
      case 'socket':
        return () => {
          const s = this.fds.open();
          this.underTest = { fd: s };
          return ok(s.fd);
        };
      case 'fcntl': {
        const s = this.sock(line, call);
        const cmd = argName(call.args[1]);
        return () => {
          if (cmd === 'F_GETFL') return ok(0x02 | (s.nonblocking ? 0x04 : 0));
          if (cmd === 'F_SETFL') {
            s.nonblocking = argNames(call.args[2]).includes('O_NONBLOCK');
            return ok();
          }
          return err('EINVAL');
        };
      }
      case 'setsockopt': {
        const s = this.sock(line, call);
        const opt = argName(call.args[2]);
        const value = listNumber(call.args[3]);
        return () => {
          if (opt === 'TCP_NOOPT') s.noOptions = value !== 0;
          else if (opt === 'TCP_KEEPINIT') s.keepinitUs = (value ?? 0) * 1_000_000;
          else if (opt === 'TCP_NODELAY') s.conn?.setNoDelay(value !== 0);
          return ok();
        };
      }
      case 'getsockopt': {
        const s = this.sock(line, call);
        const opt = argName(call.args[2]);
        return () => {
          if (opt === 'SO_ERROR') {
            const e = s.error;
            s.error = undefined;
            return ok(0, e ?? 0);
          }
          if (opt === 'SO_RCVBUF') return ok(0, this.receiveBufferOf(s));
          if (opt === 'SO_SNDBUF') return ok(0, Number(sysctlValue(this.sysctls, 'net.inet.tcp.sendspace')));
          return err('ENOPROTOOPT');
        };
      }
      case 'bind': {
        const s = this.sock(line, call);
        return () => {
          s.bound = true;
          return ok();
        };
      }
      case 'listen': {
        const s = this.sock(line, call);
        const backlog = call.args[1]?.kind === 'number' ? call.args[1].value : 1;
        return () => {
          const host = this.ensureHost(s.noOptions);
          s.listener = host.listen(this.profile.localAddr, this.profile.bindPort, backlog);
          this.flow = this.newFlow(this.profile.bindPort, this.profile.remotePort);
          this.underTest = { fd: s };
          return ok();
        };
      }
      case 'connect':
        return this.prepareConnect(line, call);
      case 'accept': {
        const s = this.sock(line, call);
        return () => {
          if (!s.listener) return err('EINVAL');
          const conn = s.listener.accept();
          if (!conn) return s.nonblocking ? err('EAGAIN') : WOULD_BLOCK;
          const child = this.fds.adopt(conn);
          const e = this.orphanErrors.get(conn);
          if (e) {
            child.error = e;
            child.failed = e;
          }
          this.underTest = { fd: child, conn };
          return ok(child.fd);
        };
      }
      case 'read':
      case 'recv': {
        const s = this.sock(line, call);
        const max = call.args[2]?.kind === 'number' ? call.args[2].value : Infinity;
        const peek = call.name === 'recv' && argNames(call.args[3]).includes('MSG_PEEK');
        return () => this.receive(s, max, peek);
      }
      case 'write':
      case 'send': {
        const s = this.sock(line, call);
        const len = call.args[2]?.kind === 'number' ? call.args[2].value : 0;
        return () => this.send(s, len);
      }
      case 'poll':
        return this.preparePoll(line, call);
      case 'shutdown': {
        const s = this.sock(line, call);
        const how = argName(call.args[1]);
        return () => {
          if (!s.conn) return err('ENOTCONN');
          if (how === 'SHUT_WR' || how === 'SHUT_RDWR') {
            s.shutWr = true;
            s.conn.shutdown(this.now);
            this.drain();
          }
          return ok();
        };
      }
      case 'close': {
        const s = this.sock(line, call);
        return () => {
          this.fds.close(s.fd);
          if (s.listener) s.listener.close(this.now);
          if (s.conn) s.conn.close(this.now);
          this.drain();
          return ok();
        };
      }
      default:
        this.fail(line, `unsupported system call ${call.name}()`);
    }
  }

  private prepareConnect(line: number, call: SyscallSpec): () => Attempt {
    const s = this.sock(line, call);
    let started = false;
    return () => {
      if (!started) {
        started = true;
        const host = this.ensureHost(s.noOptions);
        const overrides = s.noOptions ? { windowScale: null, sack: false, timestamps: false } : {};
        const conn = host.connect(
          this.now,
          {
            localAddr: this.profile.localAddr,
            localPort: s.bound ? this.profile.bindPort : 0,
            remoteAddr: this.profile.remoteAddr,
            remotePort: this.profile.connectPort,
          },
          overrides,
        );
        s.conn = conn;
        s.connectAt = this.now;
        this.flow = this.newFlow(conn.tuple.localPort, conn.tuple.remotePort);
        this.underTest = { fd: s, conn };
        this.drain();
        if (s.nonblocking) return { result: -1, errno: 'EINPROGRESS' };
      }
      const failed = s.error;
      if (failed) {
        s.error = undefined;
        return { result: -1, errno: failed };
      }
      const state = s.conn!.state;
      if (state === 'SYN-SENT' || state === 'SYN-RECEIVED') return WOULD_BLOCK;
      return { result: 0 };
    };
  }

  /** poll([{fd=N, events=..., revents=...}, ...], nfds, timeout_ms): the revents are checked. */
  private preparePoll(line: number, call: SyscallSpec): () => Attempt {
    const list = call.args[0];
    const entries = list?.kind === 'list' ? list.items : [];
    const timeoutMs = call.args[2]?.kind === 'number' ? call.args[2].value : 0;
    const polls = entries.map((e) => {
      if (e.kind !== 'struct') this.fail(line, 'poll() expects a list of {fd=..., events=...}');
      const fd = e.fields['fd'];
      return {
        fd: fd?.kind === 'number' ? fd.value : -1,
        events: pollMask(e.fields['events']),
        revents: e.fields['revents'] ? pollMask(e.fields['revents']) : undefined,
      };
    });
    let deadline: number | undefined;
    return () => {
      deadline ??= timeoutMs < 0 ? Infinity : this.now + timeoutMs * 1000;
      const got = polls.map((p) => this.readiness(p.fd) & (p.events | POLL_BITS.POLLERR! | POLL_BITS.POLLHUP! | POLL_BITS.POLLNVAL!));
      const ready = got.filter((r) => r !== 0).length;
      if (ready === 0 && this.now < deadline) {
        this.pollDeadline = deadline === Infinity ? undefined : deadline;
        return WOULD_BLOCK;
      }
      this.pollDeadline = undefined;
      polls.forEach((p, i) => {
        if (p.revents !== undefined && p.revents !== got[i])
          this.fail(line, `poll() revents for fd ${p.fd}: ${pollNames(got[i]!)}, expected ${pollNames(p.revents)}`);
      });
      return { result: ready };
    };
  }

  private readiness(fd: number): number {
    const s = this.fds.get(fd);
    if (!s) return POLL_BITS.POLLNVAL!;
    let r = 0;
    if (s.listener) return s.listener.pendingCount > 0 ? POLL_BITS.POLLIN! | POLL_BITS.POLLRDNORM! : 0;
    const conn = s.conn;
    if (!conn) return POLL_BITS.POLLHUP!;
    if (s.error) r |= POLL_BITS.POLLERR!;
    if (conn.readableLength > 0 || conn.readEnded || s.failed) r |= POLL_BITS.POLLIN! | POLL_BITS.POLLRDNORM!;
    const open = conn.state === 'ESTABLISHED' || conn.state === 'CLOSE-WAIT';
    if (open && !s.shutWr && conn.writableSpace > 0) r |= POLL_BITS.POLLOUT!;
    if (conn.state === 'CLOSED' || s.failed || (conn.readEnded && s.shutWr)) r |= POLL_BITS.POLLHUP!;
    return r;
  }

  private receive(s: SocketFd, max: number, peek: boolean): Attempt {
    const conn = s.conn;
    if (!conn) return { result: -1, errno: 'ENOTCONN' };
    const available = conn.readableLength;
    if (available > 0) {
      if (peek) return { result: Math.min(available, max) };
      const data = conn.read(this.now, max === Infinity ? undefined : max);
      this.drain();
      return { result: data?.length ?? 0 };
    }
    if (s.error) {
      const e = s.error;
      s.error = undefined;
      return { result: -1, errno: e };
    }
    if (conn.readEnded || s.failed) return { result: 0 };
    if (conn.state === 'CLOSED') return { result: 0 };
    return s.nonblocking ? { result: -1, errno: 'EAGAIN' } : WOULD_BLOCK;
  }

  private send(s: SocketFd, len: number): Attempt {
    const conn = s.conn;
    if (!conn) return { result: -1, errno: 'ENOTCONN' };
    if (s.error) {
      const e = s.error;
      s.error = undefined;
      return { result: -1, errno: e };
    }
    if (s.shutWr || s.failed) return { result: -1, errno: 'EPIPE' };
    const taken = conn.write(this.now, new Uint8Array(len));
    this.drain();
    if (taken > 0) return { result: taken };
    return s.nonblocking ? { result: -1, errno: 'EAGAIN' } : WOULD_BLOCK;
  }

  /**
   * SO_RCVBUF as FreeBSD reports it: net.inet.tcp.recvspace until the handshake fixes the MSS,
   * then rounded up to a whole number of segments.
   */
  private receiveBufferOf(s: SocketFd): number {
    const space = Number(sysctlValue(this.sysctls, 'net.inet.tcp.recvspace'));
    const conn = s.conn;
    if (!conn || conn.state === 'SYN-SENT' || conn.state === 'CLOSED') return space;
    const peerMss = this.flow.peerSynOptions?.find((o) => o.kind === 'mss');
    const mss = Math.min(this.mtu - 40, peerMss?.kind === 'mss' ? peerMss.value : 536);
    return roundUpToMss(space, mss);
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

function pollMask(a: SyscallArg | undefined): number {
  return argNames(a).reduce((m, n) => m | (POLL_BITS[n] ?? 0), a?.kind === 'number' ? a.value : 0);
}

function pollNames(mask: number): string {
  const names = Object.entries(POLL_BITS)
    .filter(([n, b]) => mask & b && n !== 'POLLWRNORM')
    .map(([n]) => n);
  return names.length > 0 ? names.join('|') : '0';
}

function argName(a: SyscallArg | undefined): string | undefined {
  return a?.kind === 'name' ? a.name : undefined;
}

function argNames(a: SyscallArg | undefined): string[] {
  if (!a) return [];
  if (a.kind === 'name') return [a.name];
  if (a.kind === 'or') return a.operands.flatMap(argNames);
  return [];
}

function listNumber(a: SyscallArg | undefined): number | undefined {
  if (a?.kind === 'list' && a.items[0]?.kind === 'number') return a.items[0].value;
  if (a?.kind === 'number') return a.value;
  return undefined;
}

function argText(a: SyscallArg | undefined): string {
  if (!a) return '';
  switch (a.kind) {
    case 'name':
      return a.name;
    case 'number':
      return String(a.value);
    default:
      return '...';
  }
}

/** getsockopt's expected value: the first item of the fourth argument, `[65536]` or `[ECONNRESET]`. */
function expectedOutValue(call: SyscallSpec): number | string | undefined {
  const a = call.args[3];
  if (a?.kind !== 'list') return undefined;
  const item = a.items[0];
  if (item?.kind === 'number') return item.value;
  if (item?.kind === 'name') return item.name;
  return undefined;
}

/** FreeBSD defines EWOULDBLOCK as EAGAIN. */
function errnoEquals(want: string, got: string | undefined): boolean {
  const norm = (e: string | undefined): string | undefined => (e === 'EWOULDBLOCK' ? 'EAGAIN' : e);
  return norm(want) === norm(got);
}
