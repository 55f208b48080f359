// AdEMAMix (Pagliardini, Ablin, Grangier, 2024, Algorithm 1). PyTorch has none; the defaults are
// the authors' (apple/ml-ademamix): betas (0.9, 0.999, 0.9999), α 2, ε 1e−8, decay 0, no warmup.
//   m1 ← β1·m1 + (1−β1)·g;  m2 ← β3·m2 + (1−β3)·g;  v ← β2·v + (1−β2)·g²
//   θ ← θ·(1 − λ_eff) − η·(m1/(1−β1^t) + α·m2) / (√(v/(1−β2^t)) + ε)
// with the paper's warmups when asked (steps; 0 = none, their None): α_t rises linearly from 0 to
// α over alphaWarmup steps, β3_t moves from β1 to β3 over beta3Warmup steps linearly in half-life.
// Both are host uniforms. The slow EMA m2 moves by 1e−4 of the gradient per step, far below a bf16
// rounding step of its group's largest element; with bf16 scales rounded up that element is pumped
// up one bf16 step at a time (measured: 5.7× the exact EMA after 1000 noisy steps), and v
// (β2 = 0.999) stalls below a steady g² (steps 1.78× the float64 reference's after 1000 steps). So
// m2 and v keep f32 group scales (0.0625 byte/param more each); m1 follows the scale option.
// examples/ademamix.ts is the same optimizer written by hand, as a user would.

import { add, div, mul, sqrt, square, sub } from '../dsl/ops.ts';
import type { UniformContext } from './define.ts';
import { decayFactor, defineOptimizer, ema, HyperError, momentum, unitInterval, variance } from './define.ts';

const defaults = {
  lr: 1e-3,
  betas: [0.9, 0.999, 0.9999] as readonly number[],
  alpha: 2,
  alphaWarmup: 0,
  beta3Warmup: 0,
  eps: 1e-8,
  weightDecay: 0,
  decoupleLr: false,
};
type AdemamixHyper = typeof defaults;

/** The authors' half-life schedule: β whose half-life (in steps) is linear in t/T. */
function beta3At(t: number, h: AdemamixHyper): number {
  const [b1 = 0.9, , b3 = 0.9999] = h.betas;
  if (!(t < h.beta3Warmup)) return b3;
  const halfLife = (b: number) => Math.log(0.5) / Math.log(b + 1e-8) - 1;
  const a = t / h.beta3Warmup;
  return 0.5 ** (1 / ((1 - a) * halfLife(b1) + a * halfLife(b3) + 1));
}

/** AdEMAMix: Adam's fast EMA mixed with a slow one, decoupled weight decay. */
export const ademamix = defineOptimizer({
  name: 'ademamix',
  hyper: defaults,
  validate: (h: AdemamixHyper) => {
    unitInterval('ademamix', 'betas', h.betas);
    for (const k of ['alpha', 'alphaWarmup', 'beta3Warmup'] as const)
      if (!(h[k] >= 0)) throw new HyperError(`ademamix: ${k} must be >= 0, got ${h[k]}`);
  },
  state: { m1: momentum(), m2: momentum({ scale: 'f32' }), v: variance({ scale: 'f32' }) },
  uniforms: (h: AdemamixHyper, c: UniformContext) => {
    const [b1 = 0.9, b2 = 0.999] = h.betas;
    const t = Math.max(c.step, 1);
    const b3 = beta3At(t, h);
    return {
      stepSize: h.lr / (1 - b1 ** t),
      slowSize: h.lr * (t < h.alphaWarmup ? (t / h.alphaWarmup) * h.alpha : h.alpha),
      bc2Sqrt: Math.sqrt(1 - b2 ** t),
      decay: decayFactor(h, c),
      oneMinusBeta1: 1 - b1,
      oneMinusBeta2: 1 - b2,
      beta3: b3,
      oneMinusBeta3: 1 - b3,
    };
  },
  numericsK: 0.1,
  update: ({ p, g, m1, m2, v }, u) => {
    const fast = ema(m1!, g!, u('betas0'), u('oneMinusBeta1'));
    const slow = ema(m2!, g!, u('beta3'), u('oneMinusBeta3'));
    const v1 = ema(v!, square(g!), u('betas1'), u('oneMinusBeta2'));
    const denom = add(div(sqrt(v1), u('bc2Sqrt')), u('eps'));
    const mix = add(mul(u('stepSize'), fast), mul(u('slowSize'), slow));
    return { p: sub(mul(p!, u('decay')), div(mix, denom)), m1: fast, m2: slow, v: v1 };
  },
});
