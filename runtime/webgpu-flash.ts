// Fused FlashOptim steps built from the codecs (dsl/master.ts, dsl/quant.ts), used by the WebGPU
// conformance suite and bench/gpu.ts until the optimizer area's `fusedKernel(def, opts)` exists.
// Update rules as flashoptim-spec §3: AdamW (decoupled decay, bias corrections as uniforms),
// Lion, SGD with momentum (coupled L2). Parameters bf16 + correction, gradients bf16, moments in
// companded 8-bit codes with one scale per group of 32.

import type { Codec } from '../dsl/codec.ts';
import { storedName } from '../dsl/codec.ts';
import type { Expr } from '../dsl/ops.ts';
import * as d from '../dsl/ops.ts';
import { fromBf16Bits } from '../dsl/float.ts';
import { masterCodec } from '../dsl/master.ts';
import type { ScaleStorage } from '../dsl/quant.ts';
import { momentumCodec, varianceCodec } from '../dsl/quant.ts';
import type { Kernel, Output } from '../compiler/ir/kernel.ts';
import { kernel } from '../compiler/ir/kernel.ts';

export type FlashOptimizer = 'adamw' | 'lion' | 'sgd';
export interface FlashOptions {
  readonly optimizer: FlashOptimizer;
  readonly scale?: ScaleStorage;
  /** Master weight bits: 24 (int8 correction), 32 (int16), null (bf16 alone). */
  readonly bits?: 24 | 32 | null;
  readonly groupSize?: number;
}

const decode = (base: string, c: Codec): Expr => c.decode(c.fields.map((f) => d.field(storedName(base, f), f.storage, f.axis)));
const encode = (base: string, c: Codec, v: Expr): Output[] =>
  c.encode(v).map((value, i) => { const f = c.fields[i]!; return { field: storedName(base, f), storage: f.storage, axis: f.axis, value }; });

/** The fused step kernel: fields p (+ p_ecc), g, m (+ m_scale) and for AdamW v (+ v_scale). */
export function flashKernel(o: FlashOptions): Kernel {
  const scale = o.scale ?? 'bf16', bits = o.bits === undefined ? 24 : o.bits;
  const P = masterCodec({ narrow: 'bf16', bits }), M = momentumCodec(scale), V = varianceCodec(scale);
  const theta = decode('p', P), g = fromBf16Bits(d.field('g', 'u16')), m = decode('m', M);
  const u = (n: string) => d.uniform(n);
  const outs: Output[] = [];
  let theta2: Expr;
  if (o.optimizer === 'adamw') {
    const v = decode('v', V);
    const m2 = d.lerp(g, m, u('beta1'));
    const v2 = d.lerp(d.mul(g, g), v, u('beta2'));
    const step = d.div(d.div(m2, u('bc1')), d.add(d.sqrt(d.div(v2, u('bc2'))), u('eps')));
    theta2 = d.sub(d.mul(theta, d.sub(1, d.mul(u('lr'), u('weightDecay')))), d.mul(u('lr'), step));
    outs.push(...encode('m', M, m2), ...encode('v', V, v2));
  } else if (o.optimizer === 'lion') {
    const c = d.lerp(g, m, u('beta1'));
    theta2 = d.sub(d.mul(theta, d.sub(1, d.mul(u('lr'), u('weightDecay')))), d.mul(u('lr'), d.sign(c)));
    outs.push(...encode('m', M, d.lerp(g, m, u('beta2'))));
  } else {
    const buf = d.add(d.mul(u('momentum'), m), d.add(g, d.mul(u('weightDecay'), theta)));
    theta2 = d.sub(theta, d.mul(u('lr'), buf));
    outs.push(...encode('m', M, buf));
  }
  outs.unshift(...encode('p', P, theta2));
  return kernel({
    name: `flash-${o.optimizer}-${scale}-${bits ?? 'none'}`, groupSize: o.groupSize ?? 32, outputs: outs,
    counters: [{ name: 'nonfinite', value: d.not(d.isFinite(g)) }],
  });
}

/** Uniforms of step t (bias corrections in f64 on the host, as the runtime computes them). */
export function flashUniforms(o: FlashOptimizer, t: number): Record<string, number> {
  if (o === 'adamw') return { beta1: 0.9, beta2: 0.999, lr: 1e-3, weightDecay: 0.01, eps: 1e-8, bc1: 1 - 0.9 ** t, bc2: 1 - 0.999 ** t };
  if (o === 'lion') return { beta1: 0.9, beta2: 0.99, lr: 1e-4, weightDecay: 0.01 };
  return { momentum: 0.9, lr: 1e-2, weightDecay: 1e-4 };
}
