// Lion (spec §3): u = sign(β1·m + (1−β1)·g) with sign(0) = 0; m ← β2·m + (1−β2)·g;
// θ ← θ(1 − λ_eff) − η·u. Decoupled decay only; no step counter in the math.

import { mul, sign, sub } from '../dsl/ops.ts';
import { decayFactor, defineOptimizer, ema, momentum, unitInterval } from './define.ts';

export const lion = defineOptimizer({
  name: 'lion',
  hyper: { lr: 1e-3, betas: [0.9, 0.99] as readonly number[], weightDecay: 0, decoupleLr: false },
  validate: (h) => unitInterval('lion', 'betas', h.betas),
  state: { m: momentum() },
  uniforms: (h, c) => ({
    oneMinusBeta1: 1 - h.betas[0]!,
    oneMinusBeta2: 1 - h.betas[1]!,
    decay: decayFactor(h, c),
  }),
  update: ({ p, g, m }, u) => {
    const direction = sign(ema(m!, g!, u('betas0'), u('oneMinusBeta1')));
    return { p: sub(mul(p!, u('decay')), mul(u('lr'), direction)), m: ema(m!, g!, u('betas1'), u('oneMinusBeta2')) };
  },
});
