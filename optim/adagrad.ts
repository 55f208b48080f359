// Adagrad as torch.optim.Adagrad has it (defaults lr 1e−2, lr_decay 0, initial_accumulator_value
// 0, ε 1e−10), coupled L2 decay, t the tensor's step count from 1:
//   g ← g + λθ
//   S ← S + g²                                    (state_sum, starting at S0)
//   θ ← θ − η/(1 + (t−1)·lr_decay) · g / (√S + ε)  (ε outside the root, as torch adds it)
// Stored: `sum` = S − S0, so it starts at 0 like every state here; S0 is added back as a uniform.
// The sum grows without bound, and by ever smaller steps relative to itself (1/t for a steady
// gradient). In 8 bits with bf16 group scales rounded up, the group's largest element decodes to
// its rounded-up scale and loses every increment under a bf16 rounding step: measured, steady
// gradients' steps were 2.4–3.2× torch's after 2000 steps (about 13× after 20000). With f32
// scales the largest element is exact and the others keep their ratio to it: 0.85–1.14× after
// 2000. So `sum` always keeps f32 group scales (the scale option does not apply to it).
// optim/adagrad.test.ts keeps it so; docs/optimizers.md has the numbers and what stays off.

import { add, div, mul, sqrt, square, sub } from '../dsl/ops.ts';
import type { UniformContext } from './define.ts';
import { defineOptimizer, HyperError, variance } from './define.ts';

const defaults = { lr: 1e-2, lrDecay: 0, weightDecay: 0, initialAccumulatorValue: 0, eps: 1e-10 };
type AdagradHyper = typeof defaults;

/** Adagrad with lr decay, an initial accumulator and L2 weight decay (torch.optim.Adagrad). */
export const adagrad = defineOptimizer({
  name: 'adagrad',
  hyper: defaults,
  validate: (h: AdagradHyper) => {
    for (const k of ['lrDecay', 'initialAccumulatorValue'] as const)
      if (!(h[k] >= 0)) throw new HyperError(`adagrad: ${k} must be >= 0, got ${h[k]}`);
  },
  state: { sum: variance({ scale: 'f32' }) },
  uniforms: (h: AdagradHyper, c: UniformContext) => ({
    clr: h.lr / (1 + (Math.max(c.step, 1) - 1) * h.lrDecay),
  }),
  numericsK: 0.1,
  update: ({ p, g, sum }, u) => {
    const grad = add(g!, mul(u('weightDecay'), p!));
    const sum1 = add(sum!, square(grad));
    const std = add(sqrt(add(sum1, u('initialAccumulatorValue'))), u('eps'));
    return { p: sub(p!, mul(u('clr'), div(grad, std))), sum: sum1 };
  },
});
