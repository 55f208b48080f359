// The optimizer conformance check as a plain script (no vitest), for machines with only Node,
// such as the lent H200:  N=100000 node conformance-run.mjs  (bundled by ../shared/gpu/stage.sh).
// Exits non-zero if any configuration breaks the bounds of test/conformance.test.ts. For a
// failing configuration it also prints the first differing elements of one step with their
// inputs (DIAG=0 turns that off), so a rounding difference can be traced on the host.

import { fields } from '../compiler/ir/kernel.ts';
import { compareOptimizer, describeAgreement, optimizerConfigs } from './optimizers.ts';
import type { OptimizerConfig } from './optimizers.ts';
import { resident } from './harness.ts';
import { rng } from './random-kernels.ts';
import { JsBackend } from '../runtime/backends/js/js.ts';
import { flashKernel, flashUniforms } from '../runtime/webgpu-flash.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import type { FieldArray } from '../compiler/ir/kernel.ts';

const bf16Bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0]! >>> 16;

/** Three steps from zero moments (as compareOptimizer runs them); prints elements of step 3 whose p or p_ecc differ. */
async function diagnose(gpu: WebGpuBackend, c: OptimizerConfig, n: number): Promise<void> {
  const k = flashKernel({ optimizer: c.o, scale: c.scale, bits: c.bits }), r = rng(5);
  const data: Record<string, FieldArray> = {};
  for (const f of fields(k)) {
    const len = f.axis === 'group' ? Math.ceil(n / 32) : n;
    data[f.field] = f.field === 'p' ? Uint16Array.from({ length: n }, () => bf16Bits((r() - 0.5) * 2 ** Math.floor(r() * 8 - 4)))
      : f.storage === 'f32' ? new Float32Array(len) : f.storage === 'u16' ? new Uint16Array(len) : f.storage === 'i16' ? new Int16Array(len) : f.storage === 'i8' ? new Int8Array(len) : new Uint8Array(len);
  }
  const host = new JsBackend(), js = await resident(host, k, data, n), dev = await resident(gpu, k, data, n);
  let shown = 0;
  for (let t = 1; t <= 3 && shown < 6; t++) {
    const g = Uint16Array.from({ length: n }, () => bf16Bits((r() - 0.5) * 2 ** Math.floor(r() * 6 - 3)));
    await host.write(js.buffers.g!, g);
    const before = await js.read();
    for (const [f, a] of Object.entries(before)) await gpu.write(dev.buffers[f]!, a);
    const u = flashUniforms(c.o, t);
    await dev.step([u]); await js.step([u]);
    const a = await dev.read(), b = await js.read();
    for (let i = 0; i < n && shown < 6; i++) {
      if (a.p![i] === b.p![i] && (!a.p_ecc || a.p_ecc[i] === b.p_ecc![i])) continue;
      shown++;
      const ins = Object.entries(before).map(([f, x]) => `${f}=${x[f.endsWith('_scale') ? Math.floor(i / 32) : i]}`).join(' ');
      console.log(`  step ${t} [${i}] in: ${ins} | out webgpu p=${a.p![i]} ecc=${a.p_ecc?.[i]} js p=${b.p![i]} ecc=${b.p_ecc?.[i]} | uniforms ${JSON.stringify(u)}`);
    }
  }
  dev.free();
}

const n = Number(process.env.N ?? 100_000);
// E=… checks another thread shape than the default.
const gpu = await WebGpuBackend.create(process.env.E ? { elementsPerThread: Number(process.env.E) } : {});
console.log(`conformance on ${gpu.adapter}${process.env.E ? `, ${process.env.E} elements/thread` : ''}: ${optimizerConfigs.length} configurations × 20 steps × ${n} params, each step from the JS backend's state`);
let failed = 0;
for (const c of optimizerConfigs) {
  const a = await compareOptimizer(gpu, c, n, 20);
  const ok = a.codeWorst <= 1 && a.paramWorst <= 1;
  if (!ok) failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${describeAgreement('webgpu', a)}`);
  if ((a.paramsIdentical < 1 && process.env.DIAG !== '0') || process.env.DIAG === 'all') await diagnose(gpu, c, Math.min(n, 2 ** 16)).catch((e) => console.log(`  diagnose: ${(e as Error).message}`));
}
console.log(`${optimizerConfigs.length - failed} passed, ${failed} failed`);
gpu.dispose();
process.exitCode = failed ? 1 : 0;
