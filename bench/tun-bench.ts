// Packets per second through the tun read path. A lab is built (client and primary namespaces),
// a tun device opened in the primary namespace with the VIP routed into it, and the client floods
// UDP at the VIP from a Python sender for a few seconds. We count what arrives and how many packets
// each wake-up brought.
//
//   npx tsx bench/tun-bench.ts [--mode device|fsread|socket] [--seconds 5] [--size 64] [--qlen 1000] [--rate PPS (0: as fast as possible)]
//
// Modes: `device` is openTun (poll on the thread pool, then drain with non-blocking reads);
// `fsread` is one fs.read per packet on a blocking fd (the approach section 4 of ARCHITECTURE.md
// measured at ~35 k packets/s); `socket` tries net.Socket({ fd }) on the tun fd.

import { read } from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { createLab } from '../scripts/lab.js';
import { enableProxyArp } from '../src/tun/arp.js';
import { addRoute } from '../src/tun/route.js';
import { createTunFd, openTun } from '../src/tun/tun-device.js';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'device' },
    seconds: { type: 'string', default: '5' },
    size: { type: 'string', default: '64' },
    qlen: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '0' },
  },
});
const mode = values.mode!;
const seconds = Number(values.seconds);
const size = Number(values.size);
const txQueueLen = Number(values.qlen);
const rate = Number(values.rate);

// Sends UDP datagrams for a while, as fast as it can or paced to a rate, and prints how many.
const SENDER = String.raw`
import socket, sys, time
dst, seconds, size, rate = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
payload = b'x' * size
n = 0
t0 = time.time()
end = t0 + seconds
burst = 64
while True:
    for _ in range(burst):
        try:
            s.sendto(payload, (dst, 9))
            n += 1
        except OSError:
            pass
    now = time.time()
    if now >= end:
        break
    if rate > 0:
        ahead = n / rate - (now - t0)
        if ahead > 0:
            time.sleep(ahead)
print(n, time.time() - t0)
`;

interface Counter {
  packets: number;
  batches: number;
  first: number;
  last: number;
}

function onPackets(c: Counter, n: number): void {
  const now = performance.now();
  if (c.first === 0) c.first = now;
  c.last = now;
  c.packets += n;
  c.batches++;
}

const lab = await createLab();
let exitCode = 0;
try {
  const netns = lab.ns.primary;
  const counter: Counter = { packets: 0, batches: 0, first: 0, last: 0 };
  let stop: () => void = () => undefined;
  let tunName: string;

  if (mode === 'device') {
    const tun = await openTun({ name: 'tun0', mtu: 1500, netns, txQueueLen });
    tunName = tun.name;
    tun.onReceive((batch) => onPackets(counter, batch.length));
    stop = () => tun.close();
  } else if (mode === 'fsread') {
    const { fd, name } = createTunFd({ name: 'tun0', mtu: 1500, netns, txQueueLen }, false);
    tunName = name;
    const buf = Buffer.alloc(1501);
    let running = true;
    const loop = (): void => {
      read(fd, buf, 0, buf.length, null, (err, n) => {
        if (err || !running) return;
        if (n > 0) onPackets(counter, 1);
        loop();
      });
    };
    loop();
    stop = () => {
      running = false;
    };
  } else if (mode === 'socket') {
    const { fd, name } = createTunFd({ name: 'tun0', mtu: 1500, netns, txQueueLen }, true);
    tunName = name;
    try {
      const sock = new net.Socket({ fd, readable: true });
      sock.on('data', (d: Buffer) => onPackets(counter, 1 + 0 * d.length));
      stop = () => sock.destroy();
    } catch (e) {
      console.log(`net.Socket({ fd }) on a tun fd: ${(e as Error).message}`);
      throw e;
    }
  } else {
    throw new Error(`unknown mode ${mode}`);
  }

  await addRoute(lab.addr.vip, tunName, { netns });
  await enableProxyArp(lab.addr.vip, lab.lanIface, { netns });
  // Resolve the VIP's MAC before the flood so the first packets do not wait in the ARP queue.
  await lab.exec('client', 'ping', ['-c', '1', '-W', '1', lab.addr.vip], { allowFailure: true });
  const before = { ...counter };
  counter.first = 0;
  counter.last = 0;
  const cpu0 = process.cpuUsage();

  const r = await lab.exec('client', 'python3', ['-c', SENDER, lab.addr.vip, String(seconds), String(size), String(rate)], {
    timeoutMs: (seconds + 30) * 1000,
  });
  await new Promise((res) => setTimeout(res, 300));
  const cpu = process.cpuUsage(cpu0);
  // Packets the kernel dropped because our reader fell behind: the tun's transmit queue overflowed.
  const linkJson = (await lab.exec('primary', 'ip', ['-s', '-j', 'link', 'show', tunName])).stdout;
  const tunTxDropped = (JSON.parse(linkJson) as Array<{ stats64?: { tx?: { dropped?: number } } }>)[0]?.stats64?.tx?.dropped ?? -1;
  stop();

  const [sentStr, senderSecondsStr] = r.stdout.trim().split(/\s+/);
  const sent = Number(sentStr);
  const senderSeconds = Number(senderSecondsStr);
  const received = counter.packets - before.packets;
  const batches = counter.batches - before.batches;
  const elapsed = (counter.last - counter.first) / 1000;
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const row = {
    mode,
    udpPayload: size,
    txQueueLen,
    targetPps: rate || 'max',
    sent,
    senderPps: Math.round(sent / senderSeconds),
    received,
    receivedPct: +((100 * received) / sent).toFixed(1),
    rxPps: Math.round(received / elapsed),
    packetsPerWake: +(received / Math.max(1, batches)).toFixed(2),
    tunQueueDrops: tunTxDropped,
    cpuUsPerPacket: +((cpuSeconds * 1e6) / Math.max(1, received)).toFixed(2),
  };
  console.log(JSON.stringify(row));
} catch (e) {
  console.error(e instanceof Error ? e.message : e);
  exitCode = 1;
} finally {
  await lab.destroy();
}
// A blocked fs.read on the thread pool would keep the process alive; the lab is gone, so leave.
process.exit(exitCode);
