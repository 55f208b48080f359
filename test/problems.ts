// Shared training problems for optimizer tests: a deterministic least-squares problem (loss
// ½‖Aw − b‖² / R over R rows and D unknowns) and the hyperparameters each built-in is checked with.

import type { OptimizerDef } from '../optim/define.ts';
import { adam, adamw, lion, sgd, sgdw } from '../optim/index.ts';
import type { RefHyper, RefName } from '../optim/reference.ts';
import { prng } from '../props/prng.ts';

export function leastSquares(seed: number, D = 64, R = 96) {
  const r = prng(seed),
    rnd = () => r() * 2 - 1;
  const A = Float64Array.from({ length: R * D }, rnd),
    b = Float64Array.from({ length: R }, rnd);
  const w0 = Float32Array.from({ length: D }, () => rnd() * 0.5);
  const residual = (w: ArrayLike<number>) =>
    Float64Array.from({ length: R }, (_, i) => {
      let x = -b[i]!;
      for (let j = 0; j < D; j++) x += A[i * D + j]! * w[j]!;
      return x;
    });
  const grad = (w: ArrayLike<number>) => {
    const e = residual(w);
    return Float64Array.from({ length: D }, (_, j) => {
      let x = 0;
      for (let i = 0; i < R; i++) x += A[i * D + j]! * e[i]!;
      return x / R;
    });
  };
  const loss = (w: ArrayLike<number>) => residual(w).reduce((a, x) => a + 0.5 * x * x, 0) / R;
  return { w0, grad, loss };
}

/** Every built-in with the hyperparameters of the agreement tests (spec §5 test_optimizers). */
export const builtins: readonly [RefName, (h: RefHyper) => OptimizerDef, RefHyper][] = [
  ['sgd', (h) => sgd(h as never) as OptimizerDef, { lr: 0.1, momentum: 0.9, weightDecay: 0.1 }],
  ['sgdw', (h) => sgdw(h as never) as OptimizerDef, { lr: 0.1, momentum: 0.9, weightDecay: 0.1 }],
  ['adam', (h) => adam(h as never) as OptimizerDef, { lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.1 }],
  ['adamw', (h) => adamw(h as never) as OptimizerDef, { lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.1 }],
  ['lion', (h) => lion(h as never) as OptimizerDef, { lr: 0.001, betas: [0.9, 0.99], weightDecay: 0.1 }],
];
