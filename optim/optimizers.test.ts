// Descent and zero gradients for every built-in optimizer (spec §5 test_optimizers). Agreement with
// the float64 reference runs on every backend in the conformance suite (test/conformance-optimizers.test.ts).

import { describe, expect, it } from 'vitest';
import { uniformF32 } from '../props/prng.ts';
import { createOptimizer, loadOptimizer } from '../runtime/optimizer.ts';
import { fromBf16 } from '../runtime/codecs.ts';
import { builtins, leastSquares, variantName } from '../test/problems.ts';

/** Whose weight decay is L2 added to the gradient (so decay alone moves their states). */
const coupled = ['sgd', 'adam', 'rmsprop', 'adagrad', 'lars'];

describe.each(builtins.map(([name, make, h]) => [variantName(name, h), name, make, h] as const))(
  '%s',
  (_label, name, make, h) => {
    it('descent: the loss strictly decreases over 10 steps', async () => {
      // The spec's descent learning rates: 1e-2, Adam 1e-3 (larger ones make momentum overshoot).
      // RMSprop, AdaBelief and AdEMAMix normalize like Adam (RMSprop's first steps are 1/√(1−α) =
      // 10 times lr) and take Adam's; Adagrad's steps are at most lr, as SGD's are about lr.
      // LARS scales its step by the trust coefficient (0.01 here): lr 1 makes lr·τ SGD's 1e-2.
      const lr = name === 'lars' ? 1 : ['sgd', 'sgdw', 'lion', 'adagrad'].includes(name) ? 1e-2 : 1e-3;
      const pr = leastSquares(11);
      const opt = await createOptimizer(make({ ...h, lr, weightDecay: 0 }), { w: pr.w0 });
      const losses: number[] = [];
      for (let s = 0; s <= 10; s++) {
        const w = (await opt.exportFp32()).w!;
        losses.push(pr.loss(w));
        if (s < 10) await opt.step({ w: Float32Array.from(pr.grad(w)) });
      }
      for (let i = 1; i < losses.length; i++) expect(losses[i]!, `step ${i}`).toBeLessThan(losses[i - 1]!);
    });

    it('a checkpoint loads by its name alone and steps on bit for bit', async () => {
      const a = await createOptimizer(make(h), { w: uniformF32(100, 1), b: uniformF32(7, 2) });
      await a.step({ w: uniformF32(100, 3, 0.1), b: uniformF32(7, 4, 0.1) });
      const b = await loadOptimizer(await a.save());
      for (const o of [a, b]) await o.step({ w: uniformF32(100, 5, 0.1), b: uniformF32(7, 6, 0.1) });
      expect(b.def.structure).toBe(a.def.structure);
      for (const f of a.fields)
        expect([...(await b.readField(f.name))], f.name).toEqual([...(await a.readField(f.name))]);
    });

    it('zero gradients for 5 steps: states stay exactly zero; params unchanged without decay, shrinking with it', async () => {
      const w0 = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i) * 2);
      for (const wd of [0, 0.1]) {
        const opt = await createOptimizer(make({ ...h, weightDecay: wd }), { w: w0 });
        const before = (await opt.readParams()).w as Uint16Array;
        for (let s = 0; s < 5; s++) await opt.step({ w: new Float32Array(100) });
        // Coupled L2 turns decay into a gradient, so their states move when wd > 0 (spec §5).
        if (wd === 0 || !coupled.includes(name))
          for (const f of opt.fields)
            if (f.owner !== 'p' && f.axis === 'element') {
              const codes = await opt.readField(f.name);
              expect(
                [...codes].every((c) => c === 0),
                `${f.name} codes`,
              ).toBe(true);
            }
        const after = (await opt.readParams()).w as Uint16Array;
        const a = fromBf16(after),
          b = fromBf16(before);
        if (wd === 0) expect([...after]).toEqual([...before]);
        else {
          a.forEach((x, i) => expect(Math.abs(x)).toBeLessThanOrEqual(Math.abs(b[i]!)));
          expect(a.some((x, i) => Math.abs(x) < Math.abs(b[i]!))).toBe(true);
        }
      }
    });
  },
);
