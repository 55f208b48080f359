// RMSprop's 8-bit states over a long run, its centered variance, and where ε goes.

import { describe, expect, it } from 'vitest';
import { prng } from '../props/prng.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import { lastStepRatios, quantile } from '../test/problems.ts';
import { Reference } from './reference.ts';
import { rmsprop } from './rmsprop.ts';

const N = 256;
/** Element i's gradient scale: 1 down to 0.01 across each group of 32. */
const size = (i: number) => 10 ** ((-2 * (i % 32)) / 31);
/** Gradients within 3× of each other: 8-bit rounding stays small, so a drift shows. */
const wave = (i: number) => 1 + 0.5 * Math.sin(i);
const gaussian = (seed: number) => {
  const r = prng(seed);
  return () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
};

describe('rmsprop: 8-bit states over 1000 steps follow float64', () => {
  it('steady gradients: every element steps within 0.95–1.05× (bf16 group scales: 1.14–1.25×)', async () => {
    const g = Float32Array.from({ length: N }, (_, i) => wave(i));
    const r = await lastStepRatios(rmsprop(), 'rmsprop', { lr: 0.01 }, N, () => g, 1000);
    console.log(`rmsprop steady, last step ÷ float64: ${Math.min(...r).toFixed(3)}–${Math.max(...r).toFixed(3)}`);
    for (const [i, x] of r.entries()) expect(x, `element ${i}`).toBeGreaterThan(0.95);
    for (const [i, x] of r.entries()) expect(x, `element ${i}`).toBeLessThan(1.05);
  });

  // Centered, the variance of a gradient whose mean is 10× its spread is 1% of its square: kept as
  // v and ḡ in 8 bits each, v̂ − ḡ̂² would be mostly rounding error (or negative). Stored as the
  // centered variance itself it keeps its 8-bit accuracy. (A steady gradient has no variance at
  // all, and torch's own steps grow without bound; it is no test of storage.)
  it.each([
    ['plain', {}],
    ['centered, momentum 0.9', { centered: true, momentum: 0.9 }],
  ] as const)(
    '%s, gradients of mean 10× their spread: median within 0.95–1.05×, 95th percentile below 1.3×',
    async (_, extra) => {
      const gauss = gaussian(9);
      const h = { lr: 1e-3, ...extra };
      const r = await lastStepRatios(
        rmsprop(h),
        'rmsprop',
        h,
        N,
        () => Float32Array.from({ length: N }, (_, i) => size(i) * (1 + 0.1 * gauss())),
        1000,
      );
      console.log(
        `rmsprop ${JSON.stringify(extra)}, last step ÷ float64: 5% ${quantile(r, 0.05).toFixed(3)}, median ${quantile(r, 0.5).toFixed(3)}, 95% ${quantile(r, 0.95).toFixed(3)}`,
      );
      expect(quantile(r, 0.5)).toBeGreaterThan(0.95);
      expect(quantile(r, 0.5)).toBeLessThan(1.05);
      expect(quantile(r, 0.95)).toBeLessThan(1.3);
    },
  );
});

describe('rmsprop: hyperparameters', () => {
  it('a large ε lands outside the root, as torch adds it (f32, within 1e-6 of float64)', async () => {
    for (const extra of [{}, { centered: true, momentum: 0.5 }]) {
      const h = { lr: 0.01, eps: 0.05, alpha: 0.9, weightDecay: 0.1, ...extra };
      const w0 = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
      const opt = await createOptimizer(
        rmsprop(h),
        { w: w0 },
        { paramDtype: 'f32', quantize: false, gradDtype: 'f32' },
      );
      const ref = new Reference('rmsprop', w0, h);
      for (let t = 0; t < 5; t++) {
        const g = Float32Array.from({ length: 64 }, (_, i) => Math.cos(i * (t + 1)) * 0.1);
        await opt.step({ w: g });
        ref.step(g);
      }
      const w = (await opt.exportFp32()).w!;
      w.forEach((x, i) => expect(Math.abs(x - ref.p[i]!), `${JSON.stringify(extra)} w[${i}]`).toBeLessThan(1e-6));
    }
  });

  it('keeps only the states it needs: the mean when centered, the buffer with momentum', () => {
    expect(Object.keys(rmsprop().states)).toEqual(['v']);
    expect(Object.keys(rmsprop({ centered: true, momentum: 0.9 }).states)).toEqual(['v', 'gAvg', 'buf']);
  });

  it('refuses alpha or momentum outside [0, 1), naming it', () => {
    expect(() => rmsprop({ alpha: 1 })).toThrow(/rmsprop: alpha must be in \[0, 1\), got 1/);
    expect(() => rmsprop({ momentum: -0.1 })).toThrow(/rmsprop: momentum must be in \[0, 1\)/);
  });
});
