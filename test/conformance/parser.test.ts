import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEventLine, parseScript } from '../../src/conformance/parser.js';
import { ScriptParseError, type TcpPacketSpec } from '../../src/conformance/script.js';
import { defaultSuiteDir, listScripts } from '../../src/conformance/suite.js';

function tcp(line: string): TcpPacketSpec {
  const ev = parseEventLine(line);
  if (ev.type !== 'packet' || ev.packet.proto !== 'tcp') throw new Error('not a TCP packet line');
  return ev.packet;
}

describe('timestamps', () => {
  it('reads relative, absolute, spaced, ranged and any times in microseconds', () => {
    expect(parseEventLine('+0.10 close(3) = 0').time).toEqual({ kind: 'relative', usecs: 100_000 });
    expect(parseEventLine(' 1.00 close(3) = 0').time).toEqual({ kind: 'absolute', usecs: 1_000_000 });
    expect(parseEventLine('+ 2.20 close(3) = 0').time).toEqual({ kind: 'relative', usecs: 2_200_000 });
    expect(parseEventLine('+.1~+.2 > . 1:1(0) ack 1').time).toEqual({ kind: 'relative', usecs: 100_000, endUsecs: 200_000 });
    expect(parseEventLine('0.1~0.25 > . 1:1(0) ack 1').time).toEqual({ kind: 'absolute', usecs: 100_000, endUsecs: 250_000 });
    expect(parseEventLine('*      > S  0:0(0) win 65535 <...>').time).toEqual({ kind: 'any' });
  });

  it('gives a blocking call its `...end` time, absolute or relative, with or without decimals', () => {
    const rel = parseEventLine('+0...+2 accept(3, ..., ...) = 4');
    expect(rel.time).toEqual({ kind: 'relative', usecs: 0 });
    expect(rel.type === 'syscall' && rel.call.end).toEqual({ kind: 'relative', usecs: 2_000_000 });
    const ev = parseEventLine(' 1.00...6.00 connect(3, ..., ...) = -1 ETIMEDOUT (Operation timed out)');
    expect(ev.time).toEqual({ kind: 'absolute', usecs: 1_000_000 });
    expect(ev.type === 'syscall' && ev.call.end).toEqual({ kind: 'absolute', usecs: 6_000_000 });
  });

  it('rejects `*` on anything but an outbound packet, and backwards ranges', () => {
    expect(() => parseEventLine('* close(3) = 0')).toThrow(ScriptParseError);
    expect(() => parseEventLine('* < S 0:0(0) win 1')).toThrow(/outbound/);
    expect(() => parseEventLine('0.3~0.2 > . 1:1(0) ack 1')).toThrow(/backwards/);
  });
});

describe('TCP packet lines', () => {
  it('reads flags, sequence range, ack, window and direction', () => {
    const ev = parseEventLine('+0.00 > F. 1:1(0) ack 801 win 65535');
    expect(ev.type === 'packet' && ev.direction).toBe('outbound');
    expect(tcp('+0 < SEW 0:0(0) win 32767')).toMatchObject({ flags: 'SEW', seq: 0, end: 0, len: 0, win: 32767 });
    expect(tcp('+0 <  . 1:800(799) ack   1 win 65535 ')).toMatchObject({ flags: '.', seq: 1, end: 800, len: 799, ack: 1 });
    const rst = tcp('+0 > R 34:34(0) win  0');
    expect(rst).toMatchObject({ flags: 'R', seq: 34, win: 0 });
    expect(rst.ack).toBeUndefined();
    expect(tcp('+0 < . 4294967295:4294967295(0) ack 1 win 1').seq).toBe(4294967295);
  });

  it('reads every option kind in order', () => {
    const p = tcp('+0 > S 0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0,eol>');
    expect(p.options).toEqual([
      { kind: 'mss', value: 1460 },
      { kind: 'nop' },
      { kind: 'wscale', value: 6 },
      { kind: 'sackOK' },
      { kind: 'TS', val: 100, ecr: 0 },
      { kind: 'eol' },
    ]);
    expect(tcp('+0 > . 1:1(0) ack 100 win 65535 <nop,nop,sack 600:700 400:500>').options).toEqual([
      { kind: 'nop' },
      { kind: 'nop' },
      { kind: 'sack', blocks: [{ left: 600, right: 700 }, { left: 400, right: 500 }] },
    ]);
    expect(tcp('+0 < S 0:0(0) win 1 <mss 1000,wscale 6,TS val 100 ecr 0,sackOK, eol>').options).toHaveLength(5);
  });

  it('reads the wildcards: `<...>` options and `...` sequence numbers', () => {
    expect(tcp('* > S 0:0(0) win 65535 <...>').options).toBe('any');
    expect(tcp('+0 > S. ...(0) ack 65537 win 65535')).toMatchObject({ seq: null, end: null, len: 0, ack: 65537 });
    expect(tcp('+0 > S 0:0(0) <mss 32>').win).toBeUndefined();
  });

  it('reads IP ECN markings with or without a space', () => {
    expect(tcp('+0 >[noecn] P. 1:11(10) ack 1').ecn).toBe('noecn');
    expect(tcp('+0 > [ect0] P. 1:11(10) ack 1').ecn).toBe('ect0');
    expect(tcp('+0 < [noecn] . 1:1(0) ack 1 win 65535')).toMatchObject({ ecn: 'noecn', flags: '.' });
  });

  it('reports the column of a malformed packet', () => {
    expect(() => parseEventLine('+0 < S 0:0 win 1', 7)).toThrow(/line 7: expected '\('/);
    expect(() => parseEventLine('+0 < S 0:0(0) win 1 <md5 x>')).toThrow(/unknown TCP option 'md5'/);
  });
});

describe('ICMP lines', () => {
  it('reads type, code, MTU and the quoted segment', () => {
    const ev = parseEventLine('+0.00 < icmp unreachable frag_needed mtu 1234 [0:0(0)]');
    expect(ev.type === 'packet' && ev.packet).toEqual({
      proto: 'icmp',
      type: 'unreachable',
      code: 'frag_needed',
      mtu: 1234,
      quoted: { seq: 0, end: 0, len: 0 },
    });
    const q = parseEventLine('+0.10 <icmp time_exceeded ttl_exceeded_in_transit [4294967295:4294967295(0)]');
    expect(q.type === 'packet' && q.packet.proto === 'icmp' && q.packet.quoted?.seq).toBe(4294967295);
    const sq = parseEventLine('+0 < icmp source_quench [0:0(0)]');
    expect(sq.type === 'packet' && sq.packet.proto === 'icmp' && sq.packet.code).toBeUndefined();
  });
});

describe('system call lines', () => {
  it('reads arguments, result, errno and note', () => {
    const ev = parseEventLine('+0.00 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0');
    expect(ev.type === 'syscall' && ev.call).toEqual({
      name: 'getsockopt',
      args: [
        { kind: 'number', value: 3 },
        { kind: 'name', name: 'SOL_SOCKET' },
        { kind: 'name', name: 'SO_ERROR' },
        { kind: 'list', items: [{ kind: 'name', name: 'ECONNREFUSED' }] },
        { kind: 'list', items: [{ kind: 'number', value: 4 }] },
      ],
      result: 0,
    });
    const c = parseEventLine('+0.00 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)');
    expect(c.type === 'syscall' && c.call).toMatchObject({ result: -1, errno: 'EINPROGRESS', note: 'Operation now in progress' });
    const f = parseEventLine('+0.00 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0');
    expect(f.type === 'syscall' && f.call.args[2]).toEqual({
      kind: 'or',
      operands: [{ kind: 'name', name: 'O_RDWR' }, { kind: 'name', name: 'O_NONBLOCK' }],
    });
    const g = parseEventLine('+0.00 fcntl(3, F_GETFL) = 0x02 (flags O_RDWR)');
    expect(g.type === 'syscall' && g.call).toMatchObject({ result: 2, note: 'flags O_RDWR' });
    const poll = parseEventLine('+0 poll([{fd=4, events=POLLIN, revents=0}], 1, 0) = 0');
    expect(poll.type === 'syscall' && poll.call.args[0]).toEqual({
      kind: 'list',
      items: [
        {
          kind: 'struct',
          fields: {
            fd: { kind: 'number', value: 4 },
            events: { kind: 'name', name: 'POLLIN' },
            revents: { kind: 'number', value: 0 },
          },
        },
      ],
    });
    const w = parseEventLine('+0.00 write (3, ..., 10) = 10');
    expect(w.type === 'syscall' && w.call.name).toBe('write');
  });
});

describe('shell, code, comments, options and #ifdef', () => {
  it('extracts sysctls from shell lines and keeps other commands whole', () => {
    const s = parseEventLine(' 0.00 `sysctl -w net.inet.tcp.delacktime=40`');
    expect(s.type === 'shell' && s.sysctl).toEqual({ name: 'net.inet.tcp.delacktime', value: '40' });
    const t = parseEventLine('+0.00 `tcpdrop -s TIME_WAIT`');
    expect(t.type === 'shell' && t.command).toBe('tcpdrop -s TIME_WAIT');
    expect(t.type === 'shell' && t.sysctl).toBeUndefined();
  });

  it('reduces %{ assert }% blocks to the comparison', () => {
    const c = parseEventLine('+0.00 %{ assert tcpi_state == TCPI_SYN_RECEIVED }%');
    expect(c.type === 'code' && c.assertion).toEqual({ field: 'tcpi_state', op: '==', value: 'TCPI_SYN_RECEIVED' });
  });

  it('skips comments, keeps line numbers, reads options and takes the defined #ifdef branch', () => {
    const text = [
      '// header',
      '--ip_version=ipv4',
      '--tolerance_usecs=75000',
      '/* a block',
      '   comment */ 0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3',
      '#ifdef STANDARD',
      '+0.00 > . 2:2(0) ack 2 win 65535 // trailing comment',
      '#endif',
      '#ifdef FreeBSD',
      '+0.10 < . 1:1(0) ack 2 win 32767',
      '#endif',
      '+0.00 close(3) = 0',
    ].join('\n');
    const script = parseScript(text, { defines: ['STANDARD'] });
    expect(script.options).toEqual({ ip_version: 'ipv4', tolerance_usecs: '75000' });
    expect(script.events.map((e) => [e.line, e.type])).toEqual([
      [5, 'syscall'],
      [7, 'packet'],
      [12, 'syscall'],
    ]);
    const freebsd = parseScript(text, { defines: ['FreeBSD'] });
    expect(freebsd.events.map((e) => e.line)).toEqual([5, 10, 12]);
  });

  it('rejects an unterminated #ifdef', () => {
    expect(() => parseScript('#ifdef X\n+0 close(3) = 0\n')).toThrow(/unterminated/);
  });
});

describe('the suite', () => {
  it('parses all 567 scripts without an error', () => {
    const dir = defaultSuiteDir();
    const scripts = listScripts(dir);
    expect(scripts).toHaveLength(567);
    const errors: string[] = [];
    let events = 0;
    for (const s of scripts) {
      try {
        events += parseScript(readFileSync(path.join(dir, s), 'utf8'), { defines: ['STANDARD'] }).events.length;
      } catch (e) {
        errors.push(`${s}: ${(e as Error).message}`);
      }
    }
    expect(errors).toEqual([]);
    expect(events).toBeGreaterThan(15_000);
  });
});
