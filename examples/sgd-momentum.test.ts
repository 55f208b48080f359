import { expect, it } from 'vitest';
import { run } from './sgd-momentum.ts';

it('SGD with momentum as an expression matches a plain f32 loop exactly', () => {
  const r = run(100_003, 5);
  expect(r.maxDiff).toBe(0);
  expect(r.source).toContain('Math.fround');
});
