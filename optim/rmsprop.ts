// RMSprop as torch.optim.RMSprop has it (defaults lr 1e−2, α 0.99, ε 1e−8), coupled L2 decay:
//   g ← g + λθ
//   v ← α·v + (1−α)·g²                                  (square_avg)
//   centered: ḡ ← α·ḡ + (1−α)·g;  d ← √(v − ḡ²) + ε     (grad_avg)
//   else:     d ← √v + ε                                 (ε outside the root, as torch adds it)
//   momentum μ > 0: b ← μ·b + g/d;  θ ← θ − η·b          (momentum_buffer)
//   else:     θ ← θ − η·g/d
// Centered, the stored `v` is the centered variance c = v − ḡ² itself, updated as
//   c ← α·c + α(1−α)·(g − ḡ_old)²
// which is algebraically torch's v − ḡ² (expand both), but non-negative by construction: stored
// as v and ḡ in 8 bits each, v̂ − ḡ̂² would cancel, go negative or 0 for elements whose variance is
// small against their group, and the step g/ε would explode. So c takes the variance codec.
// v and ḡ (α = 0.99) keep f32 group scales: with bf16 scales rounded up, a group's largest v stalls
// below a steady g² (steps 1.14–1.25× torch's after 1000 steady steps, measured; exact with f32). The
// buffer follows the scale option.
// `centered` and whether there is a momentum buffer shape the kernel: fixed at creation.

import type { Expr } from '../dsl/ops.ts';
import { add, div, mul, sqrt, square, sub } from '../dsl/ops.ts';
import type { Values } from './fuse.ts';
import type { StateSpec } from './define.ts';
import { defineOptimizer, ema, momentum, unitInterval, variance } from './define.ts';

const defaults = { lr: 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0, centered: false };
type RmspropHyper = typeof defaults;

/** RMSprop with optional centering, momentum and L2 weight decay (torch.optim.RMSprop). */
export const rmsprop = defineOptimizer({
  name: 'rmsprop',
  hyper: defaults,
  validate: (h: RmspropHyper) => {
    unitInterval('rmsprop', 'alpha', h.alpha);
    unitInterval('rmsprop', 'momentum', h.momentum);
  },
  state: (h: RmspropHyper): Record<string, StateSpec> => ({
    v: variance({ scale: 'f32' }),
    ...(h.centered ? { gAvg: momentum({ scale: 'f32' }) } : {}),
    ...(h.momentum > 0 ? { buf: momentum() } : {}),
  }),
  uniforms: (h: RmspropHyper) => ({ oneMinusAlpha: 1 - h.alpha, alphaOneMinusAlpha: h.alpha * (1 - h.alpha) }),
  numericsK: 0.1,
  update: (s, u, h): Values => {
    const { p, g, v } = s;
    const grad = add(g!, mul(u('weightDecay'), p!));
    const out: Record<string, Expr> = {};
    if (h.centered) {
      const gAvg = s['gAvg']!;
      out['v'] = add(mul(u('alpha'), v!), mul(u('alphaOneMinusAlpha'), square(sub(grad, gAvg))));
      out['gAvg'] = ema(gAvg, grad, u('alpha'), u('oneMinusAlpha'));
    } else out['v'] = ema(v!, square(grad), u('alpha'), u('oneMinusAlpha'));
    let step = div(grad, add(sqrt(out['v']), u('eps')));
    if (h.momentum > 0) {
      out['buf'] = add(mul(u('momentum'), s['buf']!), step);
      step = out['buf'];
    }
    return { ...out, p: sub(p!, mul(u('lr'), step)) };
  },
});
