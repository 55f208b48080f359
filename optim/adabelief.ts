// AdaBelief (Zhuang et al., NeurIPS 2020, Algorithm 2). PyTorch has no AdaBelief, so the paper
// and the authors' adabelief-pytorch 0.2 set the choices: betas (0.9, 0.999), ε 1e−16,
// decoupled weight decay (their weight_decouple=True, decayed by λη as AdamW), bias correction;
// no rectification (their default rectify=True is RAdam's addition, not the paper's algorithm)
// and no AMSGrad. ε enters twice, as in the paper and the package:
//   θ ← θ·(1 − λ_eff)
//   m ← β1·m + (1−β1)·g
//   s ← β2·s + (1−β2)·(g − m)² + ε                 (the belief: g's deviation from its EMA)
//   θ ← θ − (η/(1−β1^t)) · m / (√(s/(1−β2^t)) + ε)
// Stored: `s` without its ε terms, which sum to ε(1−β2^t)/(1−β2) and so add exactly
// ε/(1−β2) to s/(1−β2^t): a host uniform. A zero gradient then leaves every state at 0.
// s (β2 = 0.999) keeps f32 group scales: with bf16 scales rounded up a group's largest s cannot
// follow a belief that shrinks by 0.1% a step, and steps fell to 0.23× the float64 reference's
// after 3000 steady steps (measured; 1.01× with f32). m follows the scale option.

import { add, div, mul, sqrt, square, sub } from '../dsl/ops.ts';
import type { UniformContext } from './define.ts';
import { decayFactor, defineOptimizer, ema, momentum, unitInterval, variance } from './define.ts';

const defaults = { lr: 1e-3, betas: [0.9, 0.999] as readonly number[], eps: 1e-16, weightDecay: 0, decoupleLr: false };
type AdaBeliefHyper = typeof defaults;

/** AdaBelief with decoupled weight decay and bias correction (the paper's Algorithm 2). */
export const adabelief = defineOptimizer({
  name: 'adabelief',
  hyper: defaults,
  validate: (h: AdaBeliefHyper) => unitInterval('adabelief', 'betas', h.betas),
  state: { m: momentum(), s: variance({ scale: 'f32' }) },
  uniforms: (h: AdaBeliefHyper, c: UniformContext) => {
    const [b1 = 0.9, b2 = 0.999] = h.betas;
    const t = Math.max(c.step, 1);
    return {
      stepSize: h.lr / (1 - b1 ** t),
      bc2: 1 - b2 ** t,
      epsSum: h.eps / (1 - b2),
      decay: decayFactor(h, c),
      oneMinusBeta1: 1 - b1,
      oneMinusBeta2: 1 - b2,
    };
  },
  numericsK: 0.1,
  update: ({ p, g, m, s }, u) => {
    const m1 = ema(m!, g!, u('betas0'), u('oneMinusBeta1'));
    const s1 = ema(s!, square(sub(g!, m1)), u('betas1'), u('oneMinusBeta2'));
    const denom = add(sqrt(add(div(s1, u('bc2')), u('epsSum'))), u('eps'));
    return { p: sub(mul(p!, u('decay')), mul(u('stepSize'), div(m1, denom))), m: m1, s: s1 };
  },
});
