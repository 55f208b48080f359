// AdEMAMix's 8-bit states over a long run: the slow EMA (β3 = 0.9999) moves by 1e−4 of the
// gradient a step, the hardest state here to keep in 8 bits.

import { describe, expect, it } from 'vitest';
import { prng } from '../props/prng.ts';
import { lastStepRatios, quantile } from '../test/problems.ts';
import { ademamix } from './ademamix.ts';

const N = 256;
const wave = (i: number) => 1 + 0.5 * Math.sin(i);
const gaussian = (seed: number) => {
  const r = prng(seed);
  return () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
};
const run = (gradient: (t: number) => Float32Array) =>
  lastStepRatios(ademamix({ lr: 1e-4 }), 'ademamix', { lr: 1e-4 }, N, gradient, 1000);

describe('ademamix: 8-bit states over 1000 steps follow float64', () => {
  it('steady gradients: every element steps within 0.95–1.05× (bf16 group scales: 2.5× for m2, 1.7–2.0× for v)', async () => {
    const g = Float32Array.from({ length: N }, (_, i) => wave(i));
    const r = await run(() => g);
    console.log(`ademamix steady, last step ÷ float64: ${Math.min(...r).toFixed(3)}–${Math.max(...r).toFixed(3)}`);
    for (const [i, x] of r.entries()) expect(x, `element ${i}`).toBeGreaterThan(0.95);
    for (const [i, x] of r.entries()) expect(x, `element ${i}`).toBeLessThan(1.05);
  });

  it.each([
    ['with a mean', 1],
    ['of mean 0', 0],
  ] as const)('Gaussian gradients %s: median within 0.95–1.05×, 95th percentile below 1.3×', async (_, mean) => {
    const gauss = gaussian(7);
    const r = await run(() => Float32Array.from({ length: N }, (_, i) => wave(i) * (mean + gauss())));
    console.log(
      `ademamix Gaussian of mean ${mean}, last step ÷ float64: 5% ${quantile(r, 0.05).toFixed(3)}, median ${quantile(r, 0.5).toFixed(3)}, 95% ${quantile(r, 0.95).toFixed(3)}`,
    );
    expect(quantile(r, 0.5)).toBeGreaterThan(0.95);
    expect(quantile(r, 0.5)).toBeLessThan(1.05);
    expect(quantile(r, 0.95)).toBeLessThan(1.3);
  });
});

describe('ademamix: hyperparameters', () => {
  it('refuses three betas outside [0, 1), two betas, a negative alpha or warmup, naming them', () => {
    expect(() => ademamix({ betas: [0.9, 0.999, 1] })).toThrow(/ademamix: betas\[2\] must be in \[0, 1\), got 1/);
    expect(() => ademamix({ betas: [0.9, 0.999] })).toThrow(/ademamix: betas must be 3 finite numbers/);
    expect(() => ademamix({ alpha: -1 })).toThrow(/ademamix: alpha must be >= 0, got -1/);
    expect(() => ademamix({ beta3Warmup: -5 })).toThrow(/ademamix: beta3Warmup must be >= 0/);
  });
});
