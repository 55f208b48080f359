// Exact mode's split kernels (WebGpuOptions.splitKernels; compiler/render/wgsl/render.ts): the fast
// kernel stores nothing in a
// workgroup where a check failed and flags it; the fallback kernel redoes exactly those. A step
// stores what the JS backend stores either way. Ordinary data needs no fallback (the last,
// partial workgroup may: its lanes past the end check garbage), and a non-finite gradient flags
// its workgroup only. All-zero groups (scale 2^-126, its reciprocal 2^126) and a hyperparameter
// of 0 (SGD's default weight decay) are ordinary data too: both once sent every workgroup to the
// fallback.
import { describe, expect, test } from 'vitest';
import type { OptimizerDef } from '../../../optim/define.ts';
import { adamw, lion, sgd } from '../../../optim/index.ts';
import { uniformF32 } from '../../../props/prng.ts';
import { stored } from '../../../test/problems.ts';
import { JsBackend } from '../js/js.ts';
import { createOptimizer } from '../../optimizer.ts';
import { findAdapter } from './device.ts';
import { WebGpuBackend } from './webgpu.ts';

const adapter = await findAdapter();
const N = 20_000;
/** Elements a workgroup of AdamW's split kernel covers: 256 invocations of 8 elements. */
const PER_WG = 256 * 8;

/** The first `n` workgroup flags of `gpu`'s last split launch. */
async function flags(gpu: WebGpuBackend, n: number): Promise<number[]> {
  const d = gpu.device,
    src = gpu.flags(n);
  const out = d.createBuffer({ size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = d.createCommandEncoder();
  enc.copyBufferToBuffer(src, 0, out, 0, n * 4);
  d.queue.submit([enc.finish()]);
  await out.mapAsync(GPUMapMode.READ);
  const w = [...new Uint32Array(out.getMappedRange().slice(0))];
  out.destroy();
  return w;
}

describe.runIf(adapter !== null)('exact mode, split kernels', () => {
  const adam = () => adamw({ lr: 1e-2, weightDecay: 0.1 }) as OptimizerDef;
  test.each([
    ['adamw, random gradients', adam, () => uniformF32(N, 7, 0.5), []],
    ['adamw, zero gradients (m = v = 0, scales 2^-126)', adam, () => new Float32Array(N), []],
    [
      'sgd (momentum 0.9, weight decay 0)',
      () => sgd({ lr: 1e-2, momentum: 0.9 }) as OptimizerDef,
      () => uniformF32(N, 7, 0.5),
      [],
    ],
    ['lion', () => lion({ lr: 1e-3, weightDecay: 0.1 }) as OptimizerDef, () => uniformF32(N, 7, 0.5), []],
    [
      'adamw, a NaN and an Inf gradient: their workgroups only',
      adam,
      () => {
        const g = uniformF32(N, 8, 0.5);
        g[5] = NaN;
        g[3 * PER_WG + 17] = Infinity;
        return g;
      },
      [0, 3],
    ],
  ] as const)(
    '%s: what the JS backend stores; the fallback redoes the flagged workgroups',
    async (_l, optimizer, grad, flagged) => {
      const gpu = await WebGpuBackend.create({ splitKernels: true });
      const def = optimizer();
      const p = { w: uniformF32(N, 1) };
      const dev = await createOptimizer(def, p, { backend: gpu });
      const js = await createOptimizer(def, p, { backend: new JsBackend() });
      for (let s = 0; s < 2; s++) {
        const g = { w: grad() };
        const before = gpu.dispatches;
        await dev.step(g);
        await js.step(g);
        // Two dispatches: the fast half, then its fallback over the same grid.
        expect(gpu.dispatches - before).toBe(2);
        const n = Math.ceil(N / PER_WG),
          tail = n - 1;
        const f = await flags(gpu, n);
        expect(
          f.flatMap((x, i) => (x && i !== tail ? [i] : [])),
          `step ${s}`,
        ).toEqual([...flagged]);
        const [a, b] = [await stored(dev), await stored(js)];
        for (const k of Object.keys(b)) expect([...a[k]!], k).toEqual([...b[k]!]);
      }
      expect(await dev.nonFinite()).toBe(await js.nonFinite());
      await dev.dispose();
      gpu.dispose();
    },
  );

  // Every thread shape and a chunked arena (a launch per chunk, each with its fallback; shared
  // bindings, split only when asked) store what the JS backend stores, a non-finite gradient
  // included; so does gradient release (a launch per tensor).
  test.each([
    [{ elementsPerThread: 4 }, {}],
    [{ elementsPerThread: 16, workgroupSize: 64 }, {}],
    [{ workgroupSize: 1024 }, {}],
    [{ maxBindingSize: 4096 }, {}],
    [{}, { gradientRelease: true }],
  ] as const)('backend %j, optimizer %j: what the JS backend stores', async (options, extra) => {
    const gpu = await WebGpuBackend.create({ ...options, splitKernels: true });
    const def = adam();
    const p = { w: uniformF32(N, 1), b: uniformF32(37, 2) };
    const dev = await createOptimizer(def, p, { backend: gpu, ...extra });
    const js = await createOptimizer(def, p, { backend: new JsBackend(), ...extra });
    for (let s = 0; s < 2; s++) {
      const g = { w: uniformF32(N, 7 + s, 0.5), b: uniformF32(37, 9 + s, 0.5) };
      g.w[N - 100] = s === 0 ? NaN : -Infinity;
      g.w.fill(0, N >> 1, (N >> 1) + 3000);
      await dev.step(g);
      await js.step(g);
      const [a, b] = [await stored(dev), await stored(js)];
      for (const k of Object.keys(b)) expect([...a[k]!], k).toEqual([...b[k]!]);
    }
    expect(await dev.nonFinite()).toBe(await js.nonFinite());
    await dev.dispose();
    gpu.dispose();
  });
});
