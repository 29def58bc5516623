// The proxy suite again with the client side on our own stack: a client stack and a server stack
// joined by an in-memory link, the proxy on the server stack, and a Linux TCP backend on loopback.
// Half-close and resets cross our TCP implementation here, not the kernel's.

import { serveOnOurStack } from './our-stack-transport.js';
import { proxySuite } from './proxy-suite.js';

proxySuite('proxy over our stack on a memory link', { start: serveOnOurStack });
