// SGD and SGDW (spec §3). With momentum μ > 0 there is one state, the momentum buffer:
//   SGD only:  g ← g + λθ                      (L2, coupled)
//   m ← μ·m + (1 − d)·g                        (m starts at 0, so step 1 gives (1−d)·g)
//   SGDW only: θ ← θ·(1 − λ_eff)
//   θ ← θ − η·(g + μ·m) with nesterov, else θ ← θ − η·m
// With μ = 0 there is no state: SGD θ ← θ − η(g + λθ); SGDW θ ← θ(1 − λ_eff) − ηg.
// Whether there is a momentum buffer, and nesterov, shape the kernel: they are fixed at creation.

import { add, mul, sub } from '../dsl/ops.ts';
import type { Values } from './fuse.ts';
import type { StateSpec, UniformContext } from './define.ts';
import { decayFactor, defineOptimizer, HyperError, momentum, unitInterval } from './define.ts';

const defaults = { lr: 1e-3, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, decoupleLr: false };
type SgdHyper = typeof defaults;

function make(name: 'sgd' | 'sgdw', decoupled: boolean) {
  return defineOptimizer({
    name,
    hyper: defaults,
    validate: (h: SgdHyper) => {
      unitInterval(name, 'momentum', h.momentum);
      unitInterval(name, 'dampening', h.dampening);
      if (h.nesterov && !(h.momentum > 0 && h.dampening === 0))
        throw new HyperError(
          `${name}: nesterov needs momentum > 0 and dampening 0, got momentum ${h.momentum}, dampening ${h.dampening}`,
        );
    },
    // Presence of the buffer is structural; a def with momentum 0 has no state at all.
    state: (h: SgdHyper): Record<string, StateSpec> => (h.momentum > 0 ? { m: momentum() } : {}),
    uniforms: (h: SgdHyper, c: UniformContext) => {
      return { decay: decoupled ? decayFactor(h, c) : 1, keep: 1 - h.dampening };
    },
    update: (v, u, h): Values => {
      const { p, g } = v;
      const grad = decoupled ? g! : add(g!, mul(u('weightDecay'), p!));
      const p0 = decoupled ? mul(p!, u('decay')) : p!;
      if (!(h.momentum > 0)) return { p: sub(p0, mul(u('lr'), grad)) };
      const m1 = add(mul(u('momentum'), v['m']!), mul(u('keep'), grad));
      const step = h.nesterov ? add(grad, mul(u('momentum'), m1)) : m1;
      return { p: sub(p0, mul(u('lr'), step)), m: m1 };
    },
  });
}

/** SGD with optional momentum, dampening, nesterov and L2 weight decay (torch.optim.SGD). */
export const sgd = make('sgd', false);
/** SGD with decoupled weight decay (the paper's form). */
export const sgdw = make('sgdw', true);
