// Adagrad's accumulator grows without bound, by a relative 1/t per step for a steady gradient:
// after a few hundred steps every increment is far below an 8-bit code step. Stored as √S in 8
// bits with f32 group scales, a step after thousands of them must still be torch's step
// η·g/(√S + ε) within the 8-bit error, for every element of a group whose gradients span 100×.
// (With bf16 scales rounded up, measured: 2.4–3.2× torch's step after 2000 steady steps.)

import { describe, expect, it } from 'vitest';
import { prng } from '../props/prng.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import { lastStepRatios, quantile } from '../test/problems.ts';
import { adagrad } from './adagrad.ts';
import { Reference } from './reference.ts';

const N = 256;
/** Element i's gradient scale: 1 down to 0.01 across each group of 32. */
const size = (i: number) => 10 ** ((-2 * (i % 32)) / 31);
const run = (gradient: (t: number) => Float32Array) =>
  lastStepRatios(adagrad({ lr: 0.01 }), 'adagrad', { lr: 0.01 }, N, gradient, 2000);

describe('adagrad: the 8-bit accumulator over 2000 steps', () => {
  it('steady gradients: every element steps within 0.75–1.25× of float64', async () => {
    const g = Float32Array.from({ length: N }, (_, i) => size(i));
    const r = await run(() => g);
    console.log(`adagrad steady, last step ÷ float64: ${Math.min(...r).toFixed(3)}–${Math.max(...r).toFixed(3)}`);
    for (const [i, x] of r.entries()) expect(x, `element ${i}`).toBeGreaterThan(0.75);
    for (const [i, x] of r.entries()) expect(x, `element ${i}`).toBeLessThan(1.25);
  });

  it('Gaussian gradients: median within 0.95–1.05× of float64, 95th percentile below 1.4×', async () => {
    const rnd = prng(5);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
    const r = await run(() => Float32Array.from({ length: N }, (_, i) => size(i) * gauss()));
    console.log(
      `adagrad Gaussian, last step ÷ float64: 5% ${quantile(r, 0.05).toFixed(3)}, median ${quantile(r, 0.5).toFixed(3)}, 95% ${quantile(r, 0.95).toFixed(3)}`,
    );
    expect(quantile(r, 0.5)).toBeGreaterThan(0.95);
    expect(quantile(r, 0.5)).toBeLessThan(1.05);
    expect(quantile(r, 0.95)).toBeLessThan(1.4);
  });
});

describe('adagrad: what 8 bits cannot do', () => {
  // An element that falls silent keeps its sum while its group-mates' sums grow: its code, rounded
  // to the nearest step of a rising scale each launch, does not shrink by the sub-step amounts it
  // should, so its decoded sum rises with the group's. Its later steps come out smaller than
  // torch's, never larger (docs/optimizers.md).
  it('elements silent after step 50: their next step is smaller than float64’s, never over 1.1×', async () => {
    const rnd = prng(6);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
    const r = await run((t) =>
      Float32Array.from({ length: N }, (_, i) => (t <= 50 || t === 2000 || i % 2 === 0 ? size(i) * gauss() : 0)),
    );
    const silent = r.filter((_, i) => i % 2 === 1);
    console.log(
      `adagrad silent elements, last step ÷ float64: 5% ${quantile(silent, 0.05).toFixed(3)}, median ${quantile(silent, 0.5).toFixed(3)}, max ${Math.max(...silent).toFixed(3)}`,
    );
    for (const [k, x] of silent.entries()) expect(x, `element ${2 * k + 1}`).toBeLessThan(1.1);
  });
});

describe('adagrad: hyperparameters', () => {
  it('a large ε and an initial accumulator land where torch puts them (f32, within 1e-6 of float64)', async () => {
    const h = { lr: 0.1, eps: 0.05, initialAccumulatorValue: 0.02, lrDecay: 0.1, weightDecay: 0.1 };
    const w0 = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
    const opt = await createOptimizer(adagrad(h), { w: w0 }, { paramDtype: 'f32', quantize: false, gradDtype: 'f32' });
    const ref = new Reference('adagrad', w0, h);
    for (let t = 0; t < 5; t++) {
      const g = Float32Array.from({ length: 64 }, (_, i) => Math.cos(i * (t + 1)) * 0.1);
      await opt.step({ w: g });
      ref.step(g);
    }
    const w = (await opt.exportFp32()).w!;
    w.forEach((x, i) => expect(Math.abs(x - ref.p[i]!), `w[${i}]`).toBeLessThan(1e-6));
  });

  it('refuses a negative lrDecay or initial accumulator, naming it', () => {
    expect(() => adagrad({ lrDecay: -0.1 })).toThrow(/adagrad: lrDecay must be >= 0, got -0.1/);
    expect(() => adagrad({ initialAccumulatorValue: -1 })).toThrow(/adagrad: initialAccumulatorValue must be >= 0/);
  });
});
