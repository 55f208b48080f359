// LARS (You, Gitman, Ginsburg 2017, "Large Batch Training of Convolutional Networks", Algorithm 1):
// SGD with momentum whose gradient is rescaled per tensor by the layer-wise trust ratio. Conventions,
// each named (timm's Lars, which follows the paper's equations):
//   r = τ·‖θ‖ / (‖g‖ + λ·‖θ‖ + ε), and r = 1 when ‖θ‖ or ‖g‖ is 0   (τ the trust coefficient, 0.001)
//   d = r·(g + λ·θ)                                                   (weight decay before the ratio)
//   m ← μ·m + (1 − dampening)·d                                       (m starts at 0, as FlashSGD's)
//   θ ← θ − η·(d + μ·m) with nesterov, else θ ← θ − η·m
// The ratio adapts every tensor (the paper; timm's always_adapt): timm skips it where λ = 0 by
// default. Defaults: lr 1 (timm; the paper's base rates are of that order), momentum 0.9 (the
// paper; it makes the 8-bit buffer exist), λ 0, τ 1e−3, ε 1e−8, no trust clipping.
// ‖θ‖ and ‖g‖ are per-tensor reductions (dsl tensorSum): the step runs a reduction pass first.

import { add, div, mul, sqrt, square, sub, tensorSum } from '../dsl/ops.ts';
import { defineOptimizer, HyperError, momentum, unitInterval } from './define.ts';
import { trustRatio } from './lamb.ts';

const defaults = {
  lr: 1,
  momentum: 0.9,
  dampening: 0,
  weightDecay: 0,
  trustCoeff: 1e-3,
  eps: 1e-8,
  nesterov: false,
};

/** LARS with an 8-bit momentum buffer. */
export const lars = defineOptimizer({
  name: 'lars',
  hyper: defaults,
  validate: (h) => {
    unitInterval('lars', 'momentum', h.momentum);
    unitInterval('lars', 'dampening', h.dampening);
    if (!(h.momentum > 0))
      throw new HyperError(`lars: momentum must be > 0 (the buffer is its state), got ${h.momentum}`);
    if (!(h.trustCoeff > 0)) throw new HyperError(`lars: trustCoeff must be > 0, got ${h.trustCoeff}`);
    if (h.nesterov && h.dampening !== 0)
      throw new HyperError(`lars: nesterov needs dampening 0, got dampening ${h.dampening}`);
  },
  state: { m: momentum() },
  uniforms: (h) => ({ keep: 1 - h.dampening }),
  // A step moves θ by about η·τ·‖θ‖/√n per element.
  numericsK: 1e-3,
  update: ({ p, g, m }, u, h) => {
    const w2 = tensorSum(square(p!)),
      g2 = tensorSum(square(g!));
    const wn = sqrt(w2);
    const local = div(mul(u('trustCoeff'), wn), add(add(sqrt(g2), mul(u('weightDecay'), wn)), u('eps')));
    const d = mul(trustRatio(w2, g2, local), add(g!, mul(u('weightDecay'), p!)));
    const m1 = add(mul(u('momentum'), m!), mul(u('keep'), d));
    const step = h.nesterov ? add(d, mul(u('momentum'), m1)) : m1;
    return { p: sub(p!, mul(u('lr'), step)), m: m1 };
  },
});
