// The second heartbeat path (ARCHITECTURE.md 5.4): the primary process also says it is alive
// over UDP on the client-facing network, so that a cut replication link alone never makes the
// backup take over. Each datagram is MAC'd under the shared key and carries a counter that must
// grow: a recorded heartbeat replayed by someone else cannot keep a dead primary "alive".
//
// Datagram: "USHB" | u8 version | u8 role | u16 node id length | u32 epoch | u64 counter |
// u64 clock (µs) | node id | 32-byte HMAC-SHA-256 over a label and everything before it.

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { MAC_BYTES, macEquals, type ReplicationKey } from './auth.js';
import type { Endpoint } from './channel.js';
import type { Role } from './framing.js';

const MAGIC = 0x55534842; // "USHB"
const VERSION = 1;
const FIXED = 4 + 1 + 1 + 2 + 4 + 8 + 8;
const LABEL = Buffer.from('understudy-lan-heartbeat-v1 ');
const TWO_32 = 0x1_0000_0000;
const MAX_NODE_ID = 255;

export interface LanHeartbeat {
  role: Role;
  epoch: number;
  /** Grows with every datagram of a sender, across its restarts too (it starts at the wall clock). */
  counter: number;
  clockUs: number;
  nodeId: string;
}

export function encodeLanHeartbeat(key: ReplicationKey, h: LanHeartbeat): Buffer {
  const id = Buffer.from(h.nodeId, 'utf8');
  if (id.length > MAX_NODE_ID) throw new RangeError(`node id of ${id.length} bytes, at most ${MAX_NODE_ID}`);
  const body = Buffer.alloc(FIXED + id.length);
  body.writeUInt32BE(MAGIC, 0);
  body.writeUInt8(VERSION, 4);
  body.writeUInt8(h.role === 'primary' ? 1 : 2, 5);
  body.writeUInt16BE(id.length, 6);
  body.writeUInt32BE(h.epoch >>> 0, 8);
  writeU64(body, 12, h.counter);
  writeU64(body, 20, h.clockUs);
  id.copy(body, FIXED);
  return Buffer.concat([body, key.hmac([LABEL, body])]);
}

/** Never throws: a datagram from anyone may arrive here. */
export function decodeLanHeartbeat(key: ReplicationKey, d: Uint8Array): LanHeartbeat | { error: string } {
  const b = Buffer.from(d.buffer, d.byteOffset, d.length);
  if (b.length < FIXED + MAC_BYTES) return { error: `${b.length}-byte datagram is too short for a heartbeat` };
  if (b.readUInt32BE(0) !== MAGIC) return { error: 'not a heartbeat (bad magic)' };
  if (b.readUInt8(4) !== VERSION) return { error: `heartbeat version ${b.readUInt8(4)}, expected ${VERSION}` };
  const idLen = b.readUInt16BE(6);
  if (b.length !== FIXED + idLen + MAC_BYTES) return { error: `heartbeat of ${b.length} bytes, its node id says ${FIXED + idLen + MAC_BYTES}` };
  const body = b.subarray(0, FIXED + idLen);
  if (!macEquals(key.hmac([LABEL, body]), b.subarray(FIXED + idLen))) return { error: 'heartbeat MAC does not check out (wrong key or altered)' };
  const role = b.readUInt8(5);
  if (role !== 1 && role !== 2) return { error: `heartbeat role ${role}` };
  return {
    role: role === 1 ? 'primary' : 'backup',
    epoch: b.readUInt32BE(8),
    counter: readU64(b, 12),
    clockUs: readU64(b, 20),
    nodeId: body.subarray(FIXED).toString('utf8'),
  };
}

function writeU64(b: Buffer, at: number, v: number): void {
  b.writeUInt32BE(Math.floor(v / TWO_32), at);
  b.writeUInt32BE(v % TWO_32, at + 4);
}

function readU64(b: Buffer, at: number): number {
  return b.readUInt32BE(at) * TWO_32 + b.readUInt32BE(at + 4);
}

export interface LanHeartbeatEvents {
  heartbeat: [h: LanHeartbeat, from: string];
  refused: [error: string, from: string];
}

export class LanHeartbeatReceiver extends EventEmitter<LanHeartbeatEvents> {
  readonly stats = { accepted: 0, refused: 0, replayed: 0 };
  private readonly socket: UdpSocket;
  private closed = false;
  /** Highest counter seen per node id: anything not above it is a replay. */
  private readonly highest = new Map<string, number>();

  constructor(
    private readonly key: ReplicationKey,
    private readonly listen: Endpoint,
  ) {
    super();
    this.socket = createSocket('udp4');
    this.socket.on('message', (msg, rinfo) => this.onDatagram(msg, `${rinfo.address}:${rinfo.port}`));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind(this.listen.port, this.listen.host, () => {
        this.socket.off('error', reject);
        resolve();
      });
    });
  }

  get port(): number {
    return this.socket.address().port;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }

  private onDatagram(msg: Buffer, from: string): void {
    const h = decodeLanHeartbeat(this.key, msg);
    if ('error' in h) {
      this.stats.refused++;
      this.emit('refused', h.error, from);
      return;
    }
    const top = this.highest.get(h.nodeId);
    if (top !== undefined && h.counter <= top) {
      this.stats.replayed++;
      this.emit('refused', `heartbeat counter ${h.counter} not above ${top}: a replay`, from);
      return;
    }
    this.highest.set(h.nodeId, h.counter);
    this.stats.accepted++;
    this.emit('heartbeat', h, from);
  }
}
