// FlashTfOptimizer on TF.js's WebGPU backend (tfjs-backend-webgpu 4.22.0, in Node through Dawn:
// lavapipe in CI). An MNIST MLP trained through model.fit reaches tf.train.adam's test accuracy
// (within 0.5 pp) with no host copy of a gradient or a weight per step, counted where transfers
// happen; end-to-end bytes per parameter are measured for both and printed (docs/tfjs.md). The
// edges of updating TF.js's buffers in place are tested in tfjs/in-place.test.ts.

/// <reference types="@webgpu/types" />
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adamw } from '../optim/index.ts';
import { prng } from '../props/prng.ts';
import { findAdapter } from '../runtime/backends/webgpu/device.ts';
import { FlashTfOptimizer } from './adapter.ts';
import type { GpuStats } from './on-gpu.ts';
import type { TrainingBytes } from './memory.ts';
import { peakOfSteps, trainingBytes } from './memory.ts';
import { Traffic } from './traffic.ts';
import type { TfWebGpu } from './webgpu.ts';
import { useTfWebGpu } from './webgpu.ts';

const adapter = await findAdapter();

/** The `mnist` package's digits: per digit the first `train` images train, the next `test` test; shuffled with a seed. */
function digits(train: number, test: number) {
  const mnist = createRequire(import.meta.url)('mnist') as { raw: number[] }[];
  const pick = (from: number, n: number) => {
    const order = Array.from({ length: 10 * n }, (_, i) => i);
    const rnd = prng(from + n);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const x = new Float32Array(10 * n * 784),
      y = new Float32Array(10 * n * 10);
    order.forEach((k, row) => {
      const digit = k % 10,
        i = from + Math.floor(k / 10);
      x.set(mnist[digit]!.raw.slice(i * 784, (i + 1) * 784), row * 784);
      y[row * 10 + digit] = 1;
    });
    return { x: tf.tensor2d(x, [10 * n, 784]), y: tf.tensor2d(y, [10 * n, 10]), n: 10 * n };
  };
  return { train: pick(0, train), test: pick(train, test) };
}

/** 784 → 64 (relu) → 10 (softmax), glorot-uniform from fixed seeds: both optimizers start equal. */
const mlp = () =>
  tfl.sequential({
    layers: [
      tfl.layers.dense({
        units: 64,
        inputShape: [784],
        activation: 'relu',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
      }),
      tfl.layers.dense({
        units: 10,
        activation: 'softmax',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }),
      }),
    ],
  });

interface Run {
  accuracy: number;
  /** Measured at the end of applyGradients (gradients alive), at the step where it was largest. */
  peak: TrainingBytes;
  /** What was alive before the model existed (the data), subtracted from `peak`. */
  base: TrainingBytes;
  params: number;
  /** Bytes of the optimizer's own state after training: Adam's m and v tensors, or FlashAdamW's allocation. */
  state: number;
  /** FlashTfOptimizer.gpuStats at the end of training. */
  stats: GpuStats | null;
  seconds: number;
}

describe.runIf(adapter !== null)('FlashTfOptimizer on TF.js WebGPU', () => {
  let tfb: TfWebGpu;
  let data: ReturnType<typeof digits>;
  const runs: Record<string, Run> = {};
  let traffic: Traffic | null = null;
  const EPOCHS = 8,
    BATCH = 64;

  beforeAll(async () => {
    const b = await useTfWebGpu();
    if (!b) throw new Error('a GPU adapter was found but TF.js could not start its webgpu backend');
    tfb = b;
    data = digits(300, 300);
    // The data goes to the GPU now, so the baseline of every measurement holds it.
    for (const t of [data.train.x, data.train.y, data.test.x, data.test.y]) tfb.uploadToGPU(t.dataId);
  });
  afterAll(() => {
    traffic?.restore();
    tf.dispose([data?.train.x, data?.train.y, data?.test.x, data?.test.y]);
  });

  /** Train the MLP with `opt` through model.fit (same initial weights and batches for every optimizer). */
  async function train(opt: tf.Optimizer, callbacks: tfl.CustomCallbackArgs[]): Promise<Run> {
    const t0 = performance.now();
    const base = trainingBytes(opt);
    const model = mlp();
    const params = model.countParams();
    model.compile({ optimizer: opt, loss: 'categoricalCrossentropy' });
    const peakNow = peakOfSteps(opt, base);
    await model.fit(data.train.x, data.train.y, {
      epochs: EPOCHS,
      batchSize: BATCH,
      shuffle: false,
      verbose: 0,
      callbacks,
    });
    const hits = tf.tidy(() => {
      const guess = tf.argMax(model.predict(data.test.x) as tf.Tensor, 1);
      return tf.sum(tf.equal(guess, tf.argMax(data.test.y, 1)));
    });
    const accuracy = (await hits.data())[0]! / data.test.n;
    hits.dispose();
    let state: number;
    if (!(opt instanceof FlashTfOptimizer)) {
      const [iterations, ...slots] = await opt.getWeights();
      iterations!.tensor.dispose();
      state = slots.reduce((a, w) => a + 4 * w.tensor.size, 0);
    } else {
      state = opt.memory()!.allocated;
      // The variables are the optimizer's master weights: what TF.js reads is what it holds.
      const want = await opt.inner!.exportFp32();
      for (const w of model.trainableWeights) {
        const v = w.read() as tf.Variable;
        expect(Array.from(await v.data()), v.name).toEqual(Array.from(want[v.name]!));
        expect(Array.from(v.dataSync()), v.name).toEqual(Array.from(want[v.name]!));
      }
    }
    const stats = opt instanceof FlashTfOptimizer ? opt.gpuStats : null;
    model.dispose();
    opt.dispose();
    if (opt instanceof FlashTfOptimizer) await opt.settled();
    return { accuracy, peak: peakNow(), base, params, state, stats, seconds: (performance.now() - t0) / 1000 };
  }

  it('tf.train.adam trains the MNIST MLP (the reference)', async () => {
    runs['adam'] = await train(tf.train.adam(1e-3), []);
    expect(runs['adam'].accuracy).toBeGreaterThan(0.8);
  });

  it('FlashAdamW through model.fit: within 0.5 pp of tf.train.adam, with no host copy of gradients or weights after the first step', async () => {
    const opt = new FlashTfOptimizer(adamw({ lr: 1e-3 }));
    traffic = new Traffic(tfb);
    const t = traffic;
    let stepsCounted = 0;
    const count: tfl.CustomCallbackArgs = {
      onBatchEnd: async () => {
        if (t.on) stepsCounted++;
        t.on = true; // from the end of the first step (the optimizer is created and compiled by then)
      },
      onTrainEnd: async () => {
        t.on = false;
      },
    };
    runs['flash'] = await train(opt, [opt.fitCallback(), count]);
    traffic.restore();
    traffic = null;
    const steps = EPOCHS * Math.ceil(data.train.n / BATCH);
    expect(runs['flash'].stats).toEqual({ steps, copiedGradients: 0, detached: 0, adopted: 0 });
    expect(stepsCounted).toBe(steps - 1);
    const bytes = 4 * runs['flash'].params,
      sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
    console.log(
      `host ↔ GPU over ${stepsCounted} steps (one step's gradients or weights: ${bytes} bytes): ${t.uploads.length} uploads, ${sum(t.uploads)} bytes (largest ${Math.max(...t.uploads)}); ${t.readbacks.length} readbacks, ${sum(t.readbacks)} bytes (largest ${Math.max(0, ...t.readbacks)}); TF.js reads of ${JSON.stringify([...new Set(t.tensorReads)])}-element tensors; ${t.gpuCopies} dataToGPU copies`,
    );
    // What crosses is TF.js's own: its kernels' uniforms, each epoch's batch indices, and the
    // loss (one f32 read per step). A gradient or weight going either way would add one step's
    // `bytes` per step.
    expect(new Set(t.tensorReads)).toEqual(new Set([1]));
    expect(Math.max(0, ...t.readbacks)).toBeLessThanOrEqual(4);
    expect(sum(t.uploads) / stepsCounted).toBeLessThan(bytes / 10);
    expect(t.gpuCopies).toBe(0);
    console.log(
      `test accuracy over ${data.test.n} digits: FlashAdamW ${(100 * runs['flash'].accuracy).toFixed(2)} % (${runs['flash'].seconds.toFixed(1)} s), tf.train.adam ${(100 * runs['adam']!.accuracy).toFixed(2)} % (${runs['adam']!.seconds.toFixed(1)} s)`,
    );
    expect(Math.abs(runs['flash'].accuracy - runs['adam']!.accuracy)).toBeLessThanOrEqual(0.005);
  });

  it('end-to-end bytes per parameter, measured at the step (printed)', () => {
    expect(Object.keys(runs).sort(), 'the two training tests run first').toEqual(['adam', 'flash']);
    const rows = Object.entries(runs).map(([k, r]) => {
      const per = (x: number) => x / r.params;
      const tensors = per(r.peak.tensors - r.base.tensors),
        gpu = per(r.peak.gpu! - r.base.gpu!),
        own = per(r.peak.optimizer);
      const label = k === 'adam' ? 'tf.train.adam' : 'FlashTfOptimizer(adamw())';
      return { k, label, tensors, gpu, own, total: gpu + own, batch: per(4 * BATCH * (784 + 10)), state: per(r.state) };
    });
    console.log(
      [
        `bytes per parameter (${runs['adam']!.params} parameters), at the end of applyGradients, less what was alive before the model (the data set):`,
        '| optimizer | TF.js tensors | TF.js GPU buffers | optimizer outside TF.js | end-to-end | of which the batch | training state | optimizer alone |',
        '|---|---|---|---|---|---|---|---|',
        ...rows.map(
          (r) =>
            `| ${r.label} | ${r.tensors.toFixed(2)} | ${r.gpu.toFixed(2)} | ${r.own.toFixed(2)} | ${r.total.toFixed(2)} | ${r.batch.toFixed(2)} | ${(r.total - r.batch).toFixed(2)} | ${r.state.toFixed(2)} |`,
        ),
      ].join('\n'),
    );
    const [adam, flash] = [rows.find((r) => r.k === 'adam')!, rows.find((r) => r.k === 'flash')!];
    // Adam: f32 weights, gradients, m and v (16); FlashAdamW: weights and gradients stay TF.js's
    // (8), the optimizer adds 8-bit m and v with their scales (about 2.1 with this model's padding).
    expect(adam.total - adam.batch).toBeGreaterThanOrEqual(16);
    expect(flash.own).toBeLessThan(2.5);
    expect(flash.total).toBeLessThan(adam.total - 5.5);
  });
});
