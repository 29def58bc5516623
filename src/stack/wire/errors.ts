// Parse failures are values, not exceptions: a parser returns a WireError whose `error` is the name
// of the drop counter the host should bump (e.g. `ip.bad-checksum`). The objects are shared
// constants so that a flood of bad packets allocates nothing.

export interface WireError {
  readonly error: string;
}

export function isWireError(x: object): x is WireError {
  return 'error' in x;
}

/** A frozen, shared error value for a counter name. */
export function wireError(name: string): WireError {
  return Object.freeze({ error: name });
}
