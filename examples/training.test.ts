// Smoke versions of the training examples (the full runs are the examples themselves): every
// optimizer pair trains, and Flash lands near its fp32 reference even after a short run.

import { describe, expect, it } from 'vitest';
import { main as mnist } from './mnist.ts';
import { loadNames, main as names } from './names.ts';
import { families } from './families.ts';
import { markdownTable, meanStd } from './report.ts';

describe('training examples (smoke)', () => {
  it('mnist: one epoch of every pair; each reaches > 80% and Flash is within 2 pp of fp32', async () => {
    const runs = await mnist({ seeds: 1, epochs: 1, batch: 64, write: false });
    for (const f of families('mnist')) {
      const ref = runs[f.reference.name]![0]!.acc,
        fl = runs[f.flash.name]![0]!.acc;
      expect(ref, f.reference.name).toBeGreaterThan(0.8);
      expect(fl, f.flash.name).toBeGreaterThan(0.8);
      expect(Math.abs(fl - ref), f.label).toBeLessThan(0.02);
    }
  });

  it('names: fixed split, and 400 steps bring both below the uniform-guess loss', async () => {
    const d = loadNames();
    expect(d.vocab).toBe('.-abcdefghijklmnopqrstuvwxyz');
    // 8,422 distinct lowercased names; every 10th (sorted) is validation: a fixed split.
    expect([d.train.n, d.val.n]).toEqual([53_247, 5_920]);
    const runs = await names({ seeds: 1, steps: 400, batch: 128, every: 200, write: false });
    const uniform = Math.log(d.vocab.length);
    const losses = Object.values(runs).map((r) => r[0]!.valLoss);
    expect(losses).toHaveLength(2);
    for (const l of losses) expect(l).toBeLessThan(uniform - 0.7);
    expect(Math.abs(losses[1]! - losses[0]!) / losses[0]!).toBeLessThan(0.03);
  });

  it('report helpers: mean ± sample std, markdown table', () => {
    expect(meanStd([1, 2, 3])).toEqual({ mean: 2, std: 1 });
    expect(markdownTable(['a', 'b'], [[1, 'x']])).toBe('| a | b |\n| --- | --- |\n| 1 | x |\n');
  });
});
