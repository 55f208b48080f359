// Adam and AdamW (spec §3), in the fused order of the reference:
//   Adam only:  g ← g + λθ                       (L2, coupled)
//   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²    (stored without bias correction)
//   AdamW only: θ ← θ·(1 − λ_eff)                 (decoupled; λ_eff = λη, or λη/η0 with decoupleLr)
//   θ ← θ − (η/(1−β1^t)) · m / (√v/√(1−β2^t) + ε)
// computed as θ − (η·√(1−β2^t)/(1−β1^t)) · m / (√v + ε·√(1−β2^t)): the same function with the
// bias correction of v folded into two per-tensor factors, so an element costs one division, not
// two (torch rounds √v/√(1−β2^t) separately: the results differ in the last bits only).
// Bias corrections and decay factors are computed on the host in float64, per tensor and step.

import { add, div, mul, sqrt, square, sub } from '../dsl/ops.ts';
import type { UniformContext } from './define.ts';
import { decayFactor, defineOptimizer, ema, momentum, unitInterval, variance } from './define.ts';

const defaults = { lr: 1e-3, betas: [0.9, 0.999] as readonly number[], eps: 1e-8, weightDecay: 0, decoupleLr: false };
type AdamHyper = typeof defaults;

function hostUniforms(h: AdamHyper, c: UniformContext, decoupled: boolean) {
  const [b1 = 0.9, b2 = 0.999] = h.betas;
  const t = Math.max(c.step, 1);
  const bc2Sqrt = Math.sqrt(1 - b2 ** t);
  return {
    stepSize: (h.lr * bc2Sqrt) / (1 - b1 ** t),
    epsHat: h.eps * bc2Sqrt,
    decay: decoupled ? decayFactor(h, c) : 1,
    oneMinusBeta1: 1 - b1,
    oneMinusBeta2: 1 - b2,
  };
}

function validate(name: string) {
  return (h: AdamHyper) => {
    unitInterval(name, 'betas', h.betas);
  };
}

function make(name: 'adam' | 'adamw', decoupled: boolean, wd: number) {
  return defineOptimizer({
    name,
    hyper: { ...defaults, weightDecay: wd },
    validate: validate(name),
    state: { m: momentum(), v: variance() },
    uniforms: (h, c) => hostUniforms(h, c, decoupled),
    numericsK: 0.1,
    update: ({ p, g, m, v }, u) => {
      const grad = decoupled ? g! : add(g!, mul(u('weightDecay'), p!));
      const m1 = ema(m!, grad, u('betas0'), u('oneMinusBeta1'));
      const v1 = ema(v!, square(grad), u('betas1'), u('oneMinusBeta2'));
      const p0 = decoupled ? mul(p!, u('decay')) : p!;
      const denom = add(sqrt(v1), u('epsHat'));
      return { p: sub(p0, mul(u('stepSize'), div(m1, denom))), m: m1, v: v1 };
    },
  });
}

/** Adam with L2 weight decay added to the gradient (torch.optim.Adam). */
export const adam = make('adam', false, 0);
/** AdamW: decoupled weight decay, default 1e−2 (torch.optim.AdamW). */
export const adamw = make('adamw', true, 1e-2);
