// 64-bit little-endian stream offsets and LSNs in the replication formats, as JavaScript numbers:
// values past 2^53 cannot be held exactly, so a reader refuses them rather than round.

const TWO_32 = 0x1_0000_0000;

export function writeU64(dv: DataView, at: number, v: number): void {
  dv.setUint32(at, v % TWO_32, true);
  dv.setUint32(at + 4, Math.floor(v / TWO_32), true);
}

/** Returns -1 when the value does not fit a safe integer. */
export function readU64(dv: DataView, at: number): number {
  const hi = dv.getUint32(at + 4, true);
  if (hi > 0x1f_ffff) return -1;
  return hi * TWO_32 + dv.getUint32(at, true);
}
