export type { Service, ServiceSocket, SocketLike } from './service.js';
export { createEchoService } from './echo.js';
export { createDiscardService } from './discard.js';
export { createHttpStaticService, type HttpStaticOptions } from './http-static.js';
export { parseServiceSpec, readServiceSpec, createService, ServiceSpecError, type ServiceSpec } from './spec.js';
