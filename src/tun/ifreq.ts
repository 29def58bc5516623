// struct ifreq (<net/if.h>) as bytes: a 16-byte interface name followed by a 24-byte union, of
// which we use the short flags, the int MTU/index, and the sockaddr hardware address.

export const IFNAMSIZ = 16;
export const IFREQ_SIZE = 40;

export function makeIfreq(name: string): Buffer {
  const nameBytes = Buffer.from(name, 'ascii');
  if (nameBytes.length === 0 || nameBytes.length >= IFNAMSIZ || name.includes('/') || /\s/.test(name)) {
    throw new RangeError(`bad interface name ${JSON.stringify(name)} (1-15 characters, no '/' or spaces)`);
  }
  const req = Buffer.alloc(IFREQ_SIZE);
  nameBytes.copy(req, 0);
  return req;
}

export function ifreqName(req: Buffer): string {
  const end = req.indexOf(0);
  return req.toString('ascii', 0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end);
}
