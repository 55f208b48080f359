// Correctness of the in-place paths on a real GPU, where lavapipe's CI cannot vouch for them:
// parameters updated where the caller keeps them (DeviceParam), with and without gradient release,
// on a device of our own and on TF.js's; and FlashTfOptimizer's steps on tfjs-backend-webgpu. Each
// against the same optimizer on the JS backend over host arrays, after 3 steps: the stored weights
// must be bit-identical (the WebGPU kernels are exact).
//
//   npx tsx bench/tfjs-check.ts       (bundle it as bench/tfjs-gpu.ts says, for the GPU machine)

import * as tf from '@tensorflow/tfjs-core';
import { adamw } from '../optim/index.ts';
import { uniformF32 } from '../props/prng.ts';
import { installNavigatorGpu } from '../runtime/backends/dawn.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import { tfWebGpu } from '../tfjs/webgpu.ts';
import { arithmetic } from './gpu-check.ts';
import { kernel } from '../compiler/ir/kernel.ts';
import { uniformTable } from '../compiler/ir/pipeline.ts';
import * as d from '../dsl/ops.ts';

if (!(await installNavigatorGpu())) throw new Error('bench/tfjs-check.ts: no WebGPU entry point');
await import('@tensorflow/tfjs-backend-webgpu');
if (!(await tf.setBackend('webgpu'))) throw new Error('bench/tfjs-check.ts: no GPU adapter');
await import('@tensorflow/tfjs-core/dist/register_all_gradients.js').catch(() => {});
const { FlashTfOptimizer } = await import('../tfjs/adapter.ts');
const tfb = tfWebGpu()!;
const L = tfb.device.limits;
console.log(`# bench/tfjs-check.ts, ${new Date().toISOString()}`);
console.log(
  `TF.js device: features ${[...tfb.device.features].join(', ')}; maxStorageBuffersPerShaderStage ${L.maxStorageBuffersPerShaderStage}, maxStorageBufferBindingSize ${L.maxStorageBufferBindingSize}, minStorageBufferOffsetAlignment ${L.minStorageBufferOffsetAlignment}`,
);

const shapes: Record<string, number[]> = { w1: [784, 1024], b1: [1024], w2: [1024, 10], b2: [10], odd: [37] };
const count = (s: number[]) => s.reduce((a, b) => a * b, 1);
const init = () =>
  Object.fromEntries(Object.entries(shapes).map(([k, s], i) => [k, uniformF32(count(s), 1 + i, 0.05)]));
const grads = (step: number) =>
  Object.fromEntries(Object.entries(shapes).map(([k, s], i) => [k, uniformF32(count(s), 100 * step + i, 0.01)]));
const STEPS = 3;

/** The JS backend's weights after STEPS steps (f32 params, as in place). */
async function reference(release: boolean): Promise<Record<string, Float32Array>> {
  const opt = await createOptimizer(adamw({ lr: 1e-3 }), init(), {
    paramDtype: 'f32',
    gradDtype: 'f32',
    gradientRelease: release,
  });
  for (let s = 0; s < STEPS; s++) await opt.step(grads(s));
  return (await opt.readParams()) as Record<string, Float32Array>;
}

function compare(what: string, got: Record<string, Float32Array>, want: Record<string, Float32Array>): boolean {
  let differ = 0,
    total = 0,
    worst = 0;
  for (const k of Object.keys(shapes))
    for (let i = 0; i < want[k]!.length; i++) {
      total++;
      if (Object.is(got[k]![i], want[k]![i])) continue;
      differ++;
      worst = Math.max(worst, Math.abs(got[k]![i]! - want[k]![i]!));
    }
  console.log(
    `${what}: ${total - differ} of ${total} weights bit-identical to the JS backend${differ ? `; worst |Δ| ${worst}` : ''}`,
  );
  return differ === 0;
}

let failed = 0;
// Does the device keep f32 subnormals? a·1 and a + 0 for a = 2^-130 and 2^-149 (WGSL may flush them).
{
  const gpu = await WebGpuBackend.create();
  const a = d.field('a', 'f32'),
    one = d.field('one', 'f32');
  const k = kernel({
    name: 'subnormal',
    outputs: [
      { field: 'p', storage: 'f32', axis: 'element', value: d.mul(a, one) },
      { field: 's', storage: 'f32', axis: 'element', value: d.sqrt(a) },
    ],
  });
  const prog = await gpu.compile(k);
  const bufs = Object.fromEntries(['a', 'one', 'p', 's'].map((f) => [f, gpu.alloc('f32', 32)]));
  const input = Float32Array.from({ length: 32 }, (_, i) => (i % 2 ? 2 ** -149 : 2 ** -130));
  await gpu.write(bufs.a!, input);
  await gpu.write(bufs.one!, new Float32Array(32).fill(1));
  await gpu.run(prog, {
    bindings: bufs,
    uniforms: uniformTable(prog.prepared, [{}]),
    rowOf: null,
    groups: [0, 1],
    length: 32,
  });
  const [p, q] = [await gpu.read(bufs.p!), await gpu.read(bufs.s!)];
  console.log(
    `subnormals on this device: 2^-130 · 1 = ${p[0]}, 2^-149 · 1 = ${p[1]}, √2^-130 = ${q[0]} (JS: ${2 ** -130}, ${2 ** -149}, ${Math.fround(Math.sqrt(2 ** -130))})`,
  );
  gpu.dispose();
}
// Exact-mode ÷, √ and a·b + c over operands of every magnitude, on our device and on TF.js's.
for (const [label, make] of [
  ['own device', () => WebGpuBackend.create()],
  ["TF.js's device", () => WebGpuBackend.create({ device: tfb.device })],
] as const)
  for (const span of [20, 60, 126]) {
    const gpu = await make();
    const line = await arithmetic(gpu, 1 << 16, span);
    console.log(`arithmetic, ${label}, exponents ±${span}: ${line}`);
    if (!/÷ 0, √ 0, a·b\+c 0 /.test(line)) failed++;
    if (label === 'own device') gpu.dispose();
  }
for (const release of [false, true]) {
  const want = await reference(release);
  // DeviceParam on a device of our own, and on TF.js's.
  for (const [label, make] of [
    ['own device', () => WebGpuBackend.create()],
    ["TF.js's device", () => WebGpuBackend.create({ device: tfb.device })],
  ] as const) {
    const gpu = await make();
    const bufs = Object.fromEntries(
      Object.entries(init()).map(([k, v]) => {
        const buffer = gpu.device.createBuffer({ size: v.byteLength, usage: 0x80 | 0x4 | 0x8 });
        gpu.device.queue.writeBuffer(buffer, 0, v);
        return [k, { buffer, dtype: 'f32' as const, shape: shapes[k]! }];
      }),
    );
    const opt = await createOptimizer(adamw({ lr: 1e-3 }), bufs, {
      backend: gpu,
      paramDtype: 'f32',
      gradDtype: 'f32',
      gradientRelease: release,
    });
    console.log(`${label}: subgroups ≥ ${gpu.subgroupMinSize}, fma fused ${gpu.fusedFma}`);
    for (let s = 0; s < STEPS; s++) await opt.step(grads(s));
    if (!compare(`DeviceParam, ${label}, release ${release}`, (await opt.readParams()) as never, want)) failed++;
    await opt.dispose();
    for (const b of Object.values(bufs)) b.buffer.destroy();
    if (label === 'own device') gpu.dispose();
  }
}

// FlashTfOptimizer on TF.js's device (its defaults: release, f32 gradients, in place).
{
  const want = await reference(true);
  const vars = Object.fromEntries(
    Object.entries(init()).map(([k, v]) => [
      k,
      tf.tidy(() => tf.variable(tf.tensor(v, shapes[k]!), true, `check_${k}`)),
    ]),
  );
  const opt = new FlashTfOptimizer(adamw({ lr: 1e-3 }));
  for (let s = 0; s < STEPS; s++) {
    const g = grads(s);
    const named = Object.fromEntries(Object.keys(shapes).map((k) => [`check_${k}`, tf.tensor(g[k]!, shapes[k]!)]));
    opt.applyGradients(named as never);
    await opt.settled();
    tf.dispose(Object.values(named));
  }
  const got: Record<string, Float32Array> = {};
  for (const k of Object.keys(shapes)) got[k] = (await vars[k]!.data()) as Float32Array;
  if (!compare('FlashTfOptimizer on tfjs-backend-webgpu', got, want)) failed++;
  console.log(`gpuStats ${JSON.stringify(opt.gpuStats)}`);
}
console.log(failed ? `${failed} check(s) FAILED` : 'all checks passed');
process.exit(failed ? 1 : 0);
