// The timeline SVG: well-formed, markers and stall band where the inputs put them, series points
// in the same order as the data, axes with ticks, and no reference to anything outside the file.

import { describe, expect, it } from 'vitest';
import { niceTicks, renderTimelineSvg, thinSeries, timelineScale, type TimelineInput, type TimelinePoint } from '../../../src/demo/timeline.js';

/** A small well-formedness check: tags nest and close, attributes are quoted, entities are known. */
function checkXml(xml: string): { root: string; elements: number } {
  const stack: string[] = [];
  let root = '';
  let elements = 0;
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<\?[^>]*\?>|<!--[\s\S]*?-->/g;
  let last = 0;
  for (let m = re.exec(xml); m !== null; m = re.exec(xml)) {
    const text = xml.slice(last, m.index);
    if (/<|>/.test(text)) throw new Error(`stray markup before offset ${m.index}: ${text.slice(0, 80)}`);
    if (/&(?!(amp|lt|gt|quot|apos|#\d+);)/.test(text)) throw new Error(`bad entity in text: ${text.slice(0, 80)}`);
    last = re.lastIndex;
    if (m[2] === undefined) continue;
    const [, closing, name, , selfClosing] = m;
    if (closing) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}>`);
    } else {
      elements++;
      if (stack.length === 0) {
        if (root !== '') throw new Error('two root elements');
        root = name!;
      }
      if (!selfClosing) stack.push(name!);
    }
  }
  if (xml.slice(last).trim() !== '') throw new Error('text after the root element');
  if (stack.length > 0) throw new Error(`unclosed <${stack.join('> <')}>`);
  return { root, elements };
}

function attr(svg: string, id: string, name: string): number {
  const el = new RegExp(`<[a-z]+ id="${id}"[^>]*>`).exec(svg)?.[0];
  if (el === undefined) throw new Error(`no element with id ${id}`);
  const v = new RegExp(`\\s${name}="([^"]*)"`).exec(el)?.[1];
  if (v === undefined) throw new Error(`#${id} has no ${name}`);
  return Number(v);
}

function polylinePoints(svg: string, id: string): Array<[number, number]> {
  const pts = new RegExp(`<polyline id="${id}"[^>]* points="([^"]*)"`).exec(svg)?.[1];
  if (pts === undefined) throw new Error(`no polyline ${id}`);
  return pts.split(' ').map((p) => p.split(',').map(Number) as [number, number]);
}

/** A 10 s download at a steady rate with a 400 ms gap after 4 s, one segment per 0.1 ms. */
function download(): { data: TimelinePoint[]; acks: TimelinePoint[] } {
  const data: TimelinePoint[] = [];
  const acks: TimelinePoint[] = [];
  for (let t = 0; t <= 10_000; t += 0.1) {
    if (t > 4000 && t < 4400) continue;
    const mib = (t < 4000 ? t : t - 400) / 40;
    data.push({ tMs: t, mib });
    acks.push({ tMs: t + 0.05, mib: Math.max(0, mib - 0.05) });
  }
  return { data, acks };
}

const base = (): TimelineInput => ({
  title: 'understudy demo: curl through a failover',
  subtitle: '256 MiB & more <details>',
  ...download(),
  killedMs: 4000,
  takeoverMs: 4310,
  stall: { fromMs: 3999.9, toMs: 4400 },
});

describe('timeline SVG', () => {
  it('is one well-formed <svg> element of 1200x600 by default', () => {
    const svg = renderTimelineSvg(base());
    const { root, elements } = checkXml(svg);
    expect(root).toBe('svg');
    expect(elements).toBeGreaterThan(20);
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="1200" height="600"/);
    // Text from the caller is escaped, not markup.
    expect(svg).toContain('256 MiB &amp; more &lt;details&gt;');
  });

  it('refers to nothing outside itself (no fonts, images, links or scripts)', () => {
    const svg = renderTimelineSvg(base());
    expect(svg).not.toMatch(/href|@import|url\(|<script|<image|@font-face/);
  });

  it('draws the kill and takeover markers at the x of their times, with labels', () => {
    const input = base();
    const s = timelineScale(input);
    const svg = renderTimelineSvg(input);
    for (const [id, t] of [['marker-killed', 4000], ['marker-takeover', 4310]] as const) {
      expect(attr(svg, id, 'x1')).toBeCloseTo(s.x(t), 1);
      expect(attr(svg, id, 'x2')).toBeCloseTo(s.x(t), 1);
      expect(attr(svg, id, 'y1')).toBe(s.top);
      expect(attr(svg, id, 'y2')).toBe(s.bottom);
    }
    expect(svg).toMatch(/id="marker-killed-label"[^>]*>primary killed</);
    expect(svg).toMatch(/id="marker-takeover-label"[^>]*>backup took over \(\+310 ms\)</);
    // Sanity of the scale itself: 4000 ms is ~40% across a plot that spans 0..10 s plus 2%.
    expect((s.x(4000) - s.left) / (s.right - s.left)).toBeCloseTo(4000 / 10_200, 3);
  });

  it('shades the stall from its start to its end and labels its length', () => {
    const input = base();
    const s = timelineScale(input);
    const svg = renderTimelineSvg(input);
    expect(attr(svg, 'stall', 'x')).toBeCloseTo(s.x(3999.9), 1);
    expect(attr(svg, 'stall', 'x') + attr(svg, 'stall', 'width')).toBeCloseTo(s.x(4400), 0);
    expect(svg).toMatch(/id="stall-label"[^>]*>stall 400 ms</);
  });

  it('labels the kill marker as told (the rehearsal freezes the primary instead)', () => {
    const svg = renderTimelineSvg({ ...base(), killedLabel: 'primary frozen' });
    expect(svg).toMatch(/id="marker-killed-label"[^>]*>primary frozen</);
  });

  it('leaves out markers and band that were not given', () => {
    const { killedMs: _k, takeoverMs: _t, stall: _s, ...rest } = base();
    const svg = renderTimelineSvg(rest);
    checkXml(svg);
    expect(svg).not.toMatch(/marker-killed|marker-takeover|id="stall"/);
  });

  it('keeps a monotone series monotone in x and y, within the plot, after thinning 100 000 points', () => {
    const input = base();
    const s = timelineScale(input);
    const svg = renderTimelineSvg(input);
    for (const id of ['series-data', 'series-acks']) {
      const pts = polylinePoints(svg, id);
      // Thinned to at most two points per pixel column, but still the shape of the data.
      expect(pts.length).toBeGreaterThan(500);
      expect(pts.length).toBeLessThanOrEqual(2 * (s.right - s.left + 2));
      for (let i = 1; i < pts.length; i++) {
        expect(pts[i]![0]).toBeGreaterThanOrEqual(pts[i - 1]![0]);
        // SVG y grows downwards: more bytes, smaller y.
        expect(pts[i]![1]).toBeLessThanOrEqual(pts[i - 1]![1]);
      }
      for (const [x, y] of pts) {
        expect(x).toBeGreaterThanOrEqual(s.left);
        expect(x).toBeLessThanOrEqual(s.right);
        expect(y).toBeGreaterThanOrEqual(s.top);
        expect(y).toBeLessThanOrEqual(s.bottom);
      }
    }
  });

  it('shows a retransmission as a dip: thinning keeps the lowest point of a column', () => {
    const input: TimelineInput = { title: 't', data: [{ tMs: 0, mib: 0 }, { tMs: 100, mib: 2 }, { tMs: 100.001, mib: 1 }, { tMs: 100.002, mib: 2.1 }, { tMs: 200, mib: 3 }] };
    const s = timelineScale(input);
    const thin = thinSeries(input.data, s);
    expect(thin.map((p) => p.mib)).toEqual([0, 1, 2.1, 3]);
  });

  it('puts round tick labels on both axes', () => {
    const svg = renderTimelineSvg(base());
    const labels = [...svg.matchAll(/<text [^>]*text-anchor="(middle|end)"[^>]*>([\d.]+)<\/text>/g)].map((m) => m[2]);
    expect(labels).toEqual(expect.arrayContaining(['0', '2000', '4000', '10000', '50', '200']));
    expect(svg).toContain('>time (ms)<');
    expect(svg).toContain('>relative sequence number (MiB)<');
  });
});

describe('niceTicks', () => {
  it.each([
    [0, 10_200, 12, 0, 10_000, 1000],
    [0, 268.8, 8, 0, 250, 50],
    [0, 0.9, 8, 0, 0.8, 0.2],
    [0, 0.3, 3, 0, 0.3, 0.1],
    [-250, 980, 10, -200, 800, 200],
    [-150, 980, 5, 0, 500, 500],
  ])('[%d, %d] in about %d steps: %d..%d by %d', (lo, hi, n, first, last, step) => {
    const t = niceTicks(lo, hi, n);
    expect(t[0]).toBe(first);
    expect(t.at(-1)).toBe(last);
    for (let i = 1; i < t.length; i++) expect(t[i]! - t[i - 1]!).toBeCloseTo(step, 9);
  });
});
