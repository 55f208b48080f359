// LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning", Algorithm 2): Adam's
// direction, rescaled per tensor by the trust ratio ‖θ‖/‖u‖. Conventions, each named:
//   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²         (stored without bias correction)
//   u = (m/(1−β1^t)) / (√(v/(1−β2^t)) + ε) + λ·θ       (weight decay inside u, raw λ: the paper, timm, apex)
//   r = ‖θ‖/‖u‖, and r = 1 when either norm is 0        (timm's and apex's guard; φ = identity, no clip)
//   θ ← θ − η·r·u
// Bias correction on (the paper's Algorithm 2, timm's default); ε 1e−6 (timm, apex). The ratio
// adapts every tensor, weight decay or not (the paper; timm's always_adapt, apex's use_nvlamb):
// those two libraries skip it where λ = 0 by default. Both clip the global gradient norm to 1
// by default: here that is createOptimizer's `clipGradNorm: 1`, off unless asked (the paper has none).
// ‖θ‖ and ‖u‖ are per-tensor reductions (dsl tensorSum): the step runs a reduction pass first.

import { add, and, div, gt, mul, select, sqrt, square, sub, tensorSum } from '../dsl/ops.ts';
import type { Expr } from '../dsl/ops.ts';
import { defineOptimizer, ema, momentum, unitInterval, variance } from './define.ts';

/** ‖a‖/‖b‖ from the squared norms, 1 when either is 0 (so a zero tensor or a zero update moves by the plain rule). */
export const trustRatio = (a2: Expr, b2: Expr, ratio: Expr = div(sqrt(a2), sqrt(b2))): Expr =>
  select(and(gt(a2, 0), gt(b2, 0)), ratio, 1);

/** LAMB with bias correction and decay inside the update (8-bit m and v). */
export const lamb = defineOptimizer({
  name: 'lamb',
  hyper: { lr: 1e-3, betas: [0.9, 0.999] as readonly number[], eps: 1e-6, weightDecay: 0.01 },
  validate: (h) => unitInterval('lamb', 'betas', h.betas),
  state: { m: momentum(), v: variance() },
  uniforms: (h, c) => {
    const [b1 = 0.9, b2 = 0.999] = h.betas;
    const t = Math.max(c.step, 1);
    return {
      invBc1: 1 / (1 - b1 ** t),
      bc2Sqrt: Math.sqrt(1 - b2 ** t),
      oneMinusBeta1: 1 - b1,
      oneMinusBeta2: 1 - b2,
    };
  },
  numericsK: 0.1,
  update: ({ p, g, m, v }, u) => {
    const m1 = ema(m!, g!, u('betas0'), u('oneMinusBeta1'));
    const v1 = ema(v!, square(g!), u('betas1'), u('oneMinusBeta2'));
    const adam = div(mul(m1, u('invBc1')), add(div(sqrt(v1), u('bc2Sqrt')), u('eps')));
    const step = add(adam, mul(u('weightDecay'), p!));
    const r = trustRatio(tensorSum(square(p!)), tensorSum(square(step)));
    return { p: sub(p!, mul(mul(u('lr'), r), step)), m: m1, v: v1 };
  },
});
