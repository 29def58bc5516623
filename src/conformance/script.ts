// The parsed form of a packetdrill script, as the FreeBSD TCP test suite uses the language.
// Values stay in script space (sequence numbers relative to the ISNs, times in microseconds);
// the runner maps them onto the live connection.

import type { RawTcpOption } from './packet-codec.js';

/** When an event happens, as written in the script. */
export type EventTime =
  | { kind: 'absolute'; usecs: number; endUsecs?: number }
  | { kind: 'relative'; usecs: number; endUsecs?: number }
  /** `*`: any time (outbound packets only). */
  | { kind: 'any' };

/** A blocking system call's `start...end` form: when the call is expected to return. */
export type EndTime = { kind: 'absolute' | 'relative'; usecs: number };

/** A script names options by kind: any the runner's codec encodes, except an unknown type. */
export type TcpOptionSpec = Exclude<RawTcpOption, { kind: 'unknown' }>;

/** IP-level ECN marking written as `[noecn]`, `[ect0]`, `[ect1]`, `[ect01]` or `[ce]`. */
export type EcnSpec = 'noecn' | 'ect0' | 'ect1' | 'ect01' | 'ce';

export interface TcpPacketSpec {
  proto: 'tcp';
  /** Flag letters as written: S F R P . (ACK) E (ECE) W (CWR) U (URG). */
  flags: string;
  /** Relative start sequence number, or null for `...` (not checked). */
  seq: number | null;
  /** Relative end sequence number (start + len) when written as `start:end(len)`. */
  end: number | null;
  len: number;
  ack?: number;
  win?: number;
  /** undefined: no options; 'any': `<...>`, options not checked. */
  options?: TcpOptionSpec[] | 'any';
  ecn?: EcnSpec;
}

export interface IcmpPacketSpec {
  proto: 'icmp';
  /** packetdrill's names: unreachable, time_exceeded, parameter_problem, source_quench, redirect... */
  type: string;
  code?: string;
  mtu?: number;
  /** The TCP segment the ICMP message quotes: `[start:end(len)]`, sequence numbers relative to our ISN. */
  quoted?: { seq: number; end: number; len: number };
  ecn?: EcnSpec;
}

export type PacketSpec = TcpPacketSpec | IcmpPacketSpec;

/** A syscall argument: `...`, numbers, names, strings, `[lists]`, `{structs}`, `A | B`. */
export type SyscallArg =
  | { kind: 'ellipsis' }
  | { kind: 'number'; value: number }
  | { kind: 'name'; name: string }
  | { kind: 'string'; value: string }
  | { kind: 'list'; items: SyscallArg[] }
  /** `{fd=3, events=POLLIN}`, as poll() takes. */
  | { kind: 'struct'; fields: Record<string, SyscallArg> }
  | { kind: 'or'; operands: SyscallArg[] };

export interface SyscallSpec {
  name: string;
  args: SyscallArg[];
  /** The expected return value. */
  result: number;
  /** The expected errno name when the result is -1, e.g. EINPROGRESS. */
  errno?: string;
  /** The parenthesised note after the result: `(Operation now in progress)`, `(flags O_RDWR)`. */
  note?: string;
  /** `start...end`: when a blocking call is expected to return. */
  end?: EndTime;
}

/** A `%{ assert tcpi_state == TCPI_ESTABLISHED }%` line, reduced to what it compares. */
export interface CodeAssertion {
  field: string;
  op: '==' | '!=';
  value: string;
}

export type ScriptAction =
  | { type: 'packet'; direction: 'inbound' | 'outbound'; packet: PacketSpec }
  | { type: 'syscall'; call: SyscallSpec }
  | { type: 'shell'; command: string; sysctl?: { name: string; value: string } }
  | { type: 'code'; text: string; assertion?: CodeAssertion };

export type ScriptEvent = ScriptAction & { line: number; time: EventTime; source: string };

export interface Script {
  /** `--name=value` lines, e.g. tolerance_usecs, ip_version, mtu. */
  options: Record<string, string>;
  events: ScriptEvent[];
}

export class ScriptParseError extends Error {
  constructor(
    readonly line: number,
    /** What is wrong, without the line number. */
    readonly detail: string,
  ) {
    super(`line ${line}: ${detail}`);
    this.name = 'ScriptParseError';
  }
}
