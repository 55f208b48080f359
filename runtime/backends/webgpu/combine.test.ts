// Reductions on WebGPU (combine.ts): the combine stores what the device-order oracle computes
// (test/device-oracle.ts), bit for bit, over blocks, windows, ranges, sums and maxima, tensor and
// global scope, more rows than threads; a step with reductions is a fixed number of dispatches in
// one submission that reads nothing back; gradNorm() reads one value, when asked.
import { describe, expect, test } from 'vitest';
import type { OptimizerDef } from '../../../optim/define.ts';
import { adamw, lamb, lars } from '../../../optim/index.ts';
import { uniformF32 } from '../../../props/prng.ts';
import { DeviceOrderOracle, webgpuOrder } from '../../../test/device-oracle.ts';
import { defineOptimizer, momentum } from '../../../optim/define.ts';
import { stored } from '../../../test/problems.ts';
import { JsBackend } from '../js/js.ts';
import { createOptimizer } from '../../optimizer.ts';
import { findAdapter } from './device.ts';
import { kernel } from '../../../compiler/ir/kernel.ts';
import * as d from '../../../dsl/ops.ts';
import { caseOf, differences, onBackend, onOracle } from '../../../test/harness.ts';
import { WebGpuBackend } from './webgpu.ts';

const adapter = await findAdapter();
const params = () => ({ w: uniformF32(3000, 1), b: uniformF32(37, 2), c: uniformF32(700, 3) });
const grads = (s: number) => ({
  w: uniformF32(3000, 10 + s, 0.5),
  b: uniformF32(37, 20 + s, 0.5),
  c: uniformF32(700, 30 + s, 0.5),
});

/** Counts of what a backend did while `f` ran: dispatches, submissions, reads, gathered copies. */
async function counted(b: WebGpuBackend, f: () => Promise<unknown>) {
  const [submit, read] = [b.submit.bind(b), b.read.bind(b)];
  let submits = 0,
    reads = 0;
  b.submit = (items) => (submits++, submit(items));
  b.read = (...a) => (reads++, read(...a));
  const [dispatches, gathered] = [b.dispatches, b.gatherer.gathered];
  try {
    await f();
  } finally {
    b.submit = submit;
    b.read = read;
  }
  return { dispatches: b.dispatches - dispatches, submits, reads, gathered: b.gatherer.gathered - gathered };
}

describe.runIf(adapter !== null)('reductions on WebGPU', () => {
  test('a reduction pass’s groupSum: each thread’s elements in order, then the threads pairwise (the oracle with sumLanes)', async () => {
    const gpu = await WebGpuBackend.create();
    const k = kernel({
      name: 'partials',
      outputs: [{ field: 's', storage: 'f32', axis: 'group', value: d.groupSum(d.field('x', 'f32')) }],
    });
    // Sums that depend on the order: 1e8 swallows the small terms that come after it.
    const n = 32 * 64;
    const x = Float32Array.from({ length: n }, (_, i) =>
      (i * 7) % 13 === 0 ? 1e8 : (i * 5) % 11 === 0 ? -1e8 : 0.3 + (i % 9),
    );
    const c = caseOf(k, { x, s: new Float32Array(n / 32) }, n);
    const lanes = webgpuOrder(gpu).sumLanes(k);
    expect(lanes).toBeGreaterThan(1);
    const got = await onBackend(gpu, c);
    expect(differences(got, onOracle(c, lanes)).count).toBe(0);
    expect(differences(got, onOracle(c)).count).toBeGreaterThan(0); // the element order is another one
    gpu.dispose();
  });

  test('blocked kernels: 300 tensors, one of many blocks, in chunks; sums and maxima, tensor and global, two levels: the device-order oracle’s bits, unchunked', async () => {
    // 16 KiB bindings: small chunks, so the large tensor's blocks run a piece a launch; the
    // oracle runs the arena whole, so these are also the bits of the arena unchunked. Blocks of
    // 256 groups: more blocks than a value's 256 lanes.
    const gpu = await WebGpuBackend.create({ maxBindingSize: 16384, reductionBlockGroups: 256 });
    const oracle = new DeviceOrderOracle(webgpuOrder(gpu));
    const { mul, tensorSum, tensorMax, globalSum, globalMax } = d;
    // Each reduction stored whole in a state of its own (f32, unquantized): a, b and c.
    const probe = defineOptimizer({
      name: 'reduce-probe',
      hyper: {},
      state: { a: momentum(), b: momentum(), c: momentum() },
      update: ({ p, g }) => ({ p: p!, a: tensorSum(g!), b: globalMax(g!), c: tensorMax(mul(g!, globalSum(g!))) }),
    });
    const sizes = Array.from({ length: 300 }, (_, i) => (i === 5 ? 9000 * 32 : 32 * (1 + ((i * 7919) % 61)) - (i % 5)));
    const ps = Object.fromEntries(sizes.map((n, i) => [`t${i}`, new Float32Array(n)]));
    // Sums that depend on the order: magnitudes from 2^-8 to 2^8.
    const gs = Object.fromEntries(
      sizes.map((n, i) => {
        const x = uniformF32(n, 50 + i, 1);
        for (let j = 0; j < n; j++) x[j] = Math.fround(x[j]! * 2 ** (((j * 13 + i) % 17) - 8));
        return [`t${i}`, x];
      }),
    );
    const opts = { paramDtype: 'f32', quantize: false, gradDtype: 'f32' } as const;
    const [dev, ora] = [
      await createOptimizer(probe(), ps, { ...opts, backend: gpu }),
      await createOptimizer(probe(), ps, { ...opts, backend: oracle }),
    ];
    expect(dev.chunks).toBeGreaterThan(10);
    await dev.step(gs);
    await ora.step(gs);
    const [a, b] = [await stored(dev), await stored(ora)];
    const bits = (x: ArrayLike<number>) => new Uint32Array(Float32Array.from(x).buffer);
    for (const f of Object.keys(b)) {
      const [x, y] = [bits(a[f]!), bits(b[f]!)];
      expect(x.length, f).toBe(y.length);
      expect(x.filter((v, i) => v !== y[i]).length, f).toBe(0);
    }
    // And they are what they claim: a sum within its f32 rounding, a maximum exactly.
    const max = (x: Float32Array) => x.reduce((m, v) => Math.max(m, v), -Infinity);
    const gmax = Math.max(...Object.values(gs).map(max));
    for (const i of [0, 5, 299]) {
      const xs = gs[`t${i}`]!;
      const at = dev.layout.tensors.find((t) => t.name === `t${i}`)!.offset;
      const [sum, abs] = xs.reduce(([s, a], x) => [s + x, a + Math.abs(x)], [0, 0]);
      expect(Math.abs(a['a']![at]! - sum), `tensor ${i}`).toBeLessThanOrEqual(xs.length * 2 ** -23 * abs);
      expect(a['b']![at], `tensor ${i}`).toBe(gmax);
    }
    for (const o of [dev, ora]) await o.dispose();
    gpu.dispose();
  });

  // What a step sends to the device: compute dispatches, copies gathered into dispatches (none:
  // host gradients are written), submissions and reads. A step without reductions runs its update
  // split where the device splits by default (a fused fma: the fast kernel, then its fallback).
  test.each([
    ['adamw: 1 (the update), or 2 split', adamw(), undefined, 0],
    ['adamw + clipGradNorm: 2 (the reduction pass, the update)', adamw(), 1, 2],
    ['lamb: 2', lamb(), undefined, 2],
    ['lars: 2', lars(), undefined, 2],
    ['lamb + clipGradNorm: 3 (two levels: ‖u‖ reads the clipped gradient)', lamb(), 1, 3],
    ['lars + clipGradNorm: 3', lars(), 1, 3],
  ] as const)('dispatches per step, %s; one submission, nothing read back', async (_l, def, clip, want) => {
    const gpu = await WebGpuBackend.create();
    const opt = await createOptimizer(def as OptimizerDef, params(), {
      backend: gpu,
      ...(clip ? { clipGradNorm: clip } : {}),
    });
    for (let s = 0; s < 2; s++) {
      const c = await counted(gpu, () => opt.step(grads(s)));
      expect(c).toEqual({ dispatches: want || (gpu.splitKernels ? 2 : 1), submits: 1, reads: 0, gathered: 0 });
    }
    if (clip) {
      // The norm is read when asked: one read of one value.
      const c = await counted(gpu, () => opt.gradNorm());
      expect(c).toEqual({ dispatches: 0, submits: 0, reads: 1, gathered: 0 });
    }
    await opt.dispose();
    gpu.dispose();
  });

  test('memory: no partial per group; clipGradNorm adds the block tables and sums (a few KiB), where the host combine adds 4 bytes a group', async () => {
    const gpu = await WebGpuBackend.create();
    const big = { w: uniformF32(1 << 18, 1), b: uniformF32(37, 2) };
    const added = async (backend: WebGpuBackend | JsBackend) => {
      const [plain, clipped] = [
        await createOptimizer(adamw(), big, { backend }),
        await createOptimizer(adamw(), big, { backend, clipGradNorm: 1 }),
      ];
      const d = clipped.memory().allocated - plain.memory().allocated;
      await plain.dispose();
      await clipped.dispose();
      return d;
    };
    const groups = (1 << 18) / 32 + 2;
    expect(await added(new JsBackend())).toBe(4 * groups);
    const onGpu = await added(gpu);
    expect(onGpu).toBeGreaterThan(0);
    expect(onGpu).toBeLessThan(4096);
    gpu.dispose();
  });

  test('in chunks: each pass and the update a launch per chunk, the combine no dispatch of its own', async () => {
    const gpu = await WebGpuBackend.create({ maxBindingSize: 4096 });
    const opt = await createOptimizer(lamb(), params(), { backend: gpu, clipGradNorm: 1 });
    const C = opt.chunks;
    expect(C).toBeGreaterThan(2);
    const c = await counted(gpu, () => opt.step(grads(0)));
    expect(c).toEqual({ dispatches: 3 * C, submits: 1, reads: 0, gathered: 0 });
    await opt.dispose();
    gpu.dispose();
  });

  test('stepTensor (LAMB’s reductions are per tensor): the combine over one tensor’s groups, the oracle’s bits', async () => {
    const gpu = await WebGpuBackend.create();
    const [dev, oracle] = [
      await createOptimizer(lamb(), params(), { backend: gpu }),
      await createOptimizer(lamb(), params(), { backend: new DeviceOrderOracle(webgpuOrder(gpu)) }),
    ];
    for (let s = 0; s < 2; s++)
      for (const k of ['c', 'w'] as const) for (const o of [dev, oracle]) await o.stepTensor(k, grads(s)[k]);
    const [a, b] = [await stored(dev), await stored(oracle)];
    for (const f of Object.keys(b)) expect([...a[f]!], f).toEqual([...b[f]!]);
    // The tensor without a gradient kept its weights.
    const fresh = await createOptimizer(lamb(), params(), { backend: gpu });
    expect((await dev.exportFp32())['b']).toEqual((await fresh.exportFp32())['b']);
    for (const o of [dev, oracle, fresh]) await o.dispose();
    gpu.dispose();
  });

  test('gradNorm() is the device-order oracle’s, and the JS backend’s within the rounding of the two orders', async () => {
    const gpu = await WebGpuBackend.create();
    const make = async (backend: WebGpuBackend | JsBackend | DeviceOrderOracle) =>
      createOptimizer(adamw(), params(), { backend, clipGradNorm: 1 });
    const [dev, js, oracle] = [
      await make(gpu),
      await make(new JsBackend()),
      await make(new DeviceOrderOracle(webgpuOrder(gpu))),
    ];
    expect(await dev.gradNorm()).toBeNaN(); // before the first step
    const n = 3000 + 37 + 700;
    for (let s = 0; s < 3; s++) {
      for (const o of [dev, js, oracle]) await o.step(grads(s));
      const [a, b] = [await dev.gradNorm(), await js.gradNorm()];
      expect(a, `step ${s}`).toBe(await oracle.gradNorm());
      // S = Σ g² (every term ≥ 0): the JS order's error is at most (n − 1)·2⁻²⁴·S, the device's
      // (each thread's 4 to 8 elements, the group's lanes, 64 groups a thread, 8 tree levels,
      // then rows and threads) far less; √ halves a relative error and rounds once more.
      const bound = ((n - 1 + 100) * 2 ** -24) / 2 + 2 * 2 ** -24;
      expect(Math.abs(a - b) / b, `step ${s}: ${a} vs ${b}`).toBeLessThanOrEqual(bound);
    }
    for (const o of [dev, js, oracle]) await o.dispose();
    gpu.dispose();
  });
});
