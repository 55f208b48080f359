// WebGPU step throughput: FlashAdamW, FlashLion and FlashSGD (momentum) at 2^24 … N params.
// First checks WebGPU against the JS backend on the same inputs (a 2^20 slice, 3 steps), then
// times each size: ms/step from GPU timestamps (back-to-back launches, one dispatch each),
// Gparam/s, and effective GB/s from the bytes each kernel must move.
//   npx tsx bench/gpu.ts                      (lavapipe here: keep N small, e.g. N=1048576)
//   N=268435456 bash .device/device-run.sh node gpu.mjs   (the H200, after ../shared/gpu/stage.sh)
// VARIANTS=1 adds the where-the-time-goes rows for FlashAdamW at N: one arithmetic choice changed
// (compiler/render/wgsl/arith.ts; rows marked [not exact] do not match JS), other thread shapes,
// loads+stores only, and stages removed. E=4 times every kernel at 4 elements a thread.

import type { Kernel } from '../compiler/ir/kernel.ts';
import { fields, fieldsRead, kernel, storageBytes } from '../compiler/ir/kernel.ts';
import * as d from '../dsl/ops.ts';
import { JsBackend } from '../runtime/backends/js/js.ts';
import { differences, resident } from '../test/harness.ts';
import { randomData, rng } from '../test/random-kernels.ts';
import type { FlashOptimizer } from '../runtime/webgpu-flash.ts';
import { flashKernel, flashUniforms } from '../runtime/webgpu-flash.ts';
import type { WebGpuOptions } from '../runtime/backends/webgpu/webgpu.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import type { FieldArray } from '../compiler/ir/kernel.ts';

const N = Number(process.env.N ?? 2 ** 24);
const STEPS = Number(process.env.STEPS ?? 50);
const sizes: number[] = [];
for (let n = 2 ** 24; n <= N; n *= 2) sizes.push(n);
if (sizes.length === 0) sizes.push(N);

/** Bytes a step must move per parameter: every field read once, every output written once. */
function bytesPerParam(k: Kernel): number {
  const per = (f: { storage: keyof typeof storageBytes; axis: string }) => storageBytes[f.storage] / (f.axis === 'group' ? k.groupSize : 1);
  return fieldsRead(k).reduce((s, f) => s + per(f), 0) + k.outputs.reduce((s, f) => s + per(f), 0);
}

/** Plausible optimizer state: bf16 params and grads of mixed magnitude, codes anywhere. */
function stateData(k: Kernel, n: number, seed: number): Record<string, FieldArray> {
  const r = rng(seed), G = k.groupSize, out: Record<string, FieldArray> = {};
  const bf16 = (scale: number) => Uint16Array.from({ length: n }, () => (new Uint32Array(Float32Array.of((r() - 0.5) * scale).buffer)[0]! >>> 16));
  for (const f of fields(k)) {
    const len = f.axis === 'group' ? Math.ceil(n / G) : n;
    if (f.field === 'p' || f.field === 'g') out[f.field] = bf16(f.field === 'p' ? 2 : 0.02);
    else if (f.field.endsWith('_scale')) out[f.field] = f.storage === 'f32' ? new Float32Array(len).fill(0.01) : new Uint16Array(len).fill(0x3c23);
    else out[f.field] = randomData(f.storage, len, r);
  }
  return out;
}

/** The same loads and stores as `k`, with no arithmetic: what the memory system alone costs. */
function copyOf(k: Kernel): Kernel {
  const g = d.field('g', 'u16');
  return kernel({ name: `${k.name}-copy`, groupSize: k.groupSize, outputs: k.outputs.map((o) => ({
    ...o, value: o.field === 'p' ? d.xor(d.field('p', 'u16'), d.shr(g, 31)) : d.field(o.field, o.storage, o.axis),
  })) });
}

/** Each step from the same state (the JS backend's) on both; worst code difference and identical fractions. */
async function check(gpu: WebGpuBackend, k: Kernel, o: FlashOptimizer): Promise<string> {
  const n = 2 ** 20, data = stateData(k, n, 7);
  const host = await resident(new JsBackend(), k, data, n), dev = await resident(gpu, k, data, n);
  const same = new Map<string, number>(), worst = new Map<string, number>();
  let firstBad = '';
  for (let t = 1; t <= 3; t++) {
    const before = await host.read();
    for (const [f, a] of Object.entries(before)) await gpu.write(dev.buffers[f]!, a);
    await host.step([flashUniforms(o, t)]); await dev.step([flashUniforms(o, t)]);
    const a = await dev.read(), b = await host.read();
    for (const f of k.outputs) {
      const x = a[f.field]!, y = b[f.field]!;
      same.set(f.field, (same.get(f.field) ?? 0) + x.length - differences(x, y).count);
      let w = worst.get(f.field) ?? 0;
      for (let i = 0; i < x.length; i++) {
        const dlt = Math.abs(x[i]! - y[i]!);
        if (dlt > w) { w = dlt; if (dlt > 1 && !firstBad && f.field !== 'p_ecc' && f.field !== 'p') firstBad = ` first >±1: step ${t} ${f.field}[${i}] webgpu ${x[i]} js ${y[i]} (before: ${Object.entries(before).map(([n, v]) => `${n}=${v[k.outputs.find((q) => q.field === n)?.axis === 'group' ? Math.floor(i / 32) : i]}`).join(' ')})`; }
      }
      worst.set(f.field, w);
    }
  }
  dev.free();
  return k.outputs.map((f) => `${f.field} ${(same.get(f.field)! / (3 * (f.axis === 'group' ? n / 32 : n))).toFixed(5)} identical, worst ±${worst.get(f.field)}`).join('; ') + firstBad;
}

type Buffers = Record<string, ReturnType<WebGpuBackend['alloc']>>;
/** Device buffers of `k`'s fields at n params, shared by every variant of one kernel family. */
async function buffersFor(gpu: WebGpuBackend, k: Kernel, n: number, cache: Buffers): Promise<Buffers> {
  let data: Record<string, FieldArray> | undefined;
  const out: Buffers = {};
  for (const f of fields(k)) {
    const len = f.axis === 'group' ? Math.ceil(n / k.groupSize) : n, key = `${f.field}:${f.storage}:${len}`;
    if (!cache[key]) {
      data ??= stateData(k, Math.min(n, 2 ** 22), 11);
      const b = (cache[key] = gpu.alloc(f.storage, len)), chunk = data[f.field]!;
      for (let at = 0; at < len; at += chunk.length) await gpu.write(b, chunk.subarray(0, Math.min(chunk.length, len - at)) as FieldArray, at);
    }
    out[f.field] = cache[key]!;
  }
  return out;
}

async function time(gpu: WebGpuBackend, k: Kernel, n: number, o: FlashOptimizer, opts: WebGpuOptions = {}, cache: Buffers = {}) {
  const bufs = await buffersFor(gpu, k, n, cache);
  const prog = await gpu.compile(k, opts);
  const table = (await import('../compiler/render/js/compile.ts')).compile(k).uniformTable([flashUniforms(o, 10)]);
  const launch = { bindings: bufs, uniforms: table, rowOf: null, groups: [0, Math.ceil(n / k.groupSize)] as const, length: n };
  // Warm up for 300 ms at least: an idle GPU needs that long to reach its clocks.
  for (const t0 = performance.now(); performance.now() - t0 < 300;) await gpu.timeSteps(prog, launch, 10);
  const t = await gpu.timeSteps(prog, launch, STEPS);
  const ms = t.gpuMs ?? t.wallMs, bpp = bytesPerParam(k);
  return { ms, wallMs: t.wallMs, gparams: n / ms / 1e6, gbs: (n * bpp) / ms / 1e6, bpp };
}
const freeAll = (gpu: WebGpuBackend, cache: Buffers) => { for (const [key, b] of Object.entries(cache)) { gpu.free(b); delete cache[key]; } };

/** f32 ÷, √ and a·b + c on 2^16 random pairs: elements differing from the JS backend, per mode. */
async function arithmetic(exact: boolean): Promise<string> {
  const a = d.field('a', 'f32'), b = d.field('b', 'f32'), n = 2 ** 16, r = rng(3);
  const k = kernel({ name: 'arith', groupSize: 32, outputs: [
    { field: 'q', storage: 'f32', axis: 'element', value: d.div(a, b) },
    { field: 's', storage: 'f32', axis: 'element', value: d.sqrt(d.abs(a)) },
    { field: 'p', storage: 'f32', axis: 'element', value: d.add(d.mul(a, b), 0.1) },
  ] });
  const rand = () => Float32Array.from({ length: n }, () => (r() - 0.5) * 2 ** Math.floor(r() * 40 - 20));
  const data = { a: rand(), b: rand(), q: new Float32Array(n), s: new Float32Array(n), p: new Float32Array(n) };
  const g = await WebGpuBackend.create({ exact });
  const dev = await resident(g, k, data, n), host = await resident(new JsBackend(), k, data, n);
  await dev.step([{}]); await host.step([{}]);
  const x = await dev.read(), y = await host.read();
  g.dispose();
  return `exact ${exact} (fma fused: ${g.fusedFma}): ÷ ${differences(x.q!, y.q!).count}, √ ${differences(x.s!, y.s!).count}, a·b+c ${differences(x.p!, y.p!).count} of ${n} differ from JS`;
}

const E = process.env.E ? { elementsPerThread: Number(process.env.E) } : {};
const gpu = await WebGpuBackend.create(E);
console.log(`device: ${gpu.adapter}; subgroups ≥ ${gpu.subgroupMinSize}; fma fused: ${gpu.fusedFma}; ${STEPS} timed steps per row`);
for (const exact of [true, false]) console.log(await arithmetic(exact));
const optimizers: FlashOptimizer[] = (process.env.OPTIMIZERS ?? 'adamw,lion,sgd').split(',') as FlashOptimizer[];
for (const o of optimizers) {
  const k = flashKernel({ optimizer: o });
  console.log(`check ${k.name} vs JS (2^20 params, 3 steps${E.elementsPerThread ? `, ${E.elementsPerThread} elements/thread` : ''}): ${await check(gpu, k, o)}`);
}
console.log('\n| kernel | params | ms/step | Gparam/s | B/param | effective GB/s | wall ms/step |\n|---|---|---|---|---|---|---|');
const row = (name: string, n: number, r: Awaited<ReturnType<typeof time>>) =>
  console.log(`| ${name} | 2^${Math.log2(n)} | ${r.ms.toFixed(3)} | ${r.gparams.toFixed(1)} | ${r.bpp.toFixed(3)} | ${r.gbs.toFixed(0)} | ${r.wallMs.toFixed(3)} |`);
const cache: Buffers = {};
for (const o of optimizers) {
  const k = flashKernel({ optimizer: o });
  for (const n of sizes) row(k.name, n, await time(gpu, k, n, o, gpu.options, cache));
  freeAll(gpu, cache);
}
if (process.env.VARIANTS) {
  // Where the time goes: the same FlashAdamW step with one choice changed (compiler/render/wgsl/arith.ts).
  const n = sizes[sizes.length - 1]!, k = flashKernel({ optimizer: 'adamw' });
  const variants: [string, WebGpuOptions][] = [
    ['default', {}],
    ['two passes (fast pass, slow pass where a ÷ or √ left its range)', { twoPass: true }],
    ['4 elements/thread', { elementsPerThread: 4 }],
    ['16 elements/thread', { elementsPerThread: 16 }],
    ['driver ÷ in exact mode [not exact]', { ablate: ['div'] }],
    ['driver √ in exact mode [not exact]', { ablate: ['sqrt'] }],
    ['first exact mode (3-candidate ÷ √, select on every product)', { legacy: true }],
    ['no range analysis (every NaN guard kept)', { ranges: false }],
    ['no contraction guards (keep) [not exact]', { noKeep: true }],
    ['no NaN guards at all [not IEEE-safe]', { unsafeNoNanGuards: true }],
    ['driver arithmetic (exact: false)', { exact: false }],
    ['driver arithmetic, no NaN guards [not safe]', { exact: false, unsafeNoNanGuards: true }],
  ];
  for (const [what, opts] of variants) row(`${k.name}, ${what}`, n, await time(gpu, k, n, 'adamw', opts, cache));
  row(`${k.name} loads+stores only`, n, await time(gpu, copyOf(k), n, 'adamw', {}, cache));
  freeAll(gpu, cache);
  // Stages removed: the ECC correction (bf16 masters alone), the bf16 group scales (f32 scales).
  for (const [what, fo] of [['bf16 masters, no ECC', { bits: null }], ['f32 group scales', { scale: 'f32' }]] as const) {
    const kk = flashKernel({ optimizer: 'adamw', ...fo });
    row(`${kk.name} (${what})`, n, await time(gpu, kk, n, 'adamw', {}, cache));
    freeAll(gpu, cache);
  }
}
gpu.dispose();
