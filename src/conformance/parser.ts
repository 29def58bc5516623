// A parser for packetdrill's script language, covering what the FreeBSD TCP test suite writes:
// one event per line (`<time> <action>`), `--option=value` header lines, `//` and `/* */`
// comments, and the `#ifdef NAME ... #else ... #endif` blocks the suite uses to keep a FreeBSD
// and a standard expectation side by side (packetdrill runs scripts through such definitions).

import {
  ScriptParseError,
  type CodeAssertion,
  type EcnSpec,
  type EndTime,
  type EventTime,
  type IcmpPacketSpec,
  type PacketSpec,
  type Script,
  type ScriptAction,
  type ScriptEvent,
  type SyscallArg,
  type SyscallSpec,
  type TcpOptionSpec,
  type TcpPacketSpec,
} from './script.js';

export interface ParseOptions {
  /** Names defined for `#ifdef`; the runner defines STANDARD (RFC behaviour) by default. */
  defines?: readonly string[];
}

export function parseScript(text: string, opts: ParseOptions = {}): Script {
  const defines = new Set(opts.defines ?? []);
  const lines = preprocess(stripBlockComments(text), defines);
  const options: Record<string, string> = {};
  const events: ScriptEvent[] = [];
  for (const { line, text: raw } of lines) {
    const src = stripLineComment(raw).trim();
    if (src === '') continue;
    if (src.startsWith('--')) {
      const m = /^--([A-Za-z0-9_]+)(?:=(.*))?$/.exec(src);
      if (!m) throw new ScriptParseError(line, `bad option line '${src}'`);
      options[m[1]!] = (m[2] ?? '').trim();
      continue;
    }
    events.push(parseEventLine(src, line));
  }
  return { options, events };
}

/** Parses one event line (without comments), e.g. `+0.1 > S. 0:0(0) ack 1 win 65535`. */
export function parseEventLine(src: string, line = 1): ScriptEvent {
  const cur = new Cursor(src, line);
  const time = parseEventTime(cur);
  cur.skipSpace();
  const action = parseAction(cur);
  if (action.type === 'packet') {
    if (time.kind === 'any' && action.direction !== 'outbound')
      throw new ScriptParseError(line, '`*` can only be used with outbound packets');
  } else if (time.kind === 'any') {
    throw new ScriptParseError(line, '`*` can only be used with outbound packets');
  }
  return { ...action, line, time, source: src };
}

// ---------------------------------------------------------------------------------------------
// Text-level passes

/** Replaces `/* ... *\/` comments with spaces, keeping line breaks so line numbers stay right. */
function stripBlockComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' '));
}

function stripLineComment(line: string): string {
  // `//` inside a backtick shell command or a %{ }% block is not a comment.
  let inShell = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '`') inShell = !inShell;
    else if (!inShell && c === '%' && line[i + 1] === '{') return line;
    else if (!inShell && c === '/' && line[i + 1] === '/') return line.slice(0, i);
  }
  return line;
}

function preprocess(text: string, defines: Set<string>): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  // Each entry: is this branch active, and has an earlier branch of the same #if been taken.
  const stack: Array<{ active: boolean; taken: boolean; parentActive: boolean }> = [];
  const active = (): boolean => stack.every((s) => s.active);
  text.split(/\r?\n/).forEach((t, i) => {
    const line = i + 1;
    const d = /^\s*#\s*(ifdef|ifndef|else|endif|if|elif)\b\s*(\S*)/.exec(t);
    if (d) {
      const [, kw, name] = d;
      if (kw === 'ifdef' || kw === 'ifndef') {
        const parentActive = active();
        const cond = kw === 'ifdef' ? defines.has(name!) : !defines.has(name!);
        stack.push({ active: cond, taken: cond, parentActive });
      } else if (kw === 'else') {
        const top = stack[stack.length - 1];
        if (!top) throw new ScriptParseError(line, '#else without #ifdef');
        top.active = !top.taken;
        top.taken = true;
      } else if (kw === 'endif') {
        if (!stack.pop()) throw new ScriptParseError(line, '#endif without #ifdef');
      } else {
        throw new ScriptParseError(line, `unsupported preprocessor directive #${kw}`);
      }
      return;
    }
    if (active()) out.push({ line, text: t });
  });
  if (stack.length > 0) throw new ScriptParseError(text.split('\n').length, 'unterminated #ifdef');
  return out;
}

// ---------------------------------------------------------------------------------------------
// A character cursor over one line

class Cursor {
  pos = 0;
  constructor(
    readonly src: string,
    readonly line: number,
  ) {}

  get done(): boolean {
    return this.pos >= this.src.length;
  }
  peek(n = 0): string {
    return this.src[this.pos + n] ?? '';
  }
  rest(): string {
    return this.src.slice(this.pos);
  }
  skipSpace(): void {
    while (!this.done && /\s/.test(this.peek())) this.pos++;
  }
  startsWith(s: string): boolean {
    return this.src.startsWith(s, this.pos);
  }
  /** Consumes `s` (after optional spaces) if present. */
  accept(s: string): boolean {
    this.skipSpace();
    if (this.startsWith(s)) {
      this.pos += s.length;
      return true;
    }
    return false;
  }
  expect(s: string): void {
    if (!this.accept(s)) this.fail(`expected '${s}'`);
  }
  /** Consumes a regex match anchored at the cursor (after optional spaces). */
  match(re: RegExp): RegExpExecArray | null {
    this.skipSpace();
    const sticky = new RegExp(re.source, 'y' + re.flags.replace(/[gy]/g, ''));
    sticky.lastIndex = this.pos;
    const m = sticky.exec(this.src);
    if (m) this.pos = sticky.lastIndex;
    return m;
  }
  word(): string | null {
    return this.match(/[A-Za-z_][A-Za-z0-9_]*/)?.[0] ?? null;
  }
  integer(): number | null {
    const m = this.match(/-?(?:0x[0-9a-fA-F]+|\d+)/);
    return m ? Number(m[0]) : null;
  }
  expectInteger(what: string): number {
    const n = this.integer();
    if (n === null) this.fail(`expected ${what}`);
    return n;
  }
  fail(msg: string): never {
    throw new ScriptParseError(this.line, `${msg} at '${this.rest().slice(0, 40)}'`);
  }
}

// ---------------------------------------------------------------------------------------------
// Times

const TIME_RE = /(?:\d+(?:\.\d+)?|\.\d+)/;

function secondsToUsecs(s: string): number {
  return Math.round(Number(s) * 1_000_000);
}

function parseEventTime(cur: Cursor): EventTime {
  cur.skipSpace();
  if (cur.accept('*')) return { kind: 'any' };
  const relative = cur.accept('+');
  const start = cur.match(TIME_RE);
  if (!start) cur.fail('expected an event time');
  const usecs = secondsToUsecs(start[0]);
  const time: EventTime = relative ? { kind: 'relative', usecs } : { kind: 'absolute', usecs };
  // `t1~t2` (or `+t1~+t2`): the event may happen anywhere in the range.
  if (cur.peek() === '~') {
    cur.pos++;
    const endRelative = cur.accept('+');
    if (endRelative !== relative) cur.fail('a time range mixes absolute and relative times');
    const end = cur.match(TIME_RE);
    if (!end) cur.fail('expected the end of a time range');
    time.endUsecs = secondsToUsecs(end[0]);
    if (time.endUsecs < time.usecs) cur.fail('time range is backwards');
  }
  return time;
}

// ---------------------------------------------------------------------------------------------
// Actions

function parseAction(cur: Cursor): ScriptAction {
  // `start...end syscall(...)`: the end time belongs to the system call.
  let end: EndTime | undefined;
  if (cur.startsWith('...')) {
    cur.pos += 3;
    const relative = cur.accept('+');
    const t = cur.match(TIME_RE);
    if (!t) cur.fail('expected the end time of a blocking call');
    end = { kind: relative ? 'relative' : 'absolute', usecs: secondsToUsecs(t[0]) };
    cur.skipSpace();
  }
  const c = cur.peek();
  if (end === undefined && (c === '<' || c === '>')) return parsePacket(cur);
  if (end === undefined && c === '`') return parseShell(cur);
  if (end === undefined && cur.startsWith('%{')) return parseCode(cur);
  const call = parseSyscall(cur);
  if (end) call.end = end;
  if (!cur.done) cur.skipSpace();
  if (!cur.done) cur.fail('trailing text after system call');
  return { type: 'syscall', call };
}

function parseShell(cur: Cursor): ScriptAction {
  cur.expect('`');
  const close = cur.src.indexOf('`', cur.pos);
  if (close < 0) cur.fail('unterminated shell command');
  const command = cur.src.slice(cur.pos, close).trim();
  cur.pos = close + 1;
  cur.skipSpace();
  if (!cur.done) cur.fail('trailing text after shell command');
  const m = /^sysctl\s+(?:-w\s+)?([A-Za-z0-9_.]+)=(\S+)$/.exec(command);
  return m ? { type: 'shell', command, sysctl: { name: m[1]!, value: m[2]! } } : { type: 'shell', command };
}

function parseCode(cur: Cursor): ScriptAction {
  cur.expect('%{');
  const close = cur.src.indexOf('}%', cur.pos);
  if (close < 0) cur.fail('unterminated %{ }% block');
  const text = cur.src.slice(cur.pos, close).trim();
  cur.pos = close + 2;
  const m = /^assert\s+([A-Za-z_][A-Za-z0-9_]*)\s*(==|!=)\s*([A-Za-z0-9_]+)$/.exec(text);
  const assertion: CodeAssertion | undefined = m
    ? { field: m[1]!, op: m[2] as '==' | '!=', value: m[3]! }
    : undefined;
  return assertion ? { type: 'code', text, assertion } : { type: 'code', text };
}

function parseEcn(cur: Cursor): EcnSpec | undefined {
  cur.skipSpace();
  if (cur.peek() !== '[') return undefined;
  const m = cur.match(/\[(noecn|ect0|ect1|ect01|ce)\]/);
  if (!m) cur.fail('unknown IP ECN marking');
  return m[1] as EcnSpec;
}

function parsePacket(cur: Cursor): ScriptAction {
  const dir = cur.peek();
  cur.pos++;
  const direction = dir === '<' ? 'inbound' : 'outbound';
  const ecn = parseEcn(cur);
  cur.skipSpace();
  let packet: PacketSpec;
  if (/^icmp\b/.test(cur.rest())) packet = parseIcmp(cur);
  else packet = parseTcp(cur);
  if (ecn) packet.ecn = ecn;
  cur.skipSpace();
  if (!cur.done) cur.fail('trailing text after packet');
  return { type: 'packet', direction, packet };
}

function parseSeqRange(cur: Cursor): { seq: number | null; end: number | null; len: number } {
  if (cur.accept('...')) {
    cur.expect('(');
    const len = cur.expectInteger('a payload length');
    cur.expect(')');
    return { seq: null, end: null, len };
  }
  const seq = cur.expectInteger('a sequence number');
  cur.expect(':');
  const end = cur.expectInteger('an end sequence number');
  cur.expect('(');
  const len = cur.expectInteger('a payload length');
  cur.expect(')');
  if (seq < 0 || end < 0 || len < 0) cur.fail('negative sequence number');
  return { seq: seq >>> 0, end: end >>> 0, len };
}

function parseTcp(cur: Cursor): TcpPacketSpec {
  const flags = cur.match(/[SFRP.EWUA]+/);
  if (!flags) cur.fail('expected TCP flags');
  const range = parseSeqRange(cur);
  const spec: TcpPacketSpec = { proto: 'tcp', flags: flags[0], ...range };
  for (;;) {
    cur.skipSpace();
    if (cur.done) break;
    if (cur.peek() === '<') {
      spec.options = parseTcpOptions(cur);
      continue;
    }
    const w = cur.word();
    if (w === 'ack') spec.ack = cur.expectInteger('an ack number') >>> 0;
    else if (w === 'win') spec.win = cur.expectInteger('a window');
    else cur.fail('unexpected token in TCP packet');
  }
  return spec;
}

function parseTcpOptions(cur: Cursor): TcpOptionSpec[] | 'any' {
  cur.expect('<');
  if (cur.accept('...')) {
    cur.expect('>');
    return 'any';
  }
  const opts: TcpOptionSpec[] = [];
  if (cur.accept('>')) return opts;
  for (;;) {
    const name = cur.word();
    switch (name) {
      case 'nop':
        opts.push({ kind: 'nop' });
        break;
      case 'eol':
        opts.push({ kind: 'eol' });
        break;
      case 'mss':
        opts.push({ kind: 'mss', value: cur.expectInteger('an MSS') });
        break;
      case 'wscale':
        opts.push({ kind: 'wscale', value: cur.expectInteger('a window scale') });
        break;
      case 'sackOK':
        opts.push({ kind: 'sackOK' });
        break;
      case 'sack': {
        const blocks: Array<{ left: number; right: number }> = [];
        for (;;) {
          const m = cur.match(/(\d+):(\d+)/);
          if (!m) break;
          blocks.push({ left: Number(m[1]) >>> 0, right: Number(m[2]) >>> 0 });
        }
        opts.push({ kind: 'sack', blocks });
        break;
      }
      case 'TS': {
        if (cur.word() !== 'val') cur.fail("expected 'val'");
        const val = cur.expectInteger('a TS value');
        if (cur.word() !== 'ecr') cur.fail("expected 'ecr'");
        const ecr = cur.expectInteger('a TS echo reply');
        opts.push({ kind: 'TS', val: val >>> 0, ecr: ecr >>> 0 });
        break;
      }
      default:
        cur.fail(`unknown TCP option '${name ?? cur.peek()}'`);
    }
    if (cur.accept(',')) continue;
    cur.expect('>');
    return opts;
  }
}

function parseIcmp(cur: Cursor): IcmpPacketSpec {
  cur.word(); // icmp
  const type = cur.word();
  if (!type) cur.fail('expected an ICMP type');
  const spec: IcmpPacketSpec = { proto: 'icmp', type };
  for (;;) {
    cur.skipSpace();
    if (cur.done) break;
    if (cur.peek() === '[') {
      cur.pos++;
      const r = parseSeqRange(cur);
      cur.expect(']');
      if (r.seq === null || r.end === null) cur.fail('the quoted segment needs a sequence number');
      spec.quoted = { seq: r.seq, end: r.end, len: r.len };
      continue;
    }
    const w = cur.word();
    if (w === 'mtu') spec.mtu = cur.expectInteger('an MTU');
    else if (w && spec.code === undefined) spec.code = w;
    else cur.fail('unexpected token in ICMP packet');
  }
  return spec;
}

// ---------------------------------------------------------------------------------------------
// System calls

function parseSyscall(cur: Cursor): SyscallSpec {
  const name = cur.word();
  if (!name) cur.fail('expected a packet, a system call, a shell command or a %{ }% block');
  cur.expect('(');
  const args: SyscallArg[] = [];
  if (!cur.accept(')')) {
    for (;;) {
      args.push(parseArg(cur));
      if (cur.accept(',')) continue;
      cur.expect(')');
      break;
    }
  }
  cur.expect('=');
  const result = cur.integer();
  if (result === null) cur.fail('expected a return value');
  const call: SyscallSpec = { name, args, result };
  cur.skipSpace();
  if (/^[A-Z][A-Z0-9_]*/.test(cur.rest())) call.errno = cur.word()!;
  cur.skipSpace();
  if (cur.peek() === '(') {
    const close = cur.src.lastIndexOf(')');
    if (close < cur.pos) cur.fail('unterminated note');
    call.note = cur.src.slice(cur.pos + 1, close).trim();
    cur.pos = close + 1;
  }
  return call;
}

function parseArg(cur: Cursor): SyscallArg {
  const first = parseTerm(cur);
  const operands = [first];
  while (cur.accept('|')) operands.push(parseTerm(cur));
  return operands.length === 1 ? first : { kind: 'or', operands };
}

function parseTerm(cur: Cursor): SyscallArg {
  cur.skipSpace();
  if (cur.accept('...')) return { kind: 'ellipsis' };
  if (cur.accept('[')) {
    const items: SyscallArg[] = [];
    if (cur.accept(']')) return { kind: 'list', items };
    for (;;) {
      items.push(parseArg(cur));
      if (cur.accept(',')) continue;
      cur.expect(']');
      return { kind: 'list', items };
    }
  }
  if (cur.accept('{')) {
    const fields: Record<string, SyscallArg> = {};
    if (cur.accept('}')) return { kind: 'struct', fields };
    for (;;) {
      const name = cur.word();
      if (!name) cur.fail('expected a field name');
      cur.expect('=');
      fields[name] = parseArg(cur);
      if (cur.accept(',')) continue;
      cur.expect('}');
      return { kind: 'struct', fields };
    }
  }
  if (cur.peek() === '"') {
    const m = cur.match(/"((?:[^"\\]|\\.)*)"/);
    if (!m) cur.fail('unterminated string');
    return { kind: 'string', value: m[1]! };
  }
  const n = cur.integer();
  if (n !== null) return { kind: 'number', value: n };
  const w = cur.word();
  if (w) return { kind: 'name', name: w };
  cur.fail('expected a system call argument');
}
