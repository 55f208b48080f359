// Updating TF.js's own buffers in place (tfjs/variables.ts, tfjs/on-gpu.ts) on tfjs-backend-webgpu
// (lavapipe in CI), at its edges: steps agree bit for bit with a host optimizer whatever the
// tensor's length and wherever TF.js keeps the gradient; a gradient TF.js frees as applyGradients
// returns is still what the step reads; reads after a step see the new weights; tensors sharing a
// variable's data keep theirs, and a value assigned to a variable becomes the weights; dispose
// leaves nothing behind; bad options are refused by name. Each guard has failed here without it.

/// <reference types="@webgpu/types" />
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { adamw } from '../optim/index.ts';
import { prng } from '../props/prng.ts';
import { findAdapter } from '../runtime/backends/webgpu/device.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import { FlashTfOptimizer } from './adapter.ts';
import { useTfWebGpu } from './webgpu.ts';

const adapter = await findAdapter();
const name = (s: string) => `${s}_${Math.random().toString(36).slice(2, 8)}`;

describe.runIf(adapter !== null)('FlashTfOptimizer updating TF.js WebGPU buffers in place', () => {
  beforeAll(async () => {
    if (!(await useTfWebGpu())) throw new Error('a GPU adapter was found but TF.js could not start its webgpu backend');
  });

  /** A variable of `init` alone on its data (the tensor it was made from is gone). */
  const variable = (init: Float32Array, shape = [init.length]) =>
    tf.tidy(() => tf.variable(tf.tensor(init, shape), true, name('v')));
  const values = (n: number, seed: number, scale = 1) => {
    const r = prng(seed);
    return Float32Array.from({ length: n }, () => (r() - 0.5) * scale);
  };
  const read = async (t: tf.Tensor) => Array.from(await t.data());

  it('steps equal a host optimizer bit for bit, for tensors of any length, gradients on the CPU or the GPU', async () => {
    const shapes = { a: [50, 61], b: [37], c: [1] } as Record<string, number[]>;
    const def = adamw({ lr: 1e-2, weightDecay: 0.1 });
    const init = Object.fromEntries(
      Object.entries(shapes).map(([k, s], i) => [
        k,
        values(
          s.reduce((x, y) => x * y),
          i,
        ),
      ]),
    );
    const vars = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, variable(init[k]!, s)]));
    const host = await createOptimizer(
      def,
      Object.fromEntries(Object.entries(shapes).map(([k, s]) => [vars[k]!.name, { data: init[k]!, shape: s }])),
      { paramDtype: 'f32', gradDtype: 'f32' },
    );
    const opt = new FlashTfOptimizer(def);
    for (let s = 0; s < 3; s++) {
      const g = Object.fromEntries(Object.keys(shapes).map((k, i) => [k, values(init[k]!.length, 100 * s + i, 0.1)]));
      await host.step(Object.fromEntries(Object.keys(shapes).map((k) => [vars[k]!.name, g[k]!])));
      // On the CPU (tf.tensor holds values only), or on the GPU (the result of a kernel).
      const grads = tf.tidy(() =>
        Object.fromEntries(
          Object.keys(shapes).map((k) => [vars[k]!.name, s === 1 ? tf.tensor(g[k]!) : tf.mul(tf.tensor(g[k]!), 1)]),
        ),
      );
      await opt.applyGradientsAsync(grads);
      tf.dispose(Object.values(grads));
    }
    const want = await host.readParams();
    for (const v of Object.values(vars)) expect(await read(v)).toEqual(Array.from(want[v.name]!));
    expect(opt.gpuStats).toEqual({ steps: 3, copiedGradients: 0, detached: 0, adopted: 0 });
    expect(opt.memory()!.fields['param']).toBeUndefined(); // the variables are the weights
    opt.dispose();
    tf.dispose(Object.values(vars));
  });

  it('a gradient disposed as applyGradients returns (as model.fit does) is still what the step reads', async () => {
    // 4096 values: large enough that TF.js computes on the GPU (WEBGPU_CPU_FORWARD stops at 1000).
    const init = values(4096, 21),
      g = values(4096, 22),
      other = values(4096, 23);
    const v = variable(init);
    const def = adamw({ lr: 0.1 });
    const opt = new FlashTfOptimizer(def);
    const grad = tf.tidy(() => tf.mul(tf.tensor1d(g), 1));
    opt.applyGradients({ [v.name]: grad }); // the first step: it compiles before it submits
    grad.dispose();
    // A tensor of the same size takes the gradient's buffer if TF.js got it back, and reading it
    // submits the kernel that writes it, long before the step's own submission.
    const z = tf.tidy(() => tf.mul(tf.tensor1d(other), 1));
    const zValues = z.data();
    await opt.settled();
    expect(Array.from(await zValues)).toEqual(Array.from(other));
    const host = await createOptimizer(def, { w: init }, { paramDtype: 'f32', gradDtype: 'f32' });
    await host.step({ w: g });
    expect(await read(v)).toEqual(Array.from((await host.readParams())['w']!));
    opt.dispose();
    tf.dispose([v, z]);
  });

  it('a variable read before a step reads the new values after it (TF.js cached the old ones)', async () => {
    const v = variable(values(100, 7));
    const opt = new FlashTfOptimizer(adamw({ lr: 0.1 }));
    await opt.applyGradientsAsync({ [v.name]: tf.ones([100]) });
    const before = await read(v); // TF.js keeps these values next to the buffer
    await opt.applyGradientsAsync({ [v.name]: tf.ones([100]) });
    const after = await read(v);
    expect(after).not.toEqual(before);
    expect(after).toEqual(Array.from((await opt.inner!.exportFp32())[v.name]!));
    expect(Array.from(v.dataSync())).toEqual(after); // a synchronous read (from the fresh cache)
    opt.dispose();
    v.dispose();
  });

  it("tensors sharing a variable's data keep their values; a value assigned to it becomes the weights", async () => {
    const init = values(64, 3),
      two = new Float32Array(64).fill(2);
    const def = adamw({ lr: 0.1 });
    const x = tf.tensor1d(init);
    const v = tf.variable(x, true, name('alias')); // x and v share one dataId, and so does y
    const y = tf.reshape(v, [8, 8]);
    const g = [values(64, 11), values(64, 12)];
    const opt = new FlashTfOptimizer(def);
    await opt.applyGradientsAsync({ [v.name]: tf.tensor1d(g[0]!) });
    expect(await read(x)).toEqual(Array.from(init));
    expect(await read(y)).toEqual(Array.from(init));
    expect(opt.gpuStats!.detached).toBe(1);
    v.assign(tf.tensor1d(two));
    await opt.applyGradientsAsync({ [v.name]: tf.tensor1d(g[1]!) });
    expect(opt.gpuStats!.adopted).toBe(1);
    // A host optimizer given the same steps, the assignment being an import of master weights.
    const host = await createOptimizer(def, { w: init }, { paramDtype: 'f32', gradDtype: 'f32' });
    await host.step({ w: g[0]! });
    await host.importFp32({ w: two });
    await host.step({ w: g[1]! });
    expect(await read(v)).toEqual(Array.from((await host.readParams())['w']!));
    expect(opt.gpuStats!.detached).toBe(1);
    opt.dispose();
    tf.dispose([x, y, v]);
  });

  it('dispose leaves TF.js as it found it, after aliases, assignments and steps', async () => {
    const before = tf.memory() as tf.MemoryInfo & { numBytesInGPU: number };
    const x = tf.tensor1d(values(64, 31));
    const v = tf.variable(x, true, name('d'));
    const y = tf.reshape(v, [8, 8]);
    const opt = new FlashTfOptimizer(adamw());
    for (let s = 0; s < 3; s++) {
      const g = tf.tidy(() => tf.mul(tf.onesLike(v), s + 1));
      await opt.applyGradientsAsync({ [v.name]: g });
      g.dispose();
    }
    tf.tidy(() => v.assign(tf.zeros([64])));
    const ones = tf.ones([64]);
    await opt.applyGradientsAsync({ [v.name]: ones });
    ones.dispose();
    expect(opt.gpuStats).toEqual({ steps: 4, copiedGradients: 0, detached: 1, adopted: 1 });
    opt.dispose();
    await opt.settled();
    tf.dispose([x, y, v]);
    const after = tf.memory() as tf.MemoryInfo & { numBytesInGPU: number };
    expect([after.numTensors, after.numDataBuffers, after.numBytes, after.numBytesInGPU]).toEqual([
      before.numTensors,
      before.numDataBuffers,
      before.numBytes,
      before.numBytesInGPU,
    ]);
  });

  it('refuses paramDtype bf16 and a step while the previous one is still running, naming them', async () => {
    const v = variable(values(16, 5));
    const bf16 = new FlashTfOptimizer(adamw(), { paramDtype: 'bf16' });
    expect(() => bf16.applyGradients({ [v.name]: tf.ones([16]) })).toThrow(
      /paramDtype must be 'f32' \(or left out\), got 'bf16'/,
    );
    const opt = new FlashTfOptimizer(adamw());
    opt.applyGradients({ [v.name]: tf.ones([16]) });
    expect(() => opt.applyGradients({ [v.name]: tf.ones([16]) })).toThrow(/previous step is still running/);
    await opt.settled();
    opt.dispose();
    v.dispose();
  });
});
