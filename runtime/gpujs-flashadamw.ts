// A FlashAdamW step written directly in the DSL (flashoptim-spec §1–§3): bf16 parameter + int8
// correction (24-bit master), bf16 gradient, int8 softsign m and uint8 sqrt v with one f32 scale
// per group of 32. It stands in for optim/ + the codecs (written in parallel) so the gpu.js backend
// can be checked and timed on the real workload's shape: every bit trick a codec needs (bf16 RNE,
// exponent extraction, exact powers of two) and two group reductions.

import type { Expr } from '../compiler/ir/ir.ts';
import type { Kernel } from '../compiler/ir/kernel.ts';
import { kernel } from '../compiler/ir/kernel.ts';
import * as d from '../dsl/ops.ts';

/** 2^k exactly for an integer i32 k ≥ −252: two normal powers built from exponent bits. */
function pow2(k: Expr): Expr {
  const half = d.shr(k, 1); // arithmetic: ⌊k/2⌋
  const p = (j: Expr) => d.asF32(d.shl(d.u32(d.add(j, 127)), 23));
  return d.mul(p(half), p(d.sub(k, half)));
}

const bf16 = (w: Expr): Expr => d.asF32(d.shl(w, 16));
/** f32 → bf16 word, round to nearest even (finite values). */
function toBf16(x: Expr): Expr {
  const bits = d.asU32(x);
  return d.shr(d.add(bits, d.add(0x7fff, d.and(d.shr(bits, 16), 1))), 16);
}
/** L = E − 8 of a bf16 word (E its unbiased exponent, 1 − 127 for zero and subnormals). */
function eccShift(w: Expr): Expr {
  const F = d.i32(d.and(d.shr(w, 7), 0xff));
  return d.sub(d.select(d.eq(F, 0), -126, d.sub(F, 127)), 8);
}

export function flashAdamW(groupSize = 32): Kernel {
  const w = d.field('p', 'u16'), q = d.field('p_ecc', 'i8'), g = bf16(d.field('g', 'u16'));
  const L = eccShift(w);
  const theta = d.add(bf16(w), d.mul(d.div(d.f32(q), 127), pow2(L)));
  // m: int8 softsign codes; v: uint8 codes of √v; f32 scales per group.
  const y = d.div(d.f32(d.field('m', 'i8')), 127);
  const m = d.mul(d.div(y, d.sub(2, d.abs(y))), d.field('m_scale', 'f32', 'group'));
  const sv = d.mul(d.div(d.f32(d.field('v', 'u8')), 255), d.field('v_scale', 'f32', 'group'));
  const v = d.mul(sv, sv);
  const [b1, b2, lr, wd, eps] = ['beta1', 'beta2', 'lr', 'weightDecay', 'eps'].map(d.uniform) as [Expr, Expr, Expr, Expr, Expr];
  const m2 = d.add(d.mul(b1, m), d.mul(d.sub(1, b1), g));
  const v2 = d.add(d.mul(b2, v), d.mul(d.sub(1, b2), d.mul(g, g)));
  const mHat = d.div(m2, d.uniform('bc1')), vHat = d.div(v2, d.uniform('bc2'));
  const theta2 = d.sub(d.mul(theta, d.sub(1, d.mul(lr, wd))), d.mul(lr, d.div(mHat, d.add(d.sqrt(vHat), eps))));
  // Encode: bf16 RNE, then the correction against the NEW narrow value.
  const w2 = toBf16(theta2);
  const L2 = eccShift(w2);
  const r = d.mul(d.sub(theta2, bf16(w2)), pow2(d.neg(L2)));
  const q2 = d.i32(d.roundAway(d.mul(d.clamp(r, -1, 1), 127)));
  const mScale = d.max(d.groupMax(d.abs(m2)), 1e-12);
  const u = d.div(m2, mScale);
  const mCode = d.i32(d.floor(d.add(d.mul(d.div(d.mul(2, u), d.add(1, d.abs(u))), 127), 0.5)));
  const a = d.sqrt(v2);
  const vScale = d.max(d.groupMax(a), 1e-12);
  const vCode = d.u32(d.floor(d.add(d.mul(d.div(a, vScale), 255), 0.5)));
  return kernel({ name: 'flashAdamW', groupSize, outputs: [
    { field: 'p', storage: 'u16', axis: 'element', value: w2 },
    { field: 'p_ecc', storage: 'i8', axis: 'element', value: q2 },
    { field: 'm', storage: 'i8', axis: 'element', value: mCode },
    { field: 'm_scale', storage: 'f32', axis: 'group', value: mScale },
    { field: 'v', storage: 'u8', axis: 'element', value: vCode },
    { field: 'v_scale', storage: 'f32', axis: 'group', value: vScale },
  ] });
}

/** Host uniforms of step t (bias corrections in f64, as the runtime computes them). */
export const adamwUniforms = (t: number) => ({ beta1: 0.9, beta2: 0.999, lr: 1e-3, weightDecay: 0.01, eps: 1e-8, bc1: 1 - 0.9 ** t, bc2: 1 - 0.999 ** t });
