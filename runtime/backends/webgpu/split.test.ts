// Exact mode's split kernels (WebGpuOptions.splitKernels; compiler/render/wgsl/render.ts): the fast
// kernel stores nothing in a
// workgroup where a check failed and flags it; the fallback kernel redoes exactly those. A step
// stores what the JS backend stores either way. Ordinary data needs no fallback (the last,
// partial workgroup may: its lanes past the end check garbage), a non-finite gradient flags its
// workgroup only, and all-zero groups flag theirs: a zero scale's reciprocal is past the fast
// path's 2^40 (a known cost, measured in docs/bench-gpu.md).
import { describe, expect, test } from 'vitest';
import type { OptimizerDef } from '../../../optim/define.ts';
import { adamw } from '../../../optim/index.ts';
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
  test.each([
    ['random gradients', () => uniformF32(N, 7, 0.5), []],
    ['zero gradients (m = v = 0, scales 0)', () => new Float32Array(N), [0, 1, 2, 3, 4, 5, 6, 7, 8]],
    [
      'a NaN and an Inf gradient: their workgroups only',
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
    async (_l, grad, flagged) => {
      const gpu = await WebGpuBackend.create({ splitKernels: true });
      const def = adamw({ lr: 1e-2, weightDecay: 0.1 }) as OptimizerDef;
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
});
