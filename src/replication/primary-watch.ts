// The backup's watch over its primary (ARCHITECTURE.md 5.4): every authenticated frame on the
// replication channel and every LAN heartbeat counts as a sign of life on its path; the failure
// detector declares the primary dead only when all paths are silent, and then the takeover runs
// once. A primary heard on the LAN alone is alive: the replication link is cut, not the primary.

import type { ReplicationChannel } from './channel.js';
import { FailureDetector, type PathSilence } from './failure-detector.js';
import type { LanHeartbeatReceiver } from './lan-heartbeat.js';

export interface PrimaryWatchOptions {
  channel: ReplicationChannel;
  /** The second path; without it the replication link alone decides (not advised). */
  lan?: LanHeartbeatReceiver;
  /** Only heartbeats from this node id count on the LAN (the primary's). */
  primaryNodeId?: string;
  deadAfterMs?: number;
  /** How often silence is checked. Default a quarter of deadAfterMs. */
  checkEveryMs?: number;
  now?: () => number;
  onDead: (silences: PathSilence[]) => void;
  /** Some path is silent but not all: e.g. the primary goes on unprotected. */
  onSuspect?: (silences: PathSilence[]) => void;
}

export interface PrimaryWatch {
  readonly detector: FailureDetector;
  stop(): void;
}

export function watchPrimary(opts: PrimaryWatchOptions): PrimaryWatch {
  const paths = opts.lan === undefined ? ['replication'] : ['replication', 'lan'];
  const deadAfter = opts.deadAfterMs ?? 300;
  const detector = new FailureDetector({ paths, deadAfterMs: deadAfter, now: opts.now ?? (() => performance.now()) });
  const heardOnChannel = (): void => detector.heard('replication');
  opts.channel.on('heartbeat', heardOnChannel);
  opts.channel.on('message', heardOnChannel);
  opts.channel.on('peer-up', heardOnChannel);
  const lan = opts.lan;
  const onLan = (h: { nodeId: string; role: string }): void => {
    if (h.role !== 'primary') return;
    if (opts.primaryNodeId !== undefined && h.nodeId !== opts.primaryNodeId) return;
    detector.heard('lan');
  };
  lan?.on('heartbeat', onLan);
  detector.start(opts.checkEveryMs ?? Math.max(1, Math.floor(deadAfter / 4)), opts.onDead, opts.onSuspect);
  return {
    detector,
    stop(): void {
      detector.stop();
      opts.channel.off('heartbeat', heardOnChannel);
      opts.channel.off('message', heardOnChannel);
      opts.channel.off('peer-up', heardOnChannel);
      lan?.off('heartbeat', onLan);
    },
  };
}
