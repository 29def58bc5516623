// The stack's public surface: the socket API for services and the CLI, the sans-IO host for the
// conformance runner and replication.

export { createStack, type Stack, type StackOptions, type ConnectOptions, type StackLogEvent } from './stack.js';
export { Socket, socketError, type SocketError, type SocketReadyState } from './socket.js';
export { Server, type ServerOptions, type ListenOptions } from './server.js';
export { Driver, realClock, type Clock, type DriverOptions } from './driver.js';
export { createHost } from './host.js';
export { createTcpEnv, type TcpEnvOptions } from './env.js';
export type { Host, HostConfig, HostEvent, TcpListener, Counters } from './host-api.js';
