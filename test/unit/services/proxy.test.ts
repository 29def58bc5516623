// proxy over kernel loopback: a Node net client, the proxy service behind a Node net server, and
// a Node net backend — every hop is Linux TCP, so failures here are the proxy's own.

import { readServiceSpec, ServiceSpecError } from '../../../src/services/spec.js';
import { describe, expect, it } from 'vitest';
import { serveOnLoopback } from './helpers.js';
import { proxySuite } from './proxy-suite.js';

proxySuite('proxy over loopback', {
  async start(service) {
    const lo = await serveOnLoopback(service);
    return { connect: () => lo.connect(), close: () => lo.close() };
  },
});

describe('proxy specs', () => {
  it('reads an IPv4 backend, and pins localhost to 127.0.0.1', () => {
    expect(readServiceSpec('proxy:127.0.0.1:8080')).toEqual({ kind: 'proxy', host: '127.0.0.1', port: 8080 });
    expect(readServiceSpec('proxy:localhost:6379')).toEqual({ kind: 'proxy', host: '127.0.0.1', port: 6379 });
    expect(readServiceSpec('proxy:010.0.0.1:1')).toEqual({ kind: 'proxy', host: '10.0.0.1', port: 1 });
  });

  it.each([
    ['proxy', /needs a backend: proxy:<host>:<port>/],
    ['proxy:', /needs a backend/],
    ['proxy:127.0.0.1', /"127\.0\.0\.1" is not <host>:<port>/],
    ['proxy:example.com:80', /host "example\.com" must be an IPv4 address/],
    ['proxy:[::1]:80', /must be an IPv4 address/],
    ['proxy:1.2.3:80', /host "1\.2\.3" must be an IPv4 address/],
    ['proxy:0.0.0.0:80', /not a unicast address/],
    ['proxy:224.0.0.1:80', /not a unicast address/],
    ['proxy:127.0.0.1:0', /port "0" must be a number from 1 to 65535/],
    ['proxy:127.0.0.1:65536', /port "65536"/],
    ['proxy:127.0.0.1:http', /port "http"/],
    ['proxy:127.0.0.1:', /port "" must be/],
  ])('rejects %j with a clear message', (spec, message) => {
    expect(() => readServiceSpec(spec)).toThrow(ServiceSpecError);
    expect(() => readServiceSpec(spec)).toThrow(message);
  });
});
