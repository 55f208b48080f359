import { expect, it } from 'vitest';
import { ademamix as builtin } from '../optim/ademamix.ts';
import { uniformF32 } from '../props/prng.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import { ademamix, fit } from './ademamix.ts';

it('AdEMAMix, defined by a user in a few lines, trains with 8-bit states', async () => {
  const losses = await fit(80, 2048);
  // The slow EMA (β3 = 0.9999) makes AdEMAMix deliberately sluggish early; 80 steps cut the loss > 4×.
  expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.25);
  for (let i = 10; i < losses.length; i += 10) expect(losses[i]!).toBeLessThan(losses[i - 10]!);
});

it('the hand-written AdEMAMix stores what the built-in stores, bit for bit', async () => {
  const h = { lr: 1e-2, alpha: 5, weightDecay: 0.1 };
  const params = () => ({ w: uniformF32(300, 1), b: uniformF32(7, 2) });
  const mine = await createOptimizer(ademamix(h), params());
  const theirs = await createOptimizer(builtin(h), params());
  for (let s = 0; s < 20; s++) {
    const g = { w: uniformF32(300, 10 + s, 0.1), b: uniformF32(7, 40 + s, 0.1) };
    await mine.step(g);
    await theirs.step(g);
  }
  expect(mine.fields.map((f) => f.name)).toEqual(theirs.fields.map((f) => f.name));
  for (const f of theirs.fields)
    expect([...(await mine.readField(f.name))], f.name).toEqual([...(await theirs.readField(f.name))]);
});
