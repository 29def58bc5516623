// The http-static suite again, this time over our own stack: a server stack and a client stack
// joined by an in-memory link, so every byte crosses our TCP implementation both ways.

import { httpStaticSuite } from './http-static-suite.js';
import { serveOnOurStack } from './our-stack-transport.js';

httpStaticSuite('http-static over our stack on a memory link', { start: serveOnOurStack });
