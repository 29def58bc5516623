// The FreeBSD packetdrill suite against our stack: the secure-policy pass count must not drop
// below the figure recorded in conformance-baseline.json (raise the baseline when it improves:
// `npm run conformance -- --write-baseline`).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { icmpTypeCode } from '../../src/conformance/icmp-names.js';
import { decodePacket, encodeIcmpError, encodeTcpPacket } from '../../src/conformance/packet-codec.js';
import { checkSysctls, isInsecureScript, tcpConfigFor, windowScaleFor } from '../../src/conformance/profile.js';
import { runScript } from '../../src/conformance/runner.js';
import { defaultSuiteDir, readBaseline, runSuite } from '../../src/conformance/suite.js';
import { createHost } from '../../src/stack/host.js';

describe('the FreeBSD suite on our stack', () => {
  const report = runSuite({ createHost });
  const baseline = readBaseline();

  it('passes at least as many secure-policy scripts as the baseline records', () => {
    const failing = report.outcomes
      .filter((o) => !o.passed && !o.insecure)
      .map((o) => `${o.script}: line ${o.failure?.line}: ${o.failure?.message}`);
    expect(report.secure.total).toBe(baseline.secureTotal);
    expect(report.secure.passed, `failing:\n${failing.join('\n')}`).toBeGreaterThanOrEqual(baseline.securePassed);
  });

  it('does not lose a directory it used to pass', () => {
    for (const [group, t] of Object.entries(baseline.groups))
      expect(report.groups[group]?.passed ?? 0, group).toBeGreaterThanOrEqual(t.passed);
  });

  it('reports the insecure (RFC 793) scripts apart from the secure total', () => {
    expect(report.insecure.total).toBe(112);
    expect(report.secure.total + report.insecure.total).toBe(567);
    expect(report.outcomes.filter((o) => o.insecure).every((o) => o.script.includes('insecure'))).toBe(true);
  });
});

describe('one script on our stack', () => {
  const file = path.join(defaultSuiteDir(), 'rcv-data-segments/overlapping-050-075.pkt');
  const text = readFileSync(file, 'utf8');

  it('passes as written, and fails on the line whose expectation is changed', () => {
    expect(runScript(text, { createHost }).failure).toBeUndefined();
    const lines = text.split('\n');
    const n = lines.findIndex((l) => l.includes('ack 800 win 64901'));
    lines[n] = lines[n]!.replace('win 64901', 'win 64900');
    const r = runScript(lines.join('\n'), { createHost });
    expect(r.failure?.line).toBe(n + 1);
    expect(r.failure?.message).toMatch(/got '\. 1:1\(0\) ack 800 win 64901 <nop,nop,sack 1:100>' \(win 64901, expected 64900\)/);
  });
});

describe('profile', () => {
  it("picks FreeBSD's window scale from kern.ipc.maxsockbuf", () => {
    expect(windowScaleFor(2097152)).toBe(6);
    expect(windowScaleFor(73728)).toBe(1);
    expect(windowScaleFor(4294967295)).toBe(14);
    expect(windowScaleFor(65535)).toBe(0);
  });

  it('maps the sysctls onto TcpConfig', () => {
    const defaults = tcpConfigFor(new Map(), 1500);
    expect(defaults).toMatchObject({ mss: 1460, windowScale: 6, sack: true, timestamps: true, rcvBuf: 65700, sndBuf: 32768 });
    expect(defaults.optionLayout).toBe('freebsd');
    const set = tcpConfigFor(
      new Map([
        ['net.inet.tcp.rfc1323', '0'],
        ['net.inet.tcp.sack.enable', '0'],
        ['net.inet.tcp.delacktime', '40'],
        ['net.inet.tcp.rexmit_initial', '1000'],
      ]),
      72,
    );
    expect(set).toMatchObject({ mss: 32, windowScale: null, timestamps: false, sack: false, delayedAckUs: 40_000, initialRtoUs: 1_000_000 });
    expect(tcpConfigFor(new Map(), 1500, { noOptions: true })).toMatchObject({
      noOptions: true,
      windowScale: null,
      sack: false,
      timestamps: false,
    });
    const switches = tcpConfigFor(
      new Map([
        ['net.inet.tcp.drop_synfin', '1'],
        ['net.inet.tcp.rexmit_drop_options', '1'],
        ['net.inet.tcp.tolerate_missing_ts', '0'],
        ['net.inet.tcp.icmp_may_rst', '0'],
      ]),
      1500,
    );
    expect(switches).toMatchObject({
      dropSynFin: true,
      dropSynOptionsAfterRetries: 3,
      tolerateMissingTimestamps: false,
      icmpMayReset: false,
    });
    expect(tcpConfigFor(new Map(), 1500).dropSynFin).toBeUndefined();
  });

  it('names sysctls our stack cannot follow', () => {
    const r = checkSysctls(
      new Map([
        ['net.inet.tcp.insecure_rst', '1'],
        ['net.inet.tcp.insecure_syn', '0'],
        ['net.inet.tcp.ecn.enable', '2'],
        ['net.inet.tcp.drop_synfin', '1'],
        ['net.inet.tcp.frob', '3'],
      ]),
    );
    expect(r.unsupported).toHaveLength(1);
    expect(r.unsupported[0]).toMatch(/^net\.inet\.tcp\.insecure_rst=1 \(ours: 0; /);
    expect(r.unknown).toEqual(['net.inet.tcp.frob=3']);
  });

  it("knows packetdrill's ICMP names", () => {
    expect(icmpTypeCode('unreachable', 'port_unreachable')).toEqual({ type: 3, code: 3 });
    expect(icmpTypeCode('unreachable', 'frag_needed')).toEqual({ type: 3, code: 4 });
    expect(icmpTypeCode('parameter_problem', 'code_2')).toEqual({ type: 12, code: 2 });
    expect(icmpTypeCode('source_quench', undefined)).toEqual({ type: 4, code: 0 });
    expect(icmpTypeCode('unreachable', 'bogus')).toBe("unknown ICMP code 'bogus'");
  });

  it('classifies insecure scripts by name', () => {
    expect(isInsecureScript('state-event-engine/rcv-rst-syn-rcvd/rcv-rst-syn-rcvd-via-listen-outside-left-insecure-ipv4.pkt')).toBe(true);
    expect(isInsecureScript('state-event-engine/rcv-syn-fin-time-wait/x-outside-left-insecure-nodrop-ipv4.pkt')).toBe(true);
    expect(isInsecureScript('state-event-engine/rcv-rst-syn-rcvd/rcv-rst-syn-rcvd-via-listen-outside-left-secure-ipv4.pkt')).toBe(false);
  });
});

describe('packet codec', () => {
  it('round-trips a TCP segment with the option bytes exactly as written', () => {
    const bytes = encodeTcpPacket({
      src: 0xc0000201,
      dst: 0xc0a80001,
      srcPort: 40000,
      dstPort: 8080,
      seq: 0xfffffff0,
      ack: 5,
      flags: 0x12,
      window: 65535,
      options: [{ kind: 'mss', value: 1460 }, { kind: 'nop' }, { kind: 'wscale', value: 6 }, { kind: 'sackOK' }, { kind: 'TS', val: 7, ecr: 9 }],
      payload: new Uint8Array([1, 2, 3]),
    });
    const p = decodePacket(bytes);
    expect(p.ipChecksumOk).toBe(true);
    expect(p.tcp).toMatchObject({ srcPort: 40000, dstPort: 8080, seq: 0xfffffff0, ack: 5, flags: 0x12, window: 65535, checksumOk: true });
    expect(p.tcp!.options.map((o) => o.kind)).toEqual(['mss', 'nop', 'wscale', 'sackOK', 'TS']);
    expect([...p.tcp!.payload]).toEqual([1, 2, 3]);
    bytes[bytes.length - 1] ^= 1;
    expect(decodePacket(bytes).tcp!.checksumOk).toBe(false);
  });

  it('quotes our own segment in an ICMP error', () => {
    const b = encodeIcmpError({
      src: 1,
      dst: 2,
      type: 3,
      code: 4,
      mtu: 1234,
      quoted: { src: 2, dst: 1, srcPort: 8080, dstPort: 40000, seq: 99 },
    });
    const p = decodePacket(b);
    expect(p.icmp).toEqual({ type: 3, code: 4 });
    const dv = new DataView(b.buffer);
    expect(dv.getUint16(26)).toBe(1234);
    expect(dv.getUint32(28 + 12)).toBe(2); // quoted source: us
    expect(dv.getUint32(48 + 4)).toBe(99); // quoted sequence number
  });
});
