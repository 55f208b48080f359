// Split kernels on a device whose fma is not fused (lavapipe here, SwiftShader in browsers): a
// step of an MNIST-sized MLP's AdamW (784·64 + 64 + 64·10 + 10 parameters, host gradients),
// split and in one kernel, at the adapter's limits (a binding per field) and at default limits
// (fields share bindings). The figures behind splitKernels' default (docs/bench-gpu.md §9).
//   mkdir -p /tmp/xdg; XDG_RUNTIME_DIR=/tmp/xdg npx tsx bench/split-cpu-gpu.ts
import { adamw } from '../optim/index.ts';
import type { OptimizerDef } from '../optim/define.ts';
import { uniformF32 } from '../props/prng.ts';
import { findAdapter } from '../runtime/backends/webgpu/device.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import { createOptimizer } from '../runtime/optimizer.ts';

const shapes = { w1: 784 * 64, b1: 64, w2: 64 * 10, b2: 10 };
const tensors = (seed: number, scale = 1) =>
  Object.fromEntries(Object.entries(shapes).map(([k, n], i) => [k, uniformF32(n, seed + i, scale)]));
console.log(`# bench/split-cpu-gpu.ts, ${new Date().toISOString()}\n`);
console.log('| limits | splitKernels | first step ms | ms a step (20 steps) |\n|---|---|---|---|');
for (const limits of ['adapter', 'default'] as const)
  for (const split of [false, true]) {
    // A device at default limits, as a page that asks for nothing gets (a fresh adapter each time).
    const device = limits === 'default' ? await (await findAdapter())!.requestDevice() : undefined;
    const gpu = await WebGpuBackend.create({ splitKernels: split, ...(device ? { device } : {}) });
    const opt = await createOptimizer(adamw({ lr: 1e-3 }) as OptimizerDef, tensors(1), { backend: gpu });
    const g = tensors(9, 0.01);
    let t0 = performance.now();
    await opt.step(g);
    const first = performance.now() - t0;
    t0 = performance.now();
    for (let s = 0; s < 20; s++) await opt.step(g);
    console.log(`| ${limits} | ${split} | ${first.toFixed(0)} | ${((performance.now() - t0) / 20).toFixed(1)} |`);
    await opt.dispose();
    gpu.dispose();
    device?.destroy();
  }
