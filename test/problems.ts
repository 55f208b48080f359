// Shared training problems for optimizer tests: a deterministic least-squares problem (loss
// ½‖Aw − b‖² / R over R rows and D unknowns) and the hyperparameters each built-in is checked with.

import type { OptimizerDef } from '../optim/define.ts';
import { adam, adamw, lion, sgd, sgdw } from '../optim/index.ts';
import type { RefHyper, RefName } from '../optim/reference.ts';
import { prng } from '../props/prng.ts';
import type { FieldArray } from '../compiler/ir/kernel.ts';
import type { Hyper } from '../optim/define.ts';
import type { Session } from '../runtime/session.ts';

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

/** The conformance configurations: every built-in × scale storage × master bits (45). */
const conformanceDefs: [string, OptimizerDef][] = [
  ['sgd', sgd({ lr: 0.05, momentum: 0.9, weightDecay: 0.01 }) as OptimizerDef],
  ['sgdw', sgdw({ lr: 0.05, momentum: 0.9, weightDecay: 0.01, nesterov: true }) as OptimizerDef],
  ['adam', adam({ lr: 1e-2, weightDecay: 0.01 }) as OptimizerDef],
  ['adamw', adamw({ lr: 1e-2 }) as OptimizerDef],
  ['lion', lion({ lr: 1e-3, weightDecay: 0.1 }) as OptimizerDef],
];
export const conformanceConfigs = conformanceDefs.flatMap(([name, def]) =>
  (['bf16', 'fp16', 'f32'] as const).flatMap((scale) =>
    ([24, 32, null] as const).map((bits) => ({ name, def, scale, bits, key: `${name}/${scale}/${bits}` })),
  ),
);
export type ConformanceConfig = (typeof conformanceConfigs)[number];

/** Half a bf16 ULP at x (the ECC scale S of its narrow value; subnormals share the smallest). */
export const halfUlpBf16 = (x: number): number => {
  const a = Math.abs(x);
  return a === 0 ? 2 ** -134 : 2 ** (Math.max(Math.floor(Math.log2(a)), -126) - 8);
};

/** Every stored field of an optimizer, read back whole: what the agreement tests compare. */
export async function stored(opt: Session<Hyper>): Promise<Record<string, FieldArray>> {
  const out: Record<string, FieldArray> = {};
  for (const f of opt.fields) out[f.name] = await opt.readField(f.name);
  return out;
}
