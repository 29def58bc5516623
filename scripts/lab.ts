// The lab: network namespaces standing in for client, primary and backup hosts (see
// scripts/lab/lab.ts). As a library: createLab(). As a command:
//   npx tsx scripts/lab.ts up [--backup] [--repl]   build a lab that outlives the command
//   npx tsx scripts/lab.ts list                     show labs (ours: namespaces named us-*)
//   npx tsx scripts/lab.ts down <id>                remove one lab
//   npx tsx scripts/lab.ts down --all [--force]     remove abandoned labs (--force: also live ones)

import { Command } from 'commander';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { assertLabPrerequisites, createLab } from './lab/lab.js';
import { listLabs, removeLab, sweepLabs } from './lab/sweep.js';

export { assertLabPrerequisites, createLab, LAB_ADDR, LAN_IFACE, REPL_IFACE } from './lab/lab.js';
export type { Lab, LabExecOptions, LabNode, LabOptions, LabSpawnOptions } from './lab/lab.js';
export { listLabs, removeLab, sweepLabs, type LabListing } from './lab/sweep.js';

function main(argv: string[]): Promise<void> {
  const program = new Command('lab').description('network-namespace lab for understudy');
  program
    .command('up')
    .description('build a lab that stays until `lab down`')
    .option('--backup', 'add the backup namespace')
    .option('--repl', 'add a primary-backup replication link (implies --backup)')
    .option('--json', 'print the lab description as JSON')
    .action(async (o: { backup?: boolean; repl?: boolean; json?: boolean }) => {
      const lab = await createLab({ withBackup: o.backup === true, replicationLink: o.repl === true, persistent: true });
      const info = { id: lab.id, ns: lab.ns, addr: lab.addr, lanIface: lab.lanIface, replIface: lab.replIface };
      if (o.json) {
        console.log(JSON.stringify(info, null, 2));
        return;
      }
      console.log(`lab ${lab.id}`);
      for (const [node, ns] of Object.entries(lab.ns)) console.log(`  ${node.padEnd(8)} ${ns}`);
      console.log(`  client ${lab.addr.client}, primary ${lab.addr.primary}` + (lab.ns.backup ? `, backup ${lab.addr.backup}` : '') + `, VIP ${lab.addr.vip}`);
      console.log(`  e.g. ip netns exec ${lab.ns.client} ping ${lab.addr.primary}`);
      console.log(`  remove with: npx tsx scripts/lab.ts down ${lab.id}`);
    });
  program
    .command('list')
    .description('list labs')
    .action(() => {
      const labs = listLabs();
      if (labs.length === 0) console.log('no labs');
      for (const l of labs) {
        const owner = l.ownerPid === 0 ? 'persistent' : `pid ${l.ownerPid} ${l.ownerAlive ? 'running' : 'gone'}`;
        console.log(`${l.id}  (${owner})  ${Object.values(l.namespaces).join(' ')}`);
      }
    });
  program
    .command('down')
    .description('remove a lab, or abandoned labs with --all')
    .argument('[id]', 'lab id as printed by `up` or `list`')
    .option('--all', 'remove every lab whose creator is gone (and every persistent one)')
    .option('--force', 'with --all: also labs of running processes')
    .action((id: string | undefined, o: { all?: boolean; force?: boolean }) => {
      assertLabPrerequisites();
      let removed: string[];
      if (o.all) removed = sweepLabs(o.force === true);
      else if (id) removed = removeLab(id);
      else throw new Error('lab down: give a lab id or --all');
      console.log(removed.length === 0 ? 'nothing to remove' : `removed ${removed.join(' ')}`);
    });
  return program.parseAsync(argv).then(() => undefined);
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv).catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  });
}
