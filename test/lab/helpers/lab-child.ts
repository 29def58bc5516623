// A process that builds a lab, prints its id and namespaces as one JSON line, then idles or exits,
// so the lab tests can check that labs vanish when their process is signalled or exits.
//   node --import tsx lab-child.ts idle|exit

import { createLab } from '../../../scripts/lab.js';

const mode = process.argv[2] ?? 'idle';
const lab = await createLab({ withBackup: true });
const sleeper = lab.spawn('client', 'sleep', ['300'], { stdio: 'ignore' });
process.stdout.write(`${JSON.stringify({ id: lab.id, ns: lab.ns, sleeperPid: sleeper.pid })}\n`);
if (mode === 'exit') process.exit(0);
setInterval(() => undefined, 1000);
