// Entry point run by bin/understudy.js. Exits explicitly: a stopped node may still hold a thread
// pool poll on the tun fd for a moment, and the exit code must not wait for it.

import { runCli } from './program.js';

const code = await runCli(process.argv.slice(2));
process.exit(code);
