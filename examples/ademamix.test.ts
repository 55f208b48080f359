import { expect, it } from 'vitest';
import { fit } from './ademamix.ts';

it('AdEMAMix, defined by a user in a few lines, trains with 8-bit states', async () => {
  const losses = await fit(80, 2048);
  // The slow EMA (β3 = 0.9999) makes AdEMAMix deliberately sluggish early; 80 steps cut the loss > 4×.
  expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.25);
  for (let i = 10; i < losses.length; i += 10) expect(losses[i]!).toBeLessThan(losses[i - 10]!);
});
