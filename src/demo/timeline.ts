// The demo's picture: sequence number against time for one download, as seen on the client's
// interface — the server's data (end of each segment) and the client's cumulative ACKs — with the
// moment the primary was killed, the moment the backup said it had taken over, and the stall the
// client lived through as a shaded band. A time-sequence graph is what an engineer would draw by
// hand from the capture; here it is a self-contained SVG (no fonts, scripts or links to fetch),
// readable at 1200x600.

export interface TimelinePoint {
  /** Milliseconds from the origin of the picture (the first packet of the connection). */
  tMs: number;
  /** Relative sequence number in MiB. */
  mib: number;
}

export interface TimelineInput {
  title: string;
  subtitle?: string;
  /** Server to client: the sequence number just past each data segment, in capture order. */
  data: readonly TimelinePoint[];
  /** Client to server: the cumulative ACK number, in capture order. */
  acks?: readonly TimelinePoint[];
  killedMs?: number;
  /** Default "primary killed". */
  killedLabel?: string;
  takeoverMs?: number;
  /** Last data before the kill to the first new data after it. */
  stall?: { fromMs: number; toMs: number };
  width?: number;
  height?: number;
}

export interface TimelineScale {
  width: number;
  height: number;
  /** The plot area inside the axes, in SVG pixels. */
  left: number;
  right: number;
  top: number;
  bottom: number;
  tMin: number;
  tMax: number;
  mibMax: number;
  x(tMs: number): number;
  y(mib: number): number;
}

const MARGIN = { left: 84, right: 36, top: 78, bottom: 64 };
const COLORS = { data: '#1f5fbf', acks: '#2e9e4f', killed: '#c62828', takeover: '#6a1b9a', stall: '#ffcc80', grid: '#e4e4e4', axis: '#333333' };
const FONT = 'font-family="sans-serif"';

export function timelineScale(input: TimelineInput): TimelineScale {
  const width = input.width ?? 1200;
  const height = input.height ?? 600;
  // Loops rather than Math.min(...array): a real capture has far more points than the call stack
  // has room for arguments.
  let tMin = 0;
  let tMaxRaw = 1;
  let mibRaw = 0;
  for (const series of [input.data, input.acks ?? []]) {
    for (const p of series) {
      if (p.tMs < tMin) tMin = p.tMs;
      if (p.tMs > tMaxRaw) tMaxRaw = p.tMs;
      if (p.mib > mibRaw) mibRaw = p.mib;
    }
  }
  for (const t of [input.killedMs, input.takeoverMs, input.stall?.fromMs, input.stall?.toMs]) {
    if (t === undefined) continue;
    tMin = Math.min(tMin, t);
    tMaxRaw = Math.max(tMaxRaw, t);
  }
  // A little room on the right so the last point and a late marker do not sit on the frame.
  const tMax = tMaxRaw + (tMaxRaw - tMin) * 0.02;
  const mibMax = mibRaw > 0 ? mibRaw * 1.05 : 1;
  const left = MARGIN.left;
  const right = width - MARGIN.right;
  const top = MARGIN.top;
  const bottom = height - MARGIN.bottom;
  return {
    width,
    height,
    left,
    right,
    top,
    bottom,
    tMin,
    tMax,
    mibMax,
    x: (t) => round1(left + ((t - tMin) / (tMax - tMin)) * (right - left)),
    y: (m) => round1(bottom - (m / mibMax) * (bottom - top)),
  };
}

/** About `count` round tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count: number): number[] {
  if (!(hi > lo) || count < 1) return [lo];
  const raw = (hi - lo) / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
  const ticks: number[] = [];
  // Multiples of the step rather than repeated addition, which drifts (0.1 + 0.2 ...).
  const first = Math.ceil(lo / step - 1e-9);
  for (let i = first; i * step <= hi + step * 1e-9; i++) ticks.push(Number((i * step).toPrecision(12)) + 0);
  return ticks;
}

/**
 * At most two points per pixel column: the lowest and the highest, in their time order. A 256 MiB
 * download is some 200 000 segments; drawing them all would make a 10 MB SVG that looks the same.
 * A monotone series stays monotone (its lowest point in a column comes before its highest).
 */
export function thinSeries(points: readonly TimelinePoint[], scale: TimelineScale): TimelinePoint[] {
  const out: TimelinePoint[] = [];
  let column = Number.NaN;
  let lo: { p: TimelinePoint; i: number } | undefined;
  let hi: { p: TimelinePoint; i: number } | undefined;
  const flush = (): void => {
    if (lo === undefined || hi === undefined) return;
    if (lo.i === hi.i) out.push(lo.p);
    else if (lo.i < hi.i) out.push(lo.p, hi.p);
    else out.push(hi.p, lo.p);
  };
  points.forEach((p, i) => {
    const c = Math.round(scale.x(p.tMs));
    if (c !== column) {
      flush();
      column = c;
      lo = hi = { p, i };
      return;
    }
    if (p.mib < lo!.p.mib) lo = { p, i };
    if (p.mib > hi!.p.mib) hi = { p, i };
  });
  flush();
  return out;
}

export function renderTimelineSvg(input: TimelineInput): string {
  const s = timelineScale(input);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${s.width}" height="${s.height}" viewBox="0 0 ${s.width} ${s.height}">`,
    `<rect x="0" y="0" width="${s.width}" height="${s.height}" fill="#ffffff"/>`,
    `<text x="${s.left}" y="30" ${FONT} font-size="20" font-weight="bold" fill="${COLORS.axis}">${esc(input.title)}</text>`,
  );
  if (input.subtitle !== undefined) parts.push(`<text x="${s.left}" y="52" ${FONT} font-size="14" fill="#555555">${esc(input.subtitle)}</text>`);

  // The stall first, so that grid, series and markers are drawn over it; its label last.
  const stallLabel: string[] = [];
  if (input.stall !== undefined) {
    const x1 = s.x(input.stall.fromMs);
    const x2 = s.x(input.stall.toMs);
    const ms = input.stall.toMs - input.stall.fromMs;
    const label = `stall ${Math.round(ms)} ms`;
    // A failover's stall is a few hundred ms of a ten-second picture, a band narrower than its
    // label: centred in it, the text would be crossed by the kill and takeover lines that bound
    // it. Then the label goes right of the band, on a white backing. Either way it is drawn last
    // (below), over grid, series and markers.
    const approxWidth = label.length * 7.5;
    const inside = x2 - x1 >= approxWidth + 12;
    const lx = inside ? round1((x1 + x2) / 2) : round1(x2 + 8);
    const ly = s.bottom - 10;
    parts.push(
      `<rect id="stall" x="${x1}" y="${s.top}" width="${round1(Math.max(1, x2 - x1))}" height="${s.bottom - s.top}" fill="${COLORS.stall}" fill-opacity="0.55"/>`,
    );
    if (!inside) stallLabel.push(`<rect id="stall-label-bg" x="${round1(lx - 3)}" y="${ly - 14}" width="${round1(approxWidth + 6)}" height="19" fill="#ffffff" fill-opacity="0.85"/>`);
    stallLabel.push(`<text id="stall-label" x="${lx}" y="${ly}" ${FONT} font-size="13" font-weight="bold" text-anchor="${inside ? 'middle' : 'start'}" fill="#8a4b00">${label}</text>`);
  }

  // Grid and axes.
  const xTicks = niceTicks(s.tMin, s.tMax, 12);
  const yTicks = niceTicks(0, s.mibMax, 8);
  const grid: string[] = [];
  for (const t of xTicks) {
    const x = s.x(t);
    grid.push(
      `<line x1="${x}" y1="${s.top}" x2="${x}" y2="${s.bottom}" stroke="${COLORS.grid}"/>`,
      `<line x1="${x}" y1="${s.bottom}" x2="${x}" y2="${s.bottom + 6}" stroke="${COLORS.axis}"/>`,
      `<text x="${x}" y="${s.bottom + 22}" ${FONT} font-size="12" text-anchor="middle" fill="${COLORS.axis}">${fmtTick(t)}</text>`,
    );
  }
  for (const m of yTicks) {
    const y = s.y(m);
    grid.push(
      `<line x1="${s.left}" y1="${y}" x2="${s.right}" y2="${y}" stroke="${COLORS.grid}"/>`,
      `<line x1="${s.left - 6}" y1="${y}" x2="${s.left}" y2="${y}" stroke="${COLORS.axis}"/>`,
      `<text x="${s.left - 10}" y="${round1(y + 4)}" ${FONT} font-size="12" text-anchor="end" fill="${COLORS.axis}">${fmtTick(m)}</text>`,
    );
  }
  parts.push(`<g id="grid">${grid.join('')}</g>`);
  parts.push(
    `<rect x="${s.left}" y="${s.top}" width="${s.right - s.left}" height="${s.bottom - s.top}" fill="none" stroke="${COLORS.axis}"/>`,
    `<text x="${round1((s.left + s.right) / 2)}" y="${s.height - 16}" ${FONT} font-size="14" text-anchor="middle" fill="${COLORS.axis}">time (ms)</text>`,
    `<text x="22" y="${round1((s.top + s.bottom) / 2)}" ${FONT} font-size="14" text-anchor="middle" fill="${COLORS.axis}" transform="rotate(-90 22 ${round1((s.top + s.bottom) / 2)})">relative sequence number (MiB)</text>`,
  );

  // Series: ACKs under the data, which they trail by at most a window.
  const polyline = (id: string, pts: readonly TimelinePoint[], color: string, extra: string): string =>
    `<polyline id="${id}" fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round" ${extra}points="${thinSeries(pts, s)
      .map((p) => `${s.x(p.tMs)},${s.y(p.mib)}`)
      .join(' ')}"/>`;
  if (input.acks !== undefined && input.acks.length > 0) parts.push(polyline('series-acks', input.acks, COLORS.acks, 'stroke-dasharray="6 3" '));
  if (input.data.length > 0) parts.push(polyline('series-data', input.data, COLORS.data, ''));

  // Markers. The kill's label sits left of its line and the takeover's right of its line, on two
  // rows, so they stay readable when the two are only a few pixels apart.
  const marker = (id: string, t: number, color: string, label: string, row: number, anchor: 'start' | 'end'): void => {
    const x = s.x(t);
    const dx = anchor === 'end' ? -6 : 6;
    parts.push(
      `<line id="${id}" x1="${x}" y1="${s.top}" x2="${x}" y2="${s.bottom}" stroke="${color}" stroke-width="2" stroke-dasharray="8 4"/>`,
      `<text id="${id}-label" x="${round1(x + dx)}" y="${s.top + 18 + row * 18}" ${FONT} font-size="13" font-weight="bold" text-anchor="${anchor}" fill="${color}">${esc(label)}</text>`,
    );
  };
  if (input.killedMs !== undefined) marker('marker-killed', input.killedMs, COLORS.killed, input.killedLabel ?? 'primary killed', 0, 'end');
  if (input.takeoverMs !== undefined) {
    const after = input.killedMs === undefined ? '' : ` (+${Math.round(input.takeoverMs - input.killedMs)} ms)`;
    marker('marker-takeover', input.takeoverMs, COLORS.takeover, `backup took over${after}`, 1, 'start');
  }

  parts.push(...stallLabel);

  // Legend, bottom right inside the plot: a download climbs from bottom left to top right.
  const lx = s.right - 250;
  const ly = s.bottom - 60;
  parts.push(
    `<g id="legend"><rect x="${lx - 10}" y="${ly - 18}" width="250" height="${input.stall ? 64 : 46}" fill="#ffffff" fill-opacity="0.85" stroke="#cccccc"/>`,
    `<line x1="${lx}" y1="${ly - 4}" x2="${lx + 30}" y2="${ly - 4}" stroke="${COLORS.data}" stroke-width="2"/>`,
    `<text x="${lx + 38}" y="${ly}" ${FONT} font-size="12" fill="${COLORS.axis}">data, server to client</text>`,
    `<line x1="${lx}" y1="${ly + 14}" x2="${lx + 30}" y2="${ly + 14}" stroke="${COLORS.acks}" stroke-width="2" stroke-dasharray="6 3"/>`,
    `<text x="${lx + 38}" y="${ly + 18}" ${FONT} font-size="12" fill="${COLORS.axis}">ACKs from the client</text>`,
    input.stall ? `<rect x="${lx}" y="${ly + 26}" width="30" height="10" fill="${COLORS.stall}"/><text x="${lx + 38}" y="${ly + 36}" ${FONT} font-size="12" fill="${COLORS.axis}">client saw no new data</text>` : '',
    `</g>`,
  );
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

function fmtTick(v: number): string {
  return Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v)) : String(Number(v.toPrecision(3)));
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
