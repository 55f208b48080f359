// Adam's 8-bit second moment never decodes a nonzero v as 0 (dsl/quant.ts): the failure it prevents,
// reproduced on one group. An old large gradient sets the group's scale of √v; a later gradient
// 10^4× smaller in the same group has √v below scale/510, which the reference stores as code 0,
// while its momentum group (whose scale has decayed) keeps a nonzero code. A batch where that
// element's gradient is exactly 0 (a ReLU off, a blank pixel) then steps it by lr·m/ε, not by ~lr.

import { expect, it } from 'vitest';
import { createOptimizer } from '../runtime/optimizer.ts';
import { adam, adamw } from './adam.ts';
import { Reference } from './reference.ts';

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
