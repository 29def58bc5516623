// The options every command that talks to a running node shares, and the check that what came
// back is a status this command understands.

import { Option, type Command } from 'commander';
import { STATUS_VERSION, type NodeStatus } from '../control/status.js';
import { ControlClientError } from '../control/client.js';
import { DEFAULT_CONTROL_DIR } from './control-path.js';
import { parseTunName } from './options.js';

export interface ControlOptions {
  control?: string;
  tun?: string;
}

export function addControlOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--control <path>', `the node's control socket (default: the only one in ${DEFAULT_CONTROL_DIR})`).conflicts('tun'))
    .option('--tun <name>', `the node's TUN device name (its socket is ${DEFAULT_CONTROL_DIR}/<name>.sock)`, parseTunName);
}

export function asNodeStatus(value: unknown): NodeStatus {
  if (typeof value !== 'object' || value === null || (value as { version?: unknown }).version !== STATUS_VERSION) {
    throw new ControlClientError('protocol', `the node answered with a status this command does not understand (expected version ${STATUS_VERSION})`);
  }
  return value as NodeStatus;
}
