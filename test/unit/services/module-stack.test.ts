// The module suite again over our own stack: a client stack and a server stack joined by an
// in-memory link, so the Express-style app and the connection handler run on our sockets.

import { moduleSuite } from './module-suite.js';
import { serveOnOurStack } from './our-stack-transport.js';

moduleSuite('module over our stack on a memory link', { start: serveOnOurStack });
