// Adam's 8-bit second moment never decodes a nonzero v as 0 (dsl/quant.ts): the failure it prevents,
// reproduced on one group. An old large gradient sets the group's scale of √v; a later gradient
// 10^4× smaller in the same group has √v below scale/510, which the reference stores as code 0,
// while its momentum group (whose scale has decayed) keeps a nonzero code. A batch where that
// element's gradient is exactly 0 (a ReLU off, a blank pixel) then steps it by lr·m/ε, not by ~lr.

import { expect, it } from 'vitest';
import { createOptimizer } from '../runtime/optimizer.ts';
import { adam, adamw } from './adam.ts';
import { Reference } from './reference.ts';
import { fusedKernel } from './storage.ts';
import type { Expr } from '../compiler/ir/ir.ts';
import { children, topo } from '../compiler/ir/ir.ts';
import { roots } from '../compiler/ir/kernel.ts';

it.each([
  ['adamw', adamw],
  ['adam', adam],
] as const)(
  '%s: an element whose √v is far below its group scale steps by about lr, not lr·m/ε',
  async (name, make) => {
    const lr = 1e-3,
      n = 32;
    const w0 = new Float32Array(n).fill(0.5);
    const opt = await createOptimizer(make({ lr, weightDecay: 0 }), { w: w0 }, { paramDtype: 'f32' });
    const ref = new Reference(name, w0, { lr, weightDecay: 0 });
    const grads: Float32Array[] = [];
    for (let s = 0; s < 60; s++) {
      const g = new Float32Array(n);
      if (s === 0)
        g[0] = 1; // sets the √v scale of the group, then stops
      else if (s < 59) g[1] = 1e-4; // steady and small; the last step has g = 0 everywhere
      grads.push(g);
    }
    let before = w0[1]!;
    for (const [s, g] of grads.entries()) {
      const refBefore = ref.p[1]!;
      await opt.step({ w: g });
      ref.step(g);
      const after = (await opt.exportFp32()).w![1]!;
      // Adam's step is at most about lr per element (|m̂/√v̂| ≲ 1 for a steady gradient); the float64
      // reference takes ≈ lr here too. 3·lr leaves room for 8-bit rounding of m and v.
      expect(
        Math.abs(after - before),
        `step ${s + 1}: |Δw[1]| (reference ${Math.abs(ref.p[1]! - refBefore)})`,
      ).toBeLessThan(3 * lr);
      before = after;
    }
  },
);

// The √ codec keeps a non-finite-gradient element's stored √v (dsl/codec.ts `preimage`), so the
// √ the update takes of the new v is the one the encode stores: one √ per element, not two. An
// element's value is never divided by a per-tensor or per-group one (the bias correction of v is
// folded into two per-tensor uniforms; the codes multiply by the scale's reciprocal): on a GPU
// each such ÷ costs a division per element where a multiply does. (A constant divisor, as in the
// decodes' c/127, is a multiply by its reciprocal in every renderer already.)
it.each([
  ['adamw', adamw],
  ['adam', adam],
] as const)('%s: its fused kernel takes one √, and divides no element by a tensor or group value', (_name, make) => {
  const k = fusedKernel(make());
  const nodes = topo(roots(k));
  expect(nodes.filter((e) => e.op === 'unary' && e.fn === 'sqrt').length).toBe(1);
  // 2: varies per element; 1: per group (under a group maximum); 0: per tensor or constant.
  const level = (e: Expr): number =>
    e.op === 'load' ? (e.axis === 'element' ? 2 : 1) : e.op === 'groupMax' ? 1 : Math.max(0, ...children(e).map(level));
  const byCoarser = nodes.filter(
    (e) => e.op === 'binary' && e.fn === 'div' && level(e.a) === 2 && level(e.b) < 2 && e.b.op !== 'const',
  );
  expect(byCoarser.length).toBe(0);
});
