// Reductions on WebGPU (combine.ts): the combine stores what the device-order oracle computes
// (test/device-oracle.ts), bit for bit, over blocks, windows, ranges, sums and maxima, tensor and
// global scope, more rows than threads; a step with reductions is a fixed number of dispatches in
// one submission that reads nothing back; gradNorm() reads one value, when asked.
import { describe, expect, test } from 'vitest';
import type { OptimizerDef } from '../../../optim/define.ts';
import { adamw, lamb, lars } from '../../../optim/index.ts';
import { uniformF32 } from '../../../props/prng.ts';
import { combineFixture, DeviceOrderOracle, uploadPartials, webgpuOrder } from '../../../test/device-oracle.ts';
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
  const [launches, gathered] = [b.launches, b.gatherer.gathered];
  try {
    await f();
  } finally {
    b.submit = submit;
    b.read = read;
  }
  return { dispatches: b.launches - launches, submits, reads, gathered: b.gatherer.gathered - gathered };
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

  test('the combine: blocks, windows, ranges, sum and max, tensor and global, 300 rows: the device-order oracle’s bits', async () => {
    // 1024-byte bindings: blocks of 128 groups, partials read through many windows.
    const gpu = await WebGpuBackend.create({ maxBindingSize: 1024 });
    const oracle = new DeviceOrderOracle(webgpuOrder(gpu));
    // Row 5 holds six blocks.
    const { tensors, groups, reductions } = combineFixture(700);
    const data = reductions.map((_, i) => uniformF32(groups, 40 + i, 100));
    const plan = { reductions, rows: tensors.length, tensors };
    const dev = gpu.combiner({ ...plan, partials: await uploadPartials(gpu, data) });
    const ora = oracle.combiner({ ...plan, partials: await uploadPartials(oracle, data) });
    expect(dev.windows.length).toBeGreaterThan(groups / 256);
    for (const range of [[0, groups] as const, [700, 5000] as const]) {
      for (const level of [1, 2]) {
        const { dispatches } = await counted(gpu, () => gpu.submit([{ combine: dev, level, groups: range }]));
        // One blocks dispatch per window (each at most 1024 bytes of partials), and the rows'.
        expect(dispatches, `level ${level}`).toBe(dev.windows.length + 1);
        await oracle.submit([{ combine: ora, level, groups: range }]);
      }
      const [got, want] = [await gpu.read(dev.values), await oracle.read(ora.values)];
      expect([...got]).toEqual([...want]);
      // And they are the sums and maxima they claim, within f32 rounding (groups outside the range count nothing).
      const R = reductions.length;
      for (const t of tensors) {
        const xs = [...data[0]!.subarray(Math.max(range[0], t.groups[0]), Math.min(range[1], t.groups[1]))];
        const exact = xs.reduce((a, b) => a + b, 0);
        const bound = xs.length * 2 ** -23 * xs.reduce((a, b) => a + Math.abs(b), 0);
        expect(Math.abs(got[t.row * R]! - exact), `row ${t.row}`).toBeLessThanOrEqual(bound);
      }
      const all = data[1]!.subarray(range[0], Math.min(range[1], groups));
      expect(got[R + 1]).toBe(Math.max(...all));
    }
    dev.free();
    gpu.dispose();
  });

  // What a step sends to the device: kernel launches and combine dispatches (both in `launches`),
  // copies gathered into dispatches (none: host gradients are written), submissions and reads.
  test.each([
    ['adamw: 1 (the update)', adamw(), undefined, 1],
    ['adamw + clipGradNorm: 4 (a reduction pass, a blocks and a rows dispatch, the update)', adamw(), 1, 4],
    ['lamb: 4', lamb(), undefined, 4],
    ['lars: 4', lars(), undefined, 4],
    ['lamb + clipGradNorm: 7 (two levels: ‖u‖ reads the clipped gradient)', lamb(), 1, 7],
    ['lars + clipGradNorm: 7', lars(), 1, 7],
  ] as const)('dispatches per step, %s; one submission, nothing read back', async (_l, def, clip, want) => {
    const gpu = await WebGpuBackend.create();
    const opt = await createOptimizer(def as OptimizerDef, params(), {
      backend: gpu,
      ...(clip ? { clipGradNorm: clip } : {}),
    });
    for (let s = 0; s < 2; s++) {
      const c = await counted(gpu, () => opt.step(grads(s)));
      expect(c).toEqual({ dispatches: want, submits: 1, reads: 0, gathered: 0 });
    }
    if (clip) {
      // The norm is read when asked: one read of one value.
      const c = await counted(gpu, () => opt.gradNorm());
      expect(c).toEqual({ dispatches: 0, submits: 0, reads: 1, gathered: 0 });
    }
    await opt.dispose();
    gpu.dispose();
  });

  test('in chunks: each pass and the update a launch per chunk, the combine still 2 dispatches a level', async () => {
    const gpu = await WebGpuBackend.create({ maxBindingSize: 4096 });
    const opt = await createOptimizer(lamb(), params(), { backend: gpu, clipGradNorm: 1 });
    const C = opt.chunks;
    expect(C).toBeGreaterThan(2);
    const c = await counted(gpu, () => opt.step(grads(0)));
    expect(c).toEqual({ dispatches: 3 * C + 2 * 2, submits: 1, reads: 0, gathered: 0 });
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
