import { httpStaticSuite } from './http-static-suite.js';
import { serveOnLoopback } from './helpers.js';

httpStaticSuite('http-static over loopback', {
  async start(service) {
    const lo = await serveOnLoopback(service);
    return { connect: () => lo.connect(), close: () => lo.close() };
  },
});
