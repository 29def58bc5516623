// The tun read/write path end to end: a tun device inside the primary namespace, the VIP routed
// into it and proxy-ARPed on the LAN, Linux ping on the client, and echo replies written by hand
// here. Then a takeover announcement: the backup's gratuitous ARP moves the client's neighbour
// entry for the VIP to the backup's MAC.

import { describe, expect, it } from 'vitest';
import { disableProxyArp, enableProxyArp, sendGratuitousArp, gratuitousArpFrame } from '../../src/tun/arp.js';
import { addRoute, removeRoute } from '../../src/tun/route.js';
import { openTun, type TunDevice } from '../../src/tun/tun-device.js';
import { useLab } from './helpers/lab-fixture.js';

function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length % 2 === 1) sum += bytes[bytes.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

const dotted = (b: Uint8Array, at: number): string => Array.from(b.subarray(at, at + 4)).join('.');

/** An ICMP echo reply for an echo request, or undefined if the packet is not one. */
function echoReply(req: Uint8Array): Uint8Array | undefined {
  const ihl = (req[0]! & 0x0f) * 4;
  if (req[0]! >> 4 !== 4 || req[9] !== 1 || req[ihl] !== 8) return undefined;
  const totalLen = (req[2]! << 8) | req[3]!;
  const rep = new Uint8Array(req.subarray(0, totalLen)); // a copy, even if req is a Buffer
  rep.set(req.subarray(16, 20), 12); // source <- old destination
  rep.set(req.subarray(12, 16), 16); // destination <- old source
  rep[8] = 64; // TTL
  rep[10] = rep[11] = 0;
  const ipSum = checksum(rep.subarray(0, ihl));
  rep[10] = ipSum >> 8;
  rep[11] = ipSum & 0xff;
  rep[ihl] = 0; // echo reply
  rep[ihl + 2] = rep[ihl + 3] = 0;
  const icmpSum = checksum(rep.subarray(ihl));
  rep[ihl + 2] = icmpSum >> 8;
  rep[ihl + 3] = icmpSum & 0xff;
  return rep;
}

describe('tun device in the lab', () => {
  const lab = useLab({ withBackup: true });

  it('checks the hand-written reply against a known ICMP checksum', () => {
    // RFC 1071-style sanity: a header whose checksum field is filled sums to zero.
    const req = Uint8Array.from([
      0x45, 0, 0, 28, 0, 1, 0x40, 0, 64, 1, 0, 0, 198, 18, 0, 10, 198, 18, 0, 100, 8, 0, 0, 0, 0x12, 0x34, 0, 1,
    ]);
    const hs = checksum(req.subarray(0, 20));
    req[10] = hs >> 8;
    req[11] = hs & 0xff;
    const is = checksum(req.subarray(20));
    req[22] = is >> 8;
    req[23] = is & 0xff;
    const rep = echoReply(req)!;
    expect(checksum(rep.subarray(0, 20))).toBe(0);
    expect(checksum(rep.subarray(20))).toBe(0);
    expect(dotted(rep, 12)).toBe('198.18.0.100');
    expect(dotted(rep, 16)).toBe('198.18.0.10');
    expect(rep[20]).toBe(0);
  });

  it('carries pings to the VIP into the tun and our replies back to the client', async () => {
    const l = lab();
    const netns = l.ns.primary;
    const tun: TunDevice = await openTun({ name: 'tun0', mtu: 1500, netns });
    try {
      expect(tun.name).toBe('tun0');
      const link = await l.exec('primary', 'ip', ['-o', 'link', 'show', 'tun0']);
      expect(link.stdout).toMatch(/mtu 1500/);
      expect(link.stdout).toMatch(/UP/);

      await addRoute(l.addr.vip, 'tun0', { netns });
      await enableProxyArp(l.addr.vip, l.lanIface, { netns });
      const proxies = await l.exec('primary', 'ip', ['neigh', 'show', 'proxy']);
      expect(proxies.stdout).toContain(l.addr.vip);

      const requests: Uint8Array[] = [];
      tun.onReceive((batch) => {
        const replies: Uint8Array[] = [];
        for (const p of batch) {
          const rep = echoReply(p);
          if (rep) {
            requests.push(p);
            replies.push(rep);
          }
        }
        tun.send(replies);
      });

      const r = await l.exec('client', 'ping', ['-c', '3', '-i', '0.2', '-W', '2', l.addr.vip]);
      expect(r.stdout).toMatch(/3 received/);
      expect(requests.length).toBeGreaterThanOrEqual(3);
      expect(dotted(requests[0]!, 12)).toBe(l.addr.client);
      expect(dotted(requests[0]!, 16)).toBe(l.addr.vip);
      // Each packet is its own buffer: the echo sequence numbers kept from the batches differ.
      const seqs = requests.map((p) => (p[26]! << 8) | p[27]!);
      expect(new Set(seqs).size).toBe(requests.length);
      expect(tun.stats.rxPackets).toBeGreaterThanOrEqual(3);
      expect(tun.stats.txPackets).toBeGreaterThanOrEqual(3);
      expect(tun.stats.txDropped).toBe(0);

      // A payload that fills the MTU exactly goes through too (1472 + 8 ICMP + 20 IP = 1500).
      const big = await l.exec('client', 'ping', ['-c', '1', '-W', '2', '-M', 'do', '-s', '1472', l.addr.vip]);
      expect(big.stdout).toMatch(/1 received/);

      // The client learned the VIP at the primary's MAC, through proxy ARP.
      const neigh = await l.exec('client', 'ip', ['neigh', 'show', l.addr.vip]);
      expect(neigh.stdout).toContain(await l.macOf('primary'));

      await disableProxyArp(l.addr.vip, l.lanIface, { netns });
      expect((await l.exec('primary', 'ip', ['neigh', 'show', 'proxy'])).stdout).not.toContain(l.addr.vip);
      await removeRoute(l.addr.vip, 'tun0', { netns });
      expect((await l.exec('primary', 'ip', ['route', 'show', `${l.addr.vip}/32`])).stdout.trim()).toBe('');
      await removeRoute(l.addr.vip, 'tun0', { netns }); // already gone: not an error
    } finally {
      tun.close();
      await tun.closed;
    }
    const gone = await l.exec('primary', 'ip', ['link', 'show', 'tun0'], { allowFailure: true });
    expect(gone.code).not.toBe(0);
  });

  it('drops oversize packets on send and counts them', async () => {
    const l = lab();
    const tun = await openTun({ name: 'tun1', mtu: 1280, netns: l.ns.primary });
    try {
      tun.send([new Uint8Array(1281)]);
      expect(tun.stats.txDropped).toBe(1);
      expect(tun.stats.txPackets).toBe(0);
    } finally {
      tun.close();
      await tun.closed;
    }
  });

  it('frees the interface on close, so the same name can be opened again', async () => {
    const l = lab();
    const netns = l.ns.primary;
    const first = await openTun({ name: 'tun2', netns });
    first.onReceive(() => undefined); // a poll is now parked on the thread pool
    first.close();
    first.close(); // idempotent
    await first.closed;
    const again = await openTun({ name: 'tun2', netns });
    expect(again.name).toBe('tun2');
    again.close();
    await again.closed;
  });

  it('reports a deleted interface through onError and closes itself', async () => {
    const l = lab();
    const tun = await openTun({ name: 'tun3', netns: l.ns.primary });
    tun.onReceive(() => undefined);
    const failed = new Promise<Error>((resolve) => tun.onError(resolve));
    await l.exec('primary', 'ip', ['link', 'del', 'tun3']);
    const err = await failed;
    expect(err.message).toMatch(/tun3/);
    await tun.closed;
    tun.send([new Uint8Array(20)]);
    expect(tun.stats.txDropped).toBe(1);
  });

  it('moves the client to the backup with a gratuitous ARP', async () => {
    const l = lab();
    // The client needs an entry for the VIP first: Linux only updates entries from gratuitous ARP.
    await l.exec('client', 'ip', ['neigh', 'replace', l.addr.vip, 'lladdr', await l.macOf('primary'), 'dev', l.lanIface, 'nud', 'stale']);
    const backupMac = await l.macOf('backup');
    await sendGratuitousArp(l.addr.vip, l.lanIface, 2, { netns: l.netns('backup'), intervalMs: 50 });
    const neigh = await l.exec('client', 'ip', ['neigh', 'show', l.addr.vip]);
    expect(neigh.stdout).toContain(backupMac);
  });

  it('builds the gratuitous ARP frame as an RFC 5227 announcement', () => {
    const mac = Uint8Array.from([2, 0, 0, 0, 0, 1]);
    const f = gratuitousArpFrame('198.18.0.100', mac);
    expect(Array.from(f.subarray(0, 6))).toEqual([255, 255, 255, 255, 255, 255]);
    expect(Array.from(f.subarray(12, 14))).toEqual([0x08, 0x06]);
    expect(Array.from(f.subarray(20, 22))).toEqual([0, 1]);
    expect(Array.from(f.subarray(22, 28))).toEqual(Array.from(mac));
    expect(dotted(f, 28)).toBe('198.18.0.100');
    expect(Array.from(f.subarray(32, 38))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(dotted(f, 38)).toBe('198.18.0.100');
  });
});
