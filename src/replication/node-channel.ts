// The nodes over the authenticated channel (channel.ts): the primary's log follows the session
// (attach on peer-up, acks, detach on peer-down), and protection survives a short outage: while
// the backup is away for less than `graceMs` the primary keeps holding its packets, so a reconnect
// resumes where the backup stands; after that it serves on unprotected and says so.

import type { ReplicationChannel } from './channel.js';
import type { LogRecord, Lsn } from './log-records.js';
import type { ReplicationLog } from './replication-log.js';

/** What the binding needs of a primary node. */
export interface ProtectedPrimary {
  readonly log: ReplicationLog;
  backupAttached(): void;
  backupLost(reason: string): void;
  /** Starts over on a fresh log for a backup that joins with nothing (PrimaryNode.freshLog). */
  freshLog(): ReplicationLog;
  /** Stops speaking for the VIP: another node took over with a higher epoch. */
  fence(reason: string): void;
}

/** What the binding needs of a backup node. */
export interface ReplicatingBackup {
  receive(records: LogRecord[]): { ok: true } | { ok: false; error: string };
  readonly lastApplied: Lsn;
  /** After a reconnect the primary learns the position from the hello: no ack is owed. */
  resetAck(): void;
}

export interface PrimaryBindingOptions {
  /** How long a lost backup may take to come back before the primary goes unprotected. Default 300 ms. */
  graceMs?: number;
  say?: (line: string) => void;
}

export interface PrimaryBinding {
  /** True once the primary gave up on its backup: a new one needs a snapshot (reintegration). */
  readonly gaveUp: boolean;
  /** Stops the grace timer (shutdown). */
  stop(): void;
}

export function bindPrimaryNode(node: ProtectedPrimary, channel: ReplicationChannel, opts: PrimaryBindingOptions = {}): PrimaryBinding {
  const graceMs = opts.graceMs ?? 300;
  let grace: NodeJS.Timeout | null = null;
  let gaveUp = false;
  let everAttached = false;
  const stopGrace = (): void => {
    if (grace !== null) clearTimeout(grace);
    grace = null;
  };
  channel.on('peer-up', (peer) => {
    if (gaveUp) {
      // Only a backup with nothing can join: it protects the connections opened from now on.
      if (peer.lastLsn !== 0) {
        channel.dropPeer(`this primary went unprotected; backup ${peer.nodeId} holds LSN ${peer.lastLsn} of an older log and must restart empty`);
        return;
      }
      node.freshLog();
      gaveUp = false;
      everAttached = false;
      opts.say?.(`replication: backup ${peer.nodeId} joins an unprotected primary: new connections are protected, those already open are not`);
    }
    const r = node.log.attach((b) => channel.sendRecords(b), peer.lastLsn);
    if (!r.ok) {
      channel.dropPeer(r.error);
      return;
    }
    stopGrace();
    if (!everAttached) {
      everAttached = true;
      node.backupAttached();
    }
  });
  channel.on('peer-down', ({ reason }) => {
    node.log.detach();
    if (gaveUp || !everAttached || grace !== null) return;
    grace = setTimeout(() => {
      grace = null;
      gaveUp = true;
      node.backupLost(`the backup has been away for ${graceMs} ms (${reason})`);
    }, graceMs);
  });
  channel.on('ack', (lsn) => {
    const r = node.log.onAck(lsn);
    if (!r.ok) channel.dropPeer(r.error);
  });
  channel.on('higher-epoch', (epoch, peer) => {
    stopGrace();
    node.fence(`${peer.role} ${peer.nodeId} announced epoch ${epoch}`);
    channel.dropPeer('fenced by a higher epoch');
  });
  return {
    get gaveUp() {
      return gaveUp;
    },
    stop: stopGrace,
  };
}

export function bindBackupNode(node: ReplicatingBackup, channel: ReplicationChannel): void {
  channel.on('peer-up', () => node.resetAck());
  channel.on('message', (records) => {
    const r = node.receive(records);
    if (!r.ok) channel.dropPeer(r.error);
  });
}
