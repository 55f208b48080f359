// TF.js on WebGPU at GPT-2-small scale: FlashTfOptimizer(adamw()) against TF.js's own optimizers on
// tfjs-backend-webgpu, the same 148 variables (124.4M params), the same gradients each step. Each
// row is applyGradients as model.fit calls it (ours awaited until submitted, as fitCallback does),
// timed to the GPU's end; and the training state measured at the end of a step (variables,
// gradients and optimizer state: TF.js's GPU buffers plus the bytes our optimizer allocated).
//
//   SMALL=1 npx tsx bench/tfjs-gpu.ts        (a tiny version, for lavapipe)
//   for the GPU machine (TF.js's CommonJS parts need `require` in the bundle):
//     npx esbuild bench/tfjs-gpu.ts --bundle --platform=node --format=esm --target=node20 \
//       --external:webgpu --outfile=.device/tfjs-gpu.mjs \
//       --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
//     there: bash .device/device-run.sh node tfjs-gpu.mjs

import * as tf from '@tensorflow/tfjs-core';
import { adamw } from '../optim/index.ts';
import { installNavigatorGpu } from '../runtime/backends/dawn.ts';
import { tfWebGpu } from '../tfjs/webgpu.ts';

// TF.js's gradient functions, imported by name so a bundle carries them (tfjs/gradients.ts finds
// them at run time otherwise, which a bundle without node_modules cannot); under tsx this import
// fails (tfjs-core's ESM build has extensionless imports) and the adapter's own lookup serves.
await import('@tensorflow/tfjs-core/dist/register_all_gradients.js').catch(() => {});
const { FlashTfOptimizer, trainingBytes } = await import('../tfjs/adapter.ts');

const SMALL = process.env.SMALL === '1';
const STEPS = Number(process.env.STEPS ?? (SMALL ? 5 : 20));
// useTfWebGpu() by hand, with the package imported by name so a bundle (stage.sh) carries it.
if (!(await installNavigatorGpu())) throw new Error('bench/tfjs-gpu.ts: no WebGPU entry point');
await import('@tensorflow/tfjs-backend-webgpu');
if (!(await tf.setBackend('webgpu'))) throw new Error('bench/tfjs-gpu.ts: no GPU adapter');
const tfb = tfWebGpu()!;
console.log(`# bench/tfjs-gpu.ts, ${new Date().toISOString()}; ${SMALL ? 'SMALL=1 ' : ''}STEPS=${STEPS}`);
console.log(
  `backend ${tf.getBackend()}, adapter ${(tfb.device as { adapterInfo?: GPUAdapterInfo }).adapterInfo?.vendor ?? '?'}`,
);

const d = SMALL ? 64 : 768,
  V = SMALL ? 500 : 50257,
  C = SMALL ? 64 : 1024;
const shapes: number[][] = [
  [V, d],
  [C, d],
];
for (let l = 0; l < 12; l++)
  shapes.push([d], [d], [d, 3 * d], [3 * d], [d, d], [d], [d], [d], [d, 4 * d], [4 * d], [4 * d, d], [d]);
shapes.push([d], [d]);
const n = shapes.reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);

/** Wait for everything submitted so far (a one-value read of the last variable). */
const sync = async (v: tf.Tensor) => {
  const x = tf.slice(tf.reshape(v, [-1]), [0], [1]);
  await x.data();
  x.dispose();
};

const rows: string[] = [];
for (const [name, make] of [
  ['FlashTfOptimizer(adamw()), 8-bit states, in place', () => new FlashTfOptimizer(adamw({ lr: 1e-4 }))],
  ['tf.train.adam', () => tf.train.adam(1e-4)],
  ['tf.train.sgd', () => tf.train.sgd(1e-3)],
] as const) {
  const before = trainingBytes().total;
  // In a tidy, so no tensor shares a variable's data (a model's layers make theirs this way too).
  const vars = shapes.map((s, i) =>
    tf.tidy(() => tf.variable(tf.randomNormal(s, 0, 0.02), true, `gpt2_${rows.length}_${i}`)),
  );
  const grads: tf.NamedTensorMap = Object.fromEntries(vars.map((v) => [v.name, tf.randomNormal(v.shape, 0, 1e-3)]));
  const opt = make();
  const step = async () => {
    opt.applyGradients(grads as never); // a NamedTensorMap (the typings ask for variables)
    if (opt instanceof FlashTfOptimizer) await opt.settled();
  };
  for (let i = 0; i < 3; i++) await step();
  await sync(vars.at(-1)!);
  const t0 = performance.now();
  for (let i = 0; i < STEPS; i++) await step();
  await sync(vars.at(-1)!);
  const ms = (performance.now() - t0) / STEPS;
  // Variables, gradients and optimizer state, with nothing else of the step alive.
  const state = (trainingBytes(opt).total - before) / n;
  const own = opt instanceof FlashTfOptimizer ? opt.memory()!.allocated / n : (state * n - 8 * n) / n;
  rows.push(
    `| ${name} | ${shapes.length} | ${(n / 1e6).toFixed(1)}M | ${ms.toFixed(2)} | ${(n / ms / 1e6).toFixed(2)} | ${state.toFixed(2)} | ${own.toFixed(2)} |`,
  );
  console.log(rows.at(-1));
  opt.dispose();
  if (opt instanceof FlashTfOptimizer) await opt.settled(); // its buffers go after the step in flight
  tf.dispose([...vars, ...Object.values(grads)]);
}
console.log(
  `\n| optimizer on tfjs-backend-webgpu | variables | params | ms/step | Gparam/s | training state B/param (variables + gradients + optimizer) | optimizer B/param |\n|---|---|---|---|---|---|---|\n${rows.join('\n')}`,
);
process.exit(0);
