// Shared training problems for optimizer tests: a deterministic least-squares problem (loss
// ½‖Aw − b‖² / R over R rows and D unknowns) and the hyperparameters each built-in is checked with.

import type { OptimizerDef } from '../optim/define.ts';
import { adabelief, adagrad, adam, adamw, ademamix, lamb, lars, lion, rmsprop, sgd, sgdw } from '../optim/index.ts';
import type { RefHyper, RefName } from '../optim/reference.ts';
import { Reference } from '../optim/reference.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import { prng, uniformF32 } from '../props/prng.ts';
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

/**
 * A long run on gradients that do not depend on the weights (f32 params and gradients, 8-bit
 * states): per element, the optimizer's last step over the float64 reference's last step, each
 * from its own state on the same gradient. What slowly moving 8-bit states drift to shows here.
 */
export async function lastStepRatios(
  def: OptimizerDef,
  name: RefName,
  h: RefHyper,
  n: number,
  gradient: (t: number) => Float32Array,
  steps: number,
): Promise<number[]> {
  const w0 = new Float32Array(n);
  const opt = await createOptimizer(def, { w: w0 }, { paramDtype: 'f32', gradDtype: 'f32' });
  const ref = new Reference(name, w0, h);
  let before: Float32Array = w0,
    refBefore = Float64Array.from(w0);
  for (let t = 1; t <= steps; t++) {
    const g = gradient(t);
    if (t === steps) [before, refBefore] = [(await opt.exportFp32()).w!, Float64Array.from(ref.p)];
    await opt.step({ w: g });
    ref.step(g);
  }
  const after = (await opt.exportFp32()).w!;
  return [...after].map((x, i) => (x - before[i]!) / (ref.p[i]! - refBefore[i]!));
}

/** The q-quantile of a list of numbers (nearest rank). */
export const quantile = (a: readonly number[], q: number): number =>
  [...a].sort((x, y) => x - y)[Math.round(q * (a.length - 1))]!;

/** Every built-in with the hyperparameters of the agreement tests (spec §5 test_optimizers). */
export const builtins: readonly [RefName, (h: RefHyper) => OptimizerDef, RefHyper][] = [
  ['sgd', (h) => sgd(h as never) as OptimizerDef, { lr: 0.1, momentum: 0.9, weightDecay: 0.1 }],
  ['sgdw', (h) => sgdw(h as never) as OptimizerDef, { lr: 0.1, momentum: 0.9, weightDecay: 0.1 }],
  ['adam', (h) => adam(h as never) as OptimizerDef, { lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.1 }],
  ['adamw', (h) => adamw(h as never) as OptimizerDef, { lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.1 }],
  ['lion', (h) => lion(h as never) as OptimizerDef, { lr: 0.001, betas: [0.9, 0.99], weightDecay: 0.1 }],
  ['rmsprop', (h) => rmsprop(h as never) as OptimizerDef, { lr: 0.01, alpha: 0.99, weightDecay: 0.1 }],
  // Centered, a steady gradient's variance is near 0 and steps are 10–50·lr: lr 1e-3 keeps them near
  // Adam's at 1e-2 (at 1e-2 torch's own decay-only steps overshoot and grow small weights).
  [
    'rmsprop',
    (h) => rmsprop(h as never) as OptimizerDef,
    { lr: 0.001, alpha: 0.99, momentum: 0.9, centered: true, weightDecay: 0.1 },
  ],
  [
    'adagrad',
    (h) => adagrad(h as never) as OptimizerDef,
    { lr: 0.1, lrDecay: 0.01, initialAccumulatorValue: 0.1, weightDecay: 0.1 },
  ],
  ['adabelief', (h) => adabelief(h as never) as OptimizerDef, { lr: 0.01, betas: [0.9, 0.999], weightDecay: 0.1 }],
  [
    'ademamix',
    (h) => ademamix(h as never) as OptimizerDef,
    { lr: 0.01, betas: [0.9, 0.999, 0.9999], alpha: 5, beta3Warmup: 6, alphaWarmup: 4, weightDecay: 0.1 },
  ],
  // Per-tensor trust ratios (reductions): LAMB moves each tensor by about lr·‖θ‖ per step; LARS by
  // lr·τ·‖θ‖ (τ 0.01 here, so lr·τ is SGD's 1e-2).
  ['lamb', (h) => lamb(h as never) as OptimizerDef, { lr: 0.01, betas: [0.9, 0.999], eps: 1e-6, weightDecay: 0.1 }],
  ['lars', (h) => lars(h as never) as OptimizerDef, { lr: 1, momentum: 0.9, trustCoeff: 0.01, weightDecay: 0.1 }],
];

/** A builtins entry's name with the choices that shape its kernel (rmsprop centered, …). */
export const variantName = (name: string, h: RefHyper): string =>
  [name, ...(h.centered ? ['centered'] : []), ...(name === 'rmsprop' && h.momentum ? ['momentum'] : [])].join(' ');

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

/**
 * The built-ins added after those 45 (bench/gpu.ts keeps its list), each kernel shape once per
 * scale storage and once per master width (three configurations, not nine), hyperparameters that
 * switch every term on.
 */
const laterDefs: [string, OptimizerDef][] = [
  ['rmsprop', rmsprop({ lr: 1e-2, weightDecay: 0.01 }) as OptimizerDef],
  ['rmsprop-centered', rmsprop({ lr: 1e-2, momentum: 0.9, centered: true, weightDecay: 0.01 }) as OptimizerDef],
  ['adagrad', adagrad({ lr: 0.1, lrDecay: 0.01, initialAccumulatorValue: 0.1, weightDecay: 0.01 }) as OptimizerDef],
  ['adabelief', adabelief({ lr: 1e-2, weightDecay: 0.01 }) as OptimizerDef],
  ['ademamix', ademamix({ lr: 1e-2, alpha: 5, alphaWarmup: 2, beta3Warmup: 2, weightDecay: 0.01 }) as OptimizerDef],
  ['lamb', lamb({ lr: 1e-2, weightDecay: 0.01 }) as OptimizerDef],
  ['lars', lars({ lr: 1, trustCoeff: 0.01, weightDecay: 0.01, nesterov: true }) as OptimizerDef],
  // An option of every optimizer: the conformance gradients' global norm is about 0.37 (elements
  // uniform in ±0.01), so a threshold of 0.25 engages on every step.
  ['adamw+clipGradNorm', adamw({ lr: 1e-2 }) as OptimizerDef],
];
/** Options beyond storage by configuration name (a reduction pass: not for gradient release). */
export const stepOptions: Readonly<Record<string, { readonly clipGradNorm?: number }>> = {
  'adamw+clipGradNorm': { clipGradNorm: 0.25 },
};
/** Configurations whose step has reductions (trust ratios, clipping): refused by gradient release. */
export const reduces = (name: string): boolean => ['lamb', 'lars', 'adamw+clipGradNorm'].includes(name);
const diagonal = [
  ['bf16', 24],
  ['fp16', 32],
  ['f32', null],
] as const;
export const laterConformanceConfigs: ConformanceConfig[] = laterDefs.flatMap(([name, def]) =>
  diagonal.map(([scale, bits]) => ({ name, def, scale, bits, key: `${name}/${scale}/${bits}` })),
);

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

/**
 * Three tensors that an arena with 4 KiB bindings splits into many chunks (3000 elements, one of
 * them spanning several): the chunked-reduction tests' parameters and step s's gradients.
 */
export const chunkedParams = () => ({ w: uniformF32(3000, 1), b: uniformF32(1500, 2), c: uniformF32(40, 3) });
export const chunkedGrads = (s: number) => ({
  w: uniformF32(3000, 10 + s, 0.5),
  b: uniformF32(1500, 20 + s, 0.5),
  c: uniformF32(40, 30 + s, 0.5),
});
