// Fused optimizer steps on a backend against the JS backend, on the same inputs: each of `steps`
// steps starts both from the JS backend's state (so a rounding difference of one step is measured,
// not compounded over the run), with fresh random bf16 gradients. Shared by the conformance suite
// and by test/conformance-run.ts (the same check as a plain script, for the H200).

import type { Backend } from '../runtime/backends/backend.ts';
import { resident } from './harness.ts';
import { rng } from './random-kernels.ts';
import { fromBf16, reconstructFp32 } from '../runtime/codecs.ts';
import { JsBackend } from '../runtime/backends/js/js.ts';
import type { FlashOptimizer } from '../runtime/webgpu-flash.ts';
import { flashKernel, flashUniforms } from '../runtime/webgpu-flash.ts';
import type { ScaleStorage } from '../dsl/quant.ts';
import type { FieldArray } from '../compiler/ir/kernel.ts';

export interface OptimizerConfig { readonly o: FlashOptimizer; readonly scale: ScaleStorage; readonly bits: 24 | 32 | null }
export const optimizerConfigs: OptimizerConfig[] = (['adamw', 'lion', 'sgd'] as const).flatMap((o) =>
  (['bf16', 'fp16', 'f32'] as const).flatMap((scale) => ([24, 32, null] as const).map((bits) => ({ o, scale, bits }))));

export interface Agreement {
  readonly name: string;
  /** Fraction of reconstructed fp32 params (over all steps) bit-identical to the JS backend's. */
  readonly paramsIdentical: number;
  /** Largest |Δθ| in units of two correction quanta 2·S/Q (one bf16 ULP without a correction). */
  readonly paramWorst: number;
  readonly codesIdentical: number;
  readonly codeWorst: number;
}

const bf16Bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0]! >>> 16;

export async function compareOptimizer(backend: Backend, c: OptimizerConfig, n: number, steps = 20): Promise<Agreement> {
  const { o, scale, bits } = c, k = flashKernel({ optimizer: o, scale, bits }), r = rng(n + (bits ?? 0) + scale.length);
  const p = Uint16Array.from({ length: n }, () => bf16Bits((r() - 0.5) * 2 ** Math.floor(r() * 8 - 4)));
  const groups = Math.ceil(n / 32), scales = () => (scale === 'f32' ? new Float32Array(groups) : new Uint16Array(groups));
  const data: Record<string, FieldArray> = { p, g: new Uint16Array(n), m: new Int8Array(n), m_scale: scales() };
  if (bits !== null) data.p_ecc = bits === 24 ? new Int8Array(n) : new Int16Array(n);
  if (o === 'adamw') { data.v = new Uint8Array(n); data.v_scale = scales(); }
  const host = new JsBackend({ engine: 'js' }); // the reference: generated JavaScript
  const js = await resident(host, k, data, n), dev = await resident(backend, k, data, n);
  const Q = bits === 24 ? 127 : bits === 32 ? 32767 : 1;
  const fp32 = (s: Record<string, FieldArray>) => (bits === null ? fromBf16(s.p as Uint16Array)
    : reconstructFp32(s.p as Uint16Array, s.p_ecc as Int8Array | Int16Array, { narrow: 'bf16', masterWeightBits: bits }));
  const codes = o === 'adamw' ? ['m', 'v'] : ['m'];
  let exact = 0, worst = 0, codeExact = 0, codeWorst = 0;
  try {
    for (let t = 1; t <= steps; t++) {
      const g = Uint16Array.from({ length: n }, () => bf16Bits((r() - 0.5) * 2 ** Math.floor(r() * 6 - 3)));
      await host.write(js.buffers.g!, g);
      const state = await js.read();
      for (const [f, a] of Object.entries(state)) await backend.write(dev.buffers[f]!, a);
      const u = flashUniforms(o, t);
      const [cd, cj] = [await dev.step([u]), await js.step([u])];
      if (cd.join() !== cj.join()) throw new Error(`${k.name} step ${t}: counters ${cd} on ${backend.name}, ${cj} on js`);
      const a = await dev.read(), b = await js.read();
      const pa = fp32(a), pb = fp32(b), hb = b.p as Uint16Array;
      for (let i = 0; i < n; i++) {
        const F = (hb[i]! >> 7) & 0xff, S = 2 ** ((F === 0 ? -126 : F - 127) - 8);
        if (Object.is(pa[i], pb[i])) exact++;
        worst = Math.max(worst, Math.abs(pa[i]! - pb[i]!) / ((2 * S) / Q));
      }
      for (const f of codes) for (let i = 0; i < n; i++) {
        const dlt = Math.abs(a[f]![i]! - b[f]![i]!);
        if (dlt === 0) codeExact++;
        codeWorst = Math.max(codeWorst, dlt);
      }
    }
  } finally {
    dev.free();
  }
  return { name: k.name, paramsIdentical: exact / (n * steps), paramWorst: worst, codesIdentical: codeExact / (n * steps * codes.length), codeWorst };
}

export const describeAgreement = (backend: string, a: Agreement): string =>
  `${backend} ${a.name}: params bit-identical ${a.paramsIdentical.toFixed(6)}, worst ${a.paramWorst.toFixed(3)} × 2·S/Q; codes identical ${a.codesIdentical.toFixed(6)}, worst ±${a.codeWorst}`;
