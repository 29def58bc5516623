// Renders raw TCP option bytes the way packetdrill prints them (`mss 1460,nop,wscale 6,...`), so
// tests can compare emitted bytes with lines of the FreeBSD conformance scripts.

export function describeOptions(b: Uint8Array): string {
  const out: string[] = [];
  const u32 = (at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
  let i = 0;
  while (i < b.length) {
    const kind = b[i]!;
    if (kind === 0) {
      out.push('eol');
      i++;
      continue;
    }
    if (kind === 1) {
      out.push('nop');
      i++;
      continue;
    }
    const len = b[i + 1]!;
    if (kind === 2) out.push(`mss ${(b[i + 2]! << 8) | b[i + 3]!}`);
    else if (kind === 3) out.push(`wscale ${b[i + 2]}`);
    else if (kind === 4) out.push('sackOK');
    else if (kind === 8) out.push(`TS val ${u32(i + 2)} ecr ${u32(i + 6)}`);
    else if (kind === 5) {
      const blocks: string[] = [];
      for (let at = i + 2; at < i + len; at += 8) blocks.push(`${u32(at)}:${u32(at + 4)}`);
      out.push(`sack ${blocks.join(' ')}`);
    } else out.push(`kind${kind}`);
    i += len;
  }
  return out.join(',');
}
