// Where the bench runs: normally a fresh lab from scripts/lab.ts (client and primary namespaces on
// a bridge), or namespaces that already exist (--client-ns/--server-ns/--server-ip/--vip), which
// is handy while developing.

import { createLab } from '../scripts/lab.js';
import { inNs, run } from './proc.js';

export interface BenchLab {
  clientNs: string;
  serverNs: string;
  /** The primary's own address: the Linux baseline listens here. */
  serverIp: string;
  /** The VIP routed into understudy's TUN in the server namespace. */
  vip: string;
  /** The server namespace's LAN interface, where understudy answers ARP for the VIP. */
  lanIface: string | undefined;
  describe: string;
  destroy(): Promise<void>;
}

export async function openBenchLab(f: Map<string, string>): Promise<BenchLab> {
  const clientNs = f.get('client-ns');
  if (clientNs !== undefined) {
    const serverNs = f.get('server-ns');
    const serverIp = f.get('server-ip');
    const vip = f.get('vip');
    if (serverNs === undefined || serverIp === undefined || vip === undefined)
      throw new Error('--client-ns needs --server-ns, --server-ip and --vip');
    return {
      clientNs,
      serverNs,
      serverIp,
      vip,
      lanIface: f.get('lan'),
      describe: `existing namespaces ${clientNs} -> ${serverNs}`,
      destroy: async () => undefined,
    };
  }
  const lab = await createLab();
  return {
    clientNs: lab.ns.client,
    serverNs: lab.ns.primary,
    serverIp: lab.addr.primary,
    vip: lab.addr.vip,
    lanIface: lab.lanIface,
    describe: `scripts/lab.ts ${lab.id}: client ${lab.addr.client} -> bridge -> primary (veth, MTU 1500)`,
    destroy: () => lab.destroy(),
  };
}

/**
 * Client-side sysctls for connection-rate runs: every closed connection leaves a TIME-WAIT entry
 * on the client (it closes first), so widen the port range and let connect() reuse them.
 */
export async function prepareClient(lab: BenchLab): Promise<void> {
  const r = await run(
    inNs(lab.clientNs, ['sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=1024 65535', 'net.ipv4.tcp_tw_reuse=1']),
    { timeoutMs: 10_000 },
  );
  if (r.code !== 0) throw new Error(`sysctl in ${lab.clientNs} failed: ${r.stderr}`);
}
