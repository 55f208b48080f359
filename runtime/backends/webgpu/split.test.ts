// Exact mode's split kernels (WebGpuOptions.splitKernels; compiler/render/wgsl/render.ts): the fast
// kernel stores nothing in a subgroup where a check failed and flags its groups; the fallback
// kernel redoes exactly those. A step stores what the JS backend stores either way. Ordinary data
// needs no fallback (the last subgroup may: its lanes past the end check garbage), and a
// non-finite gradient flags its subgroup's groups only. All-zero groups (scale 2^-126, its
// reciprocal 2^126) and a hyperparameter of 0 (SGD's default weight decay) are ordinary data too:
// both once sent every workgroup to the fallback.
import { describe, expect, test } from 'vitest';
import type { OptimizerDef } from '../../../optim/define.ts';
import { adamw, lion, sgd } from '../../../optim/index.ts';
import { uniformF32 } from '../../../props/prng.ts';
import { stored } from '../../../test/problems.ts';
import { JsBackend } from '../js/js.ts';
import { createOptimizer } from '../../optimizer.ts';
import { findAdapter } from './device.ts';
import { WebGpuBackend } from './webgpu.ts';
import { FLAG_HEAD } from '../../../compiler/render/wgsl/header.ts';

const adapter = await findAdapter();
const N = 20_000;
/** Elements a group of AdamW's kernel, and its threads a group (8 elements each). */
const GROUP = 32,
  T = 4;

/**
 * The groups flagged in `gpu`'s last split launch of `groups` groups (a bit each), and the
 * workgroups it listed for the fallback with their indirect dispatch size (header.ts fail_groups).
 */
async function flagged(gpu: WebGpuBackend, groups: number) {
  const W = Math.ceil((groups * T) / 256),
    words = FLAG_HEAD + 2 * W + Math.ceil(groups / 32);
  const d = gpu.device,
    src = gpu.flags(words * 4);
  const out = d.createBuffer({ size: words * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = d.createCommandEncoder();
  enc.copyBufferToBuffer(src, 0, out, 0, words * 4);
  d.queue.submit([enc.finish()]);
  await out.mapAsync(GPUMapMode.READ);
  const w = new Uint32Array(out.getMappedRange().slice(0));
  out.destroy();
  const bits = w.subarray(FLAG_HEAD + 2 * W);
  return {
    groups: [...Array(groups).keys()].filter((g) => (bits[g >> 5]! >>> (g & 31)) & 1),
    listed: [...w.subarray(FLAG_HEAD + W, FLAG_HEAD + W + w[3]!)].sort((a, b) => a - b),
    dispatch: [...w.subarray(0, 3)],
  };
}

/** Elements with a non-finite gradient, by step. */
const BAD = [[5, 2000, 3 * 2048 + 17], [5 * 2048 + 300]];

describe.runIf(adapter !== null)('exact mode, split kernels', () => {
  const adam = () => adamw({ lr: 1e-2, weightDecay: 0.1 }) as OptimizerDef;
  test.each([
    ['adamw, random gradients', adam, () => uniformF32(N, 7, 0.5), () => []],
    ['adamw, zero gradients (m = v = 0, scales 2^-126)', adam, () => new Float32Array(N), () => []],
    [
      'sgd (momentum 0.9, weight decay 0)',
      () => sgd({ lr: 1e-2, momentum: 0.9 }) as OptimizerDef,
      () => uniformF32(N, 7, 0.5),
      () => [],
    ],
    ['lion', () => lion({ lr: 1e-3, weightDecay: 0.1 }) as OptimizerDef, () => uniformF32(N, 7, 0.5), () => []],
    [
      // Step 0: two subgroups of workgroup 0 (listed once) and one of workgroup 3; step 1: one of
      // workgroup 5 only (step 0's flags must not carry over).
      'adamw, NaN and Inf gradients: their subgroups only',
      adam,
      (s: number) => {
        const g = uniformF32(N, 8 + s, 0.5);
        for (const e of BAD[s]!) g[e] = e % 2 ? NaN : Infinity;
        return g;
      },
      (s: number) => BAD[s]!,
    ],
  ] as const)(
    '%s: what the JS backend stores; the fallback redoes the flagged groups',
    async (_l, optimizer, grad, bad) => {
      const gpu = await WebGpuBackend.create({ splitKernels: true });
      // Groups a subgroup, at most: a flagged group shares its subgroup with a bad element's group.
      const span = (adapter!.info as GPUAdapterInfo & { subgroupMaxSize?: number }).subgroupMaxSize! / T;
      const def = optimizer();
      const p = { w: uniformF32(N, 1) };
      const dev = await createOptimizer(def, p, { backend: gpu });
      const js = await createOptimizer(def, p, { backend: new JsBackend() });
      for (let s = 0; s < 2; s++) {
        const g = { w: grad(s) };
        const before = gpu.dispatches;
        await dev.step(g);
        await js.step(g);
        // Two dispatches: the fast half, then its fallback over the same grid.
        expect(gpu.dispatches - before).toBe(2);
        const groups = Math.ceil(N / GROUP),
          tail = Math.floor((groups - 1) / span);
        const { groups: f, listed, dispatch } = await flagged(gpu, groups);
        const badGroups = bad(s).map((e) => Math.floor(e / GROUP));
        for (const b of badGroups) expect(f, `step ${s}: group ${b}`).toContain(b);
        const subgroup = (x: number) => Math.floor(x / span);
        expect(
          f.filter((x) => subgroup(x) !== tail && !badGroups.some((b) => subgroup(b) === subgroup(x))),
          `step ${s}`,
        ).toEqual([]);
        // The fallback runs over exactly the workgroups that hold a flagged group, once each.
        const workgroups = [...new Set(f.map((x) => Math.floor((x * T) / 256)))];
        expect(listed, `step ${s}`).toEqual(workgroups);
        expect(dispatch, `step ${s}`).toEqual(listed.length ? [listed.length, 1, 1] : [0, 0, 0]);
        const [a, b] = [await stored(dev), await stored(js)];
        for (const k of Object.keys(b)) expect([...a[k]!], k).toEqual([...b[k]!]);
      }
      expect(await dev.nonFinite()).toBe(await js.nonFinite());
      await dev.dispose();
      gpu.dispose();
    },
  );

  test('a hyperparameter past 2^16 (SGD at lr 2^17): every group in the fallback, what the JS backend stores', async () => {
    const gpu = await WebGpuBackend.create({ splitKernels: true });
    const def = sgd({ lr: 2 ** 17, momentum: 0.9 }) as OptimizerDef;
    const p = { w: uniformF32(N, 1) };
    const dev = await createOptimizer(def, p, { backend: gpu });
    const js = await createOptimizer(def, p, { backend: new JsBackend() });
    const g = { w: uniformF32(N, 7, 0.5) };
    await dev.step(g);
    await js.step(g);
    const groups = Math.ceil(N / GROUP);
    expect((await flagged(gpu, groups)).groups.length).toBe(groups);
    const [a, b] = [await stored(dev), await stored(js)];
    for (const k of Object.keys(b)) expect([...a[k]!], k).toEqual([...b[k]!]);
    await dev.dispose();
    gpu.dispose();
  });

  // A tensor without a gradient this step sits it out (its row's `active` is 0): the kernels store
  // nothing there rather than selecting the old value (compiler/render/wgsl/stores.ts guardedStores).
  test.each([true, false])(
    'splitKernels %s: a tensor without a gradient keeps its stored bits, as on JS',
    async (splitKernels) => {
      const gpu = await WebGpuBackend.create({ splitKernels });
      const def = adam();
      const p = { w: uniformF32(N, 1), b: uniformF32(300, 2) };
      const dev = await createOptimizer(def, p, { backend: gpu });
      const js = await createOptimizer(def, p, { backend: new JsBackend() });
      const both = { w: uniformF32(N, 7, 0.5), b: uniformF32(300, 9, 0.5) };
      await dev.step(both);
      await js.step(both);
      const onlyW = { w: uniformF32(N, 8, 0.5) };
      await dev.step(onlyW);
      await js.step(onlyW);
      const [a, b] = [await stored(dev), await stored(js)];
      for (const k of Object.keys(b)) expect([...a[k]!], k).toEqual([...b[k]!]);
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
