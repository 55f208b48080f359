// Speed and device bytes of one FlashAdamW step (runtime/gpujs-flashadamw.ts) on each gpu.js mode
// that runs here, against the JS backend, with a check that each mode's fields after the timed
// steps match the JS backend's. Run:
//   XDG_RUNTIME_DIR=/tmp/xdg npx tsx test/gpujs-bench.ts [N=65536] [steps=5] [modes=cpu,webasm,webasm-threads,webgpu]
// 'webasm-threads' is webasm on gpu.js's worker pool, 'webasm-noshare' (any mode) computes shared
// values again in each output pass. A step is: write the bf16 gradient to the device, then one launch.

import { compile } from '../compiler/render/js/compile.ts';
import { fields } from '../compiler/ir/kernel.ts';
import type { Backend, DeviceBuffer } from '../runtime/backends/backend.ts';
import { adamwUniforms, flashAdamW } from '../runtime/gpujs-flashadamw.ts';
import type { GpujsMode } from '../runtime/backends/gpujs/device.ts';
import { GpujsBackend } from '../runtime/backends/gpujs/gpujs.ts';
import { JsBackend } from '../runtime/backends/js/js.ts';
import type { FieldArray } from '../compiler/ir/kernel.ts';

export interface BenchRow { backend: string; msPerStep: number; paramsPerSecond: number; deviceBytesPerParam: number; peakBytesPerParam: number; identical: string }

function inputs(n: number, step: number): Record<string, FieldArray> {
  const w = new Uint16Array(n), g = new Uint16Array(n);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (let i = 0; i < n; i++) {
    f[0] = Math.sin(i * 12.9898) * 0.5; w[i] = u[0]! >>> 16;
    f[0] = Math.cos(i * 78.233 + step) * 1e-2 * (1 + (i % 7)); g[i] = u[0]! >>> 16;
  }
  const G = 32, nG = Math.ceil(n / G);
  return { p: w, p_ecc: new Int8Array(n), g, m: new Int8Array(n), m_scale: new Float32Array(nG), v: new Uint8Array(n), v_scale: new Float32Array(nG) };
}

export async function bench(b: Backend, n: number, steps: number, reference?: Record<string, FieldArray>): Promise<{ row: BenchRow; result: Record<string, FieldArray> }> {
  const k = flashAdamW();
  const js = compile(k);
  const prog = await b.compile(k);
  const data = inputs(n, 0);
  const bufs: Record<string, DeviceBuffer> = {};
  for (const f of fields(k)) { bufs[f.field] = b.alloc(f.storage, data[f.field]!.length); await b.write(bufs[f.field]!, data[f.field]!); }
  const nG = Math.ceil(n / 32);
  const step = async (t: number) => {
    await b.write(bufs.g!, inputs(n, t).g!);
    await b.run(prog, { bindings: bufs, uniforms: js.uniformTable([adamwUniforms(t)]), rowOf: null, groups: [0, nG], length: n });
  };
  await step(1); // compiles the gpu.js kernels
  const t0 = performance.now();
  for (let t = 2; t <= steps + 1; t++) await step(t);
  const result: Record<string, FieldArray> = {};
  for (const f of fields(k)) result[f.field] = await b.read(bufs[f.field]!); // waits for the device
  const ms = (performance.now() - t0) / steps;
  let identical = 'reference';
  if (reference) {
    const parts: string[] = [];
    for (const f of ['p', 'p_ecc', 'm', 'v', 'm_scale', 'v_scale']) {
      const a = reference[f]!, c = result[f]!;
      let same = 0;
      for (let i = 0; i < a.length; i++) if (Object.is(a[i], c[i])) same++;
      parts.push(`${f} ${same}/${a.length}`);
    }
    identical = parts.join(', ');
  }
  const held = b instanceof GpujsBackend ? b.bytesHeld() : fields(k).reduce((s, f) => s + data[f.field]!.byteLength, 0);
  const peak = b instanceof GpujsBackend ? b.peakBytes : held;
  for (const f of fields(k)) b.free(bufs[f.field]!);
  return { row: { backend: b.name + (b instanceof GpujsBackend ? b.variant : ''), msPerStep: ms, paramsPerSecond: n / (ms / 1000), deviceBytesPerParam: held / n, peakBytesPerParam: peak / n, identical }, result };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 65536), steps = Number(process.argv[3] ?? 5);
  const modes = (process.argv[4] ?? 'cpu,webasm,webasm-threads,webgpu').split(',');
  const ref = await bench(new JsBackend(), n, steps);
  const rows = [ref.row];
  for (const mode of modes) {
    const [base, variant] = mode.split('-') as [GpujsMode, string | undefined];
    const opts = { threads: variant === 'threads', share: variant !== 'noshare' };
    try { rows.push((await bench(await GpujsBackend.create(base, opts), n, steps, ref.result)).row); } catch (e) { console.log(`${mode}: ${(e as Error).message}`); }
  }
  console.log(`FlashAdamW step, N = ${n}, ${steps} timed steps (after one warm-up step), ${new Date().toISOString()}`);
  for (const r of rows) console.log(`${r.backend.padEnd(14)} ${r.msPerStep.toFixed(2).padStart(9)} ms/step ${(r.paramsPerSecond / 1e6).toFixed(2).padStart(8)} Mparam/s  device ${r.deviceBytesPerParam.toFixed(3)} B/param (peak ${r.peakBytesPerParam.toFixed(3)})  identical to js: ${r.identical}`);
  process.exit(0);
}

if (process.argv[1]?.endsWith('gpujs-bench.ts')) await main();
