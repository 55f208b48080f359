// AdEMAMix (Pagliardini et al., 2024), an optimizer the reference package lacks, defined in a few
// lines as a user would: a fast and a slow EMA of the gradient, mixed. Its three states get 8-bit
// storage for free (two int8 softsign momenta, one uint8 √v), fused into one kernel per step.
//   m1 ← β1·m1 + (1−β1)·g;  m2 ← β3·m2 + (1−β3)·g;  v ← β2·v + (1−β2)·g²
//   θ ← θ(1 − ηλ) − η·(m1/(1−β1^t) + α·m2) / (√(v/(1−β2^t)) + ε)
// The library has it built in (`ademamix`, optim/ademamix.ts, with the paper's warmups); this file
// stays the how-to-write-your-own showcase, and its test checks it stores what the built-in stores.
// Run: npx tsx examples/ademamix.ts

import { dsl, defineOptimizer, ema, momentum, variance, createOptimizer } from '../index.ts';
import { uniformF32 } from '../props/prng.ts';
const { add, div, mul, sqrt, square, sub } = dsl;

export const ademamix = defineOptimizer({
  name: 'ademamix',
  hyper: { lr: 1e-3, betas: [0.9, 0.999, 0.9999] as readonly number[], alpha: 5, eps: 1e-8, weightDecay: 0 },
  // The slow states (β3 = 0.9999, β2 = 0.999) change by less than a bf16 rounding step of their
  // group's largest element a step: f32 group scales keep that element exact (docs/optimizers.md).
  state: { m1: momentum(), m2: momentum({ scale: 'f32' }), v: variance({ scale: 'f32' }) },
  uniforms: (h, c) => {
    const t = Math.max(c.step, 1); // a tensor that sits a launch out has step 0
    return {
      stepSize: h.lr / (1 - h.betas[0]! ** t),
      bc2Sqrt: Math.sqrt(1 - h.betas[1]! ** t),
      slowSize: h.lr * h.alpha,
      decay: 1 - h.lr * h.weightDecay,
      c1: 1 - h.betas[0]!,
      c2: 1 - h.betas[1]!,
      c3: 1 - h.betas[2]!,
    };
  },
  update: ({ p, g, m1, m2, v }, u) => {
    const fast = ema(m1!, g!, u('betas0'), u('c1'));
    const slow = ema(m2!, g!, u('betas2'), u('c3'));
    const v1 = ema(v!, square(g!), u('betas1'), u('c2'));
    const mix = add(mul(u('stepSize'), fast), mul(u('slowSize'), slow));
    const denom = add(div(sqrt(v1), u('bc2Sqrt')), u('eps'));
    return { p: sub(mul(p!, u('decay')), div(mix, denom)), m1: fast, m2: slow, v: v1 };
  },
});

/** Fit w to a random linear target with AdEMAMix; returns the losses. */
export async function fit(steps = 100, n = 4096): Promise<number[]> {
  const target = uniformF32(n, 7);
  const opt = await createOptimizer(ademamix({ lr: 3e-3, alpha: 2 }), { w: new Float32Array(n) });
  const losses: number[] = [];
  for (let t = 0; t < steps; t++) {
    const w = (await opt.exportFp32()).w!;
    const g = w.map((x, i) => x - target[i]!);
    losses.push(g.reduce((a, x) => a + x * x, 0) / n);
    await opt.step({ w: g });
  }
  console.log(
    `AdEMAMix: loss ${losses[0]!.toFixed(4)} → ${losses.at(-1)!.toFixed(5)} in ${steps} steps; ${opt.memory().bytesPerParam.toFixed(3)} bytes/param`,
  );
  return losses;
}

if (import.meta.url === `file://${process.argv[1]}`) await fit();
