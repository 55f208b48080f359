import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { adamw, defineOptimizer, ema, lion, momentum, sgd } from '../optim/index.ts';
import { mul, sign, sub } from '../dsl/ops.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import { FlashTfOptimizer, toF32 } from './adapter.ts';
import { JsThreadsBackend } from '../runtime/backends/js/threads.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A seeded least-squares problem: y = X·w* with 64 samples and 20 features. */
function problem(seed: number) {
  const X = tf.randomNormal([64, 20], 0, 1, 'float32', seed);
  const wStar = tf.randomNormal([20, 1], 0, 1, 'float32', seed + 1);
  return { X, y: tf.matMul(X, wStar) };
}

const isBf16 = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length).every((u) => (u & 0xffff) === 0);
const name = (s: string) => `${s}_${Math.random().toString(36).slice(2, 8)}`;

async function trainLsq(
  opt: FlashTfOptimizer<any>,
  steps: number,
): Promise<{ first: number; last: number; w: tf.Variable }> {
  const { X, y } = problem(7);
  const w = tf.variable(tf.zeros([20, 1]), true, name('w'));
  const loss = () => tf.mean(tf.square(tf.sub(tf.matMul(X, w), y))) as tf.Scalar;
  let first = NaN,
    last = NaN;
  for (let s = 0; s < steps; s++) {
    const v = await opt.minimizeAsync(loss, [w]);
    if (s === 0) first = v;
    last = v;
  }
  return { first, last, w };
}

/** A 20 → 16 → 1 MLP with seeded initial weights. */
function mlp(seed: number) {
  return tfl.sequential({
    layers: [
      tfl.layers.dense({
        units: 16,
        inputShape: [20],
        activation: 'relu',
        kernelInitializer: tfl.initializers.glorotUniform({ seed }),
      }),
      tfl.layers.dense({ units: 1, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }),
    ],
  });
}

describe('FlashTfOptimizer', () => {
  it('minimize trains a least-squares fit with FlashAdamW; variables hold bf16 values', async () => {
    const opt = new FlashTfOptimizer(adamw({ lr: 0.05, weightDecay: 0 }));
    const { first, last, w } = await trainLsq(opt, 150);
    expect(last).toBeLessThan(first * 0.02);
    expect(isBf16(w.dataSync() as Float32Array)).toBe(true);
    expect(opt.iterations).toBe(150);
    w.dispose();
    opt.dispose();
  });

  it("puts exactly the runtime's parameters into the tf variables (applyGradients, NamedTensor[] form)", async () => {
    const init = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i) * 0.3);
    const grads = Array.from({ length: 4 }, (_, s) =>
      Float32Array.from({ length: 100 }, (_, i) => Math.cos(i * (s + 1)) * 0.01),
    );
    const def = adamw({ lr: 1e-2, weightDecay: 0.1 });
    const direct = await createOptimizer(def, { w: { data: init.slice(), shape: [100] } }, {});
    for (const g of grads) await direct.step({ w: g });
    const want = toF32((await direct.readParams()).w!);
    const v = tf.variable(tf.tensor1d(init), true, name('v'));
    const opt = new FlashTfOptimizer(def);
    for (const g of grads) opt.applyGradients([{ name: v.name, tensor: tf.tensor1d(g) }]);
    await opt.settled();
    expect(Array.from(v.dataSync())).toEqual(Array.from(want));
    expect(want.some((x, i) => x !== init[i])).toBe(true);
    v.dispose();
    opt.dispose();
  });

  it('works with model.compile and model.fit (tfjs-layers), waiting for each step', async () => {
    const { X, y } = problem(11);
    const model = mlp(3);
    const optimizer = new FlashTfOptimizer(adamw({ lr: 0.01 }));
    model.compile({ optimizer, loss: 'meanSquaredError' });
    const h = await model.fit(X, y, {
      epochs: 40,
      batchSize: 16,
      shuffle: false,
      verbose: 0,
      callbacks: [optimizer.fitCallback()],
    });
    const losses = h.history.loss as number[];
    expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.2);
    expect(optimizer.iterations).toBe(40 * 4);
    model.dispose();
    optimizer.dispose();
  });

  it('trains a user-defined optimizer (defineOptimizer) through TF.js', async () => {
    // Sign descent with momentum, written in the DSL: not an optimizer either library ships.
    const signum = defineOptimizer({
      name: 'signum',
      hyper: { lr: 0.01, beta: 0.9 },
      state: { m: momentum() },
      update: ({ p, g, m }, u) => {
        const m1 = ema(m!, g!, u('beta'));
        return { p: sub(p!, mul(u('lr'), sign(m1))), m: m1 };
      },
    });
    const { first, last } = await trainLsq(new FlashTfOptimizer(signum({ lr: 0.02 })), 300);
    expect(last).toBeLessThan(first * 0.05);
  });

  it('trains with FlashLion and FlashSGD too', async () => {
    for (const opt of [
      new FlashTfOptimizer(lion({ lr: 0.01 })),
      new FlashTfOptimizer(sgd({ lr: 0.01, momentum: 0.9 })),
    ]) {
      const { first, last } = await trainLsq(opt as FlashTfOptimizer<any>, 200);
      expect(last).toBeLessThan(first * 0.05);
    }
  });

  it('rejects a variable that appears after the first step, naming it', async () => {
    const a = tf.variable(tf.ones([4]), true, name('a'));
    const b = tf.variable(tf.ones([4]), true, name('b'));
    const opt = new FlashTfOptimizer(adamw({ lr: 0.1 }));
    await opt.applyGradientsAsync({ [a.name]: tf.ones([4]) });
    expect(() => opt.applyGradients({ [a.name]: tf.ones([4]), [b.name]: tf.ones([4]) })).toThrow(
      new RegExp(`variable ${b.name} appeared after the first step`),
    );
    expect(() => toF32(new Int8Array(2) as never)).toThrow(
      /must be a Uint16Array \(bf16\) or Float32Array, got Int8Array/,
    );
    tf.dispose([a, b]);
  });

  it('model.fit trains correctly without fitCallback (the JS backend steps inside applyGradients): weights bit-identical to fit with it', async () => {
    const { X, y } = problem(11);
    const run = async (callback: boolean) => {
      const model = mlp(3);
      const optimizer = new FlashTfOptimizer(adamw({ lr: 0.01 }));
      model.compile({ optimizer, loss: 'meanSquaredError' });
      const h = await model.fit(X, y, {
        epochs: 20,
        batchSize: 16,
        shuffle: false,
        verbose: 0,
        callbacks: callback ? [optimizer.fitCallback()] : [],
      });
      const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
      model.dispose();
      return { losses: h.history.loss as number[], weights };
    };
    const plain = await run(false),
      waited = await run(true);
    expect(plain.losses.at(-1)!).toBeLessThan(plain.losses[0]! * 0.2); // it trains (it did not: loss flat)
    expect(plain.weights).toEqual(waited.weights);
    expect(plain.losses).toEqual(waited.losses);
  });

  it('setHyper with a bad value throws at once and the optimizer keeps training', async () => {
    const v = tf.variable(tf.ones([8]), true, name('h'));
    const opt = new FlashTfOptimizer(adamw({ lr: 0.1 }));
    expect(() => opt.setHyper({ lr: -1 })).toThrow(/lr must be >= 0, got -1/);
    opt.applyGradients({ [v.name]: tf.ones([8]) });
    expect(() => opt.setHyper({ lr: -1 })).toThrow(/lr must be >= 0/);
    opt.applyGradients({ [v.name]: tf.ones([8]) });
    expect(Array.from(v.dataSync()).every((x) => x < 1)).toBe(true);
    v.dispose();
  });

  it('a variable that is not float32 is refused when first seen, naming it', () => {
    const i = tf.variable(tf.tensor1d([1, 2, 3], 'int32'), true, name('i'));
    const opt = new FlashTfOptimizer(adamw());
    expect(() => opt.applyGradients({ [i.name]: tf.ones([3]) })).toThrow(
      new RegExp(`variable ${i.name} has dtype int32`),
    );
    expect(opt.inner).toBeNull();
    i.dispose();
  });

  it('on an asynchronous backend: a failed step is thrown from the next call once, then training goes on; overlapping steps are refused', async () => {
    const backend = new JsThreadsBackend({ threads: 2 });
    const v = tf.variable(tf.ones([64]), true, name('t'));
    const opt = new FlashTfOptimizer(adamw({ lr: 0.1 }), { backend, onNonFinite: 'error' });
    await opt.applyGradientsAsync({ [v.name]: tf.ones([64]) });
    const after1 = Array.from(v.dataSync());
    const bad = tf.fill([64], NaN);
    opt.applyGradients({ [v.name]: bad }); // queued; fails in the background
    await opt.queue;
    expect(() => opt.applyGradients({ [v.name]: tf.ones([64]) })).toThrow(/non-finite/);
    expect(Array.from(v.dataSync())).toEqual(after1); // the failed step changed nothing
    opt.applyGradients({ [v.name]: tf.ones([64]) }); // recovered
    expect(() => opt.applyGradients({ [v.name]: tf.ones([64]) })).toThrow(/previous step is still running/);
    await opt.settled();
    expect(Array.from(v.dataSync()).every((x, i) => x < after1[i]!)).toBe(true);
    expect(opt.inner!.stepCount).toBe(2);
    v.dispose();
    backend.dispose();
  });
});
