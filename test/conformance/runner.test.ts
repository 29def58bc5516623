// The runner's semantics against a scripted fake host: time and tolerance, ISN mapping, option
// comparison, unexpected packets, blocking calls and the emulated socket layer.

import { describe, expect, it } from 'vitest';
import { decodePacket, encodeTcpPacket, FLAG, type RawTcpOption } from '../../src/conformance/packet-codec.js';
import { FREEBSD_PROFILE, type ConformanceProfile } from '../../src/conformance/profile.js';
import { runScript, type ScriptResult } from '../../src/conformance/runner.js';
import type { HostConfig } from '../../src/stack/host-api.js';
import { FakeHost } from './fake-host.js';

const P = FREEBSD_PROFILE;
const OUR_ISN = 7777;
const STRICT: ConformanceProfile = { ...P, relaxations: [] };

interface Reply {
  delayUs: number;
  flags?: number;
  window?: number;
  options?: RawTcpOption[];
  /** Further packets (relative to the reply), e.g. a retransmission. */
  extra?: Array<{ afterUs: number; flags: number; seqOffset?: number }>;
}

/** A host that answers the first SYN with a SYN-ACK, and opens the connection on the ACK. */
function synAckHost(reply: Reply): { make: (c: HostConfig) => FakeHost; hosts: FakeHost[] } {
  const hosts: FakeHost[] = [];
  const make = (config: HostConfig): FakeHost => {
    const h = new FakeHost(config);
    hosts.push(h);
    h.onInject = (host, now, bytes) => {
      const p = decodePacket(bytes);
      const t = p.tcp!;
      const seg = (flags: number, seq: number, window = reply.window ?? 65535, options: RawTcpOption[] = []) =>
        encodeTcpPacket({
          src: p.dst,
          dst: p.src,
          srcPort: t.dstPort,
          dstPort: t.srcPort,
          seq,
          ack: t.seq + 1,
          flags,
          window,
          options,
          payload: new Uint8Array(0),
        });
      if (t.flags & FLAG.SYN) {
        const opts = reply.options ?? [{ kind: 'mss', value: 1460 }];
        host.sendAt(now + reply.delayUs, seg(reply.flags ?? FLAG.SYN | FLAG.ACK, OUR_ISN, undefined, opts));
        for (const x of reply.extra ?? [])
          host.sendAt(now + reply.delayUs + x.afterUs, seg(x.flags, OUR_ISN + (x.seqOffset ?? 0), undefined, opts));
      } else if (t.flags & FLAG.ACK) {
        host.completeHandshake({ localAddr: p.dst, localPort: t.dstPort, remoteAddr: p.src, remotePort: t.srcPort });
      }
    };
    return h;
  };
  return { make, hosts };
}

const LISTEN = `
--tolerance_usecs=10000
 0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.00 bind(3, ..., ...) = 0
+0.00 listen(3, 1) = 0
+0.00 < S 0:0(0) win 65535 <mss 1460,sackOK,eol,eol>
`;

const HANDSHAKE = `${LISTEN}+0.10 > S. 0:0(0) ack 1 win 65535 <mss 1460>\n`;

function run(script: string, reply: Reply, profile: ConformanceProfile = P): { r: ScriptResult; host: FakeHost } {
  const { make, hosts } = synAckHost(reply);
  const r = runScript(script, { createHost: make, profile });
  return { r, host: hosts[0]! };
}

describe('outbound packets', () => {
  it('matches a packet sent on time and injects with script sequence numbers mapped to live ones', () => {
    const { r, host } = run(
      `${LISTEN}+0.10 > S. 0:0(0) ack 1 win 65535 <mss 1460>\n+0.01 < . 1:1(0) ack 1 win 65535\n`,
      { delayUs: 100_000 },
    );
    expect(r.failure).toBeUndefined();
    expect(r.passed).toBe(true);
    const [syn, ack] = host.injected.map((i) => decodePacket(i.bytes));
    expect(syn!.tcp).toMatchObject({ seq: P.remoteIsn, srcPort: P.remotePort, dstPort: P.bindPort, window: 65535 });
    expect(syn!.tcp!.options).toEqual([{ kind: 'mss', value: 1460 }, { kind: 'sackOK' }, { kind: 'eol' }, { kind: 'eol' }]);
    // Our ISN was learned from the SYN-ACK: the script's `ack 1` is OUR_ISN + 1 on the wire.
    expect(ack!.tcp).toMatchObject({ seq: P.remoteIsn + 1, ack: OUR_ISN + 1 });
    expect(host.injected[1]!.time).toBe(110_000);
  });

  it('fails a packet sent outside the tolerance, naming both times', () => {
    const { r } = run(`${LISTEN}+0.10 > S. 0:0(0) ack 1 win 65535 <mss 1460>\n`, { delayUs: 150_000 });
    expect(r.passed).toBe(false);
    expect(r.failure).toEqual({
      line: 7,
      message: "'> S. 0:0(0) ack 1 win 65535 <mss 1460>' expected at 0.100s, sent at 0.150s (tolerance 10 ms)",
    });
  });

  it('fails when nothing is sent, and a `*` line waits however long it takes', () => {
    expect(run(`${LISTEN}+0.10 > S. 0:0(0) ack 1 win 65535 <mss 1460>\n`, { delayUs: 5_000_000 }).r.failure?.message).toMatch(
      /expected at 0\.100s, sent at 5\.000s/,
    );
    expect(run(`${LISTEN}+0.10 > S. 0:0(0) ack 1 win 65535 <mss 1460>\n`, { delayUs: 99_000_000 }).r.failure?.message).toMatch(
      /expected '> S\. 0:0\(0\) ack 1 win 65535 <mss 1460>' at 0\.100s, but nothing was sent/,
    );
    expect(run(`${LISTEN}*    > S. 0:0(0) ack 1 win 65535 <...>\n`, { delayUs: 5_000_000 }).r.passed).toBe(true);
  });

  it('compares flags, window and options field by field', () => {
    const { r } = run(`${LISTEN}+0.10 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>\n`, {
      delayUs: 100_000,
      window: 1000,
      options: [{ kind: 'mss', value: 1460 }, { kind: 'nop' }, { kind: 'nop' }, { kind: 'sackOK' }],
    });
    expect(r.failure?.message).toBe(
      "expected '> S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>', got 'S. 0:0(0) ack 1 win 1000 <mss 1460,nop,nop,sackOK>' " +
        '(win 1000, expected 65535; options <mss 1460,nop,nop,sackOK>, expected <mss 1460,sackOK,eol,eol>)',
    );
    const rst = run(`${LISTEN}+0.10 > S. 0:0(0) ack 1 win 65535 <mss 1460>\n`, { delayUs: 100_000, flags: FLAG.RST | FLAG.ACK });
    expect(rst.r.failure?.message).toMatch(/flags R\., expected S\./);
  });

  it('fails on a packet the script does not expect, even after its last `>` line', () => {
    const script = `${LISTEN}+0.10 > S. 0:0(0) ack 1 win 65535 <mss 1460>\n+0.50 close(3) = 0\n`;
    const reply: Reply = { delayUs: 100_000, extra: [{ afterUs: 200_000, flags: FLAG.RST, seqOffset: 1 }] };
    const trailing = run(script, reply).r;
    expect(trailing.passed).toBe(false);
    expect(trailing.failure).toEqual({
      line: 8,
      message: "unexpected packet after the last expected one: 'R 1:1(0) win 65535 <mss 1460>' at 0.300s",
    });
    // A packet in between is caught by the next line that expects one.
    const between = run(`${script}+0.00 > . 1:1(0) ack 1 win 65535\n`, reply).r;
    expect(between.failure?.message).toMatch(/^expected '> \. 1:1\(0\) ack 1 win 65535', got 'R 1:1\(0\) win 65535 <mss 1460>'/);
  });

  it("lets the final close() send its FIN unlisted only under the close-at-end relaxation", () => {
    const script = `${HANDSHAKE}+0.01 < . 1:1(0) ack 1 win 65535\n+0.00 accept(3, ..., ...) = 4\n+0.10 close(4) = 0\n`;
    const finOnClose = (host: FakeHost): void => {
      const conn = host.lastConn!;
      conn.onClose = () =>
        host.sendNow(
          encodeTcpPacket({
            src: P.localAddr,
            dst: P.remoteAddr,
            srcPort: P.bindPort,
            dstPort: P.remotePort,
            seq: OUR_ISN + 1,
            ack: P.remoteIsn + 1,
            flags: FLAG.FIN | FLAG.ACK,
            window: 65535,
            options: [],
            payload: new Uint8Array(0),
          }),
        );
    };
    const runWith = (profile: ConformanceProfile): ScriptResult => {
      const { make } = synAckHost({ delayUs: 100_000 });
      const wrapped = (c: HostConfig): FakeHost => {
        const h = make(c);
        const complete = h.completeHandshake.bind(h);
        h.completeHandshake = (t) => {
          const conn = complete(t);
          finOnClose(h);
          return conn;
        };
        return h;
      };
      return runScript(script, { createHost: wrapped, profile });
    };
    const relaxed = runWith(P);
    expect(relaxed.failure).toBeUndefined();
    expect(relaxed.relaxationsUsed).toEqual(['close-at-end']);
    expect(relaxed.notes).toEqual(["not checked, sent by the closing close(): 'F. 1:1(0) ack 1 win 65535' at 0.210s"]);
    expect(runWith(STRICT).failure?.message).toBe(
      "unexpected packet after the last expected one: 'F. 1:1(0) ack 1 win 65535' at 0.210s",
    );
  });

  it('accepts a retransmission up to rexmit_slop early only under the rto-slop relaxation', () => {
    const script = `${LISTEN}+0.10 > S. 0:0(0) ack 1 win 65535 <mss 1460>\n+1.20 > S. 0:0(0) ack 1 win 65535 <mss 1460>\n`;
    const reply: Reply = { delayUs: 100_000, extra: [{ afterUs: 1_000_000, flags: FLAG.SYN | FLAG.ACK }] };
    const relaxed = run(script, reply).r;
    expect(relaxed.passed).toBe(true);
    expect(relaxed.relaxationsUsed).toEqual(['rto-slop']);
    expect(run(script, reply, STRICT).r.failure?.message).toMatch(/expected at 1\.300s, sent at 1\.100s/);
  });
});

describe('script errors', () => {
  it('reports a parse error on its line', () => {
    const r = runScript(`${LISTEN}+0.00 < S 0:0 win 1\n`, { createHost: synAckHost({ delayUs: 0 }).make });
    expect(r.failure).toEqual({ line: 7, message: "parse error: expected '(' at 'win 1'" });
  });
});

describe('system calls and the socket layer', () => {

  it('lets a blocking accept() return when the connection arrives, at its `...end` time', () => {
    const script = `${LISTEN} 0.05...0.30 accept(3, ..., ...) = 4\n 0.10 > S. 0:0(0) ack 1 win 65535 <mss 1460>\n 0.30 < . 1:1(0) ack 1 win 65535\n 0.40 close(4) = 0\n`;
    const { r, host } = run(script, { delayUs: 100_000 });
    expect(r.failure).toBeUndefined();
    expect(host.lastConn?.closedAt).toBe(400_000);
    const early = run(script.replace('0.05...0.30', '0.05...0.20'), { delayUs: 100_000 }).r;
    expect(early.failure).toEqual({ line: 7, message: 'accept() returned at 0.300s, expected at 0.200s (tolerance 10 ms)' });
  });

  it('gives EAGAIN on a non-blocking accept() and checks return values', () => {
    const script = `${LISTEN.replace('+0.00 bind', '+0.00 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0\n+0.00 bind')}+0.00 accept(3, ..., ...) = -1 EWOULDBLOCK (Operation would block)\n+0.00 fcntl(3, F_GETFL) = 0x06\n`;
    expect(run(script, { delayUs: 0 }).r.failure).toBeUndefined();
    const wrong = run(script.replace('= 0x06', '= 0x02'), { delayUs: 0 }).r;
    expect(wrong.failure?.message).toBe('fcntl() returned 6, expected 2');
  });

  it('reports a call that never returns', () => {
    const r = run(`${LISTEN}+0.00 accept(3, ..., ...) = 4\n`, { delayUs: 0 }).r;
    expect(r.failure).toEqual({ line: 7, message: 'accept() never returned' });
  });

  it('answers sockstat, tcpi_state and SO_RCVBUF the way FreeBSD would', () => {
    const ok = `${HANDSHAKE}+0.00 getsockopt(3, SOL_SOCKET, SO_RCVBUF, [65536], [4]) = 0
+0.00 \`sockstat -4 -P tcp -p 8080 -s | grep -c LISTEN | grep 1\`
+0.00 %{ assert tcpi_state == TCPI_LISTEN }%
+0.01 < . 1:1(0) ack 1 win 65535
+0.00 accept(3, ..., ...) = 4
+0.00 getsockopt(4, SOL_SOCKET, SO_RCVBUF, [65700], [4]) = 0
+0.00 %{ assert tcpi_state == TCPI_ESTABLISHED }%
`;
    expect(run(ok, { delayUs: 100_000 }).r.failure).toBeUndefined();
    const badCount = run(ok.replace('grep 1`', 'grep 2`'), { delayUs: 100_000 }).r;
    expect(badCount.failure?.message).toBe('sockstat: 1 socket(s) in LISTEN, expected 2');
    const badState = run(ok.replace('TCPI_ESTABLISHED', 'TCPI_CLOSE_WAIT'), { delayUs: 100_000 }).r;
    expect(badState.failure?.message).toBe('assert tcpi_state == TCPI_CLOSE_WAIT, but tcpi_state is TCPI_ESTABLISHED');
  });

  it('answers poll() with the ready events, and blocks it until its timeout', () => {
    const accepted = `${HANDSHAKE}+0.01 < . 1:1(0) ack 1 win 65535\n+0.00 accept(3, ..., ...) = 4\n`;
    const ready = `${accepted}+0.00 poll([{fd=4, events=POLLIN|POLLOUT, revents=POLLOUT}], 1, 0) = 1\n`;
    expect(run(ready, { delayUs: 100_000 }).r.failure).toBeUndefined();
    const wrong = run(ready.replace('revents=POLLOUT', 'revents=POLLIN'), { delayUs: 100_000 }).r;
    expect(wrong.failure?.message).toBe('poll() revents for fd 4: POLLOUT, expected POLLIN');
    const timeout = `${accepted}+0.00...+0.25 poll([{fd=4, events=POLLIN}], 1, 250) = 0\n`;
    expect(run(timeout, { delayUs: 100_000 }).r.failure).toBeUndefined();
    const later = `${timeout.replace('...+0.25', '...+0.10')}+0.40 \`sysctl -w net.inet.tcp.sack.enable=1\`\n`;
    const early = run(later, { delayUs: 100_000 }).r;
    expect(early.failure?.message).toMatch(/^poll\(\) returned at 0\.360s, expected at 0\.210s/);
  });

  it('builds the host from the sysctls set before the first socket', () => {
    const { host } = run(
      ` 0.00 \`sysctl -w net.inet.tcp.rfc1323=0\`\n+0.00 \`sysctl -w net.inet.tcp.delacktime=40\`\n+0.00 \`sysctl -w kern.ipc.maxsockbuf=73728\`\n${LISTEN}`,
      { delayUs: 0 },
    );
    expect(host.config.tcp).toMatchObject({ windowScale: null, timestamps: false, delayedAckUs: 40_000, rcvBuf: 65700 });
    expect(host.config.addresses).toEqual([P.localAddr]);
    const scaled = run(` 0.00 \`sysctl -w kern.ipc.maxsockbuf=73728\`\n${LISTEN}`, { delayUs: 0 }).host;
    expect(scaled.config.tcp.windowScale).toBe(1);
  });
});
