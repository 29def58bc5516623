export type { Service, ServiceSocket, SocketLike } from './service.js';
export { createEchoService } from './echo.js';
export { createDiscardService } from './discard.js';
export { createHttpStaticService, type HttpStaticOptions } from './http-static.js';
export { createProxyService, type ProxyTarget, type ProxyOptions, type BackendError } from './proxy.js';
export {
  createModuleService,
  classify as classifyModuleExports,
  ModuleLoadError,
  type ModuleService,
  type ModuleServiceOptions,
  type ModuleHandler,
  type ConnectionHandler,
} from './module-service.js';
export {
  parseServiceSpec,
  readServiceSpec,
  createService,
  describeServiceSpec,
  ServiceSpecError,
  type ServiceSpec,
} from './spec.js';
