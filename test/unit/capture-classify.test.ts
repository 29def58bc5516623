import { describe, expect, it } from 'vitest';
import { classifyRsts } from '../lab/helpers/capture.js';

const S = '198.18.0.100.7';
const C = '198.18.0.10.40214';

describe('lab capture: RSTs after close', () => {
  it('a RST after both FINs of its connection is set apart', () => {
    const r = classifyRsts([
      `1.0 IP ${C} > ${S}: Flags [F.], seq 1, ack 1, win 500, length 0`,
      `1.1 IP ${S} > ${C}: Flags [F.], seq 1, ack 2, win 500, length 0`,
      `1.5 IP ${S} > ${C}: Flags [R], seq 2, win 0, length 0`,
    ]);
    expect(r.counted).toEqual([]);
    expect(r.afterClose).toHaveLength(1);
  });

  it('a RST with only one FIN seen counts', () => {
    const r = classifyRsts([
      `1.0 IP ${C} > ${S}: Flags [F.], seq 1, ack 1, win 500, length 0`,
      `1.5 IP ${S} > ${C}: Flags [R.], seq 2, ack 2, win 0, length 0`,
    ]);
    expect(r.counted).toHaveLength(1);
    expect(r.afterClose).toEqual([]);
  });

  it('FINs of another connection do not excuse a RST', () => {
    const other = '198.18.0.10.40215';
    const r = classifyRsts([
      `1.0 IP ${other} > ${S}: Flags [F.], seq 1, ack 1, win 500, length 0`,
      `1.1 IP ${S} > ${other}: Flags [F.], seq 1, ack 2, win 500, length 0`,
      `1.5 IP ${S} > ${C}: Flags [R], seq 2, win 0, length 0`,
    ]);
    expect(r.counted).toHaveLength(1);
  });

  it('a line it cannot read counts, so nothing hides behind a format change', () => {
    expect(classifyRsts(['garbage']).counted).toEqual(['garbage']);
  });
});
