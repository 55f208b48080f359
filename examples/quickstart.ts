// Quickstart: train a small character-level language model on first names twice, once with
// TF.js's fp32 Adam and once with FlashAdamW (24-bit master weights, 8-bit states), swapping one
// line. Prints bytes per parameter, final validation loss and training speed of each. Bytes per
// parameter are the whole training state, measured: TF.js's own tensors (its f32 variables, and
// tf.train.adam's moments) from tf.memory(), the f32 gradients handed to the optimizer, and what
// the flashoptim optimizer allocated (opt.memory()); the optimizer's own figure stands beside it.
//
//   npx tsx examples/quickstart.ts          (about 20 s on 2 cores)

import * as tf from '@tensorflow/tfjs-core';
import '../tfjs/gradients.ts';
import '@tensorflow/tfjs-backend-cpu';
import { adamw } from '../optim/index.ts';
import { FlashTfOptimizer } from '../tfjs/adapter.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import { loadNames, trainNames } from './names.ts';
import { markdownTable } from './report.ts';

/** Optimizer-only throughput on 2^20 parameters (Mparam/s): a few steps of each, after a warm-up. */
async function stepThroughput(): Promise<{ tf: number; flash: number }> {
  const n = 1 << 20,
    reps = 4;
  const g = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 1e-3);
  const w = tf.variable(tf.tensor1d(g), true, 'quickstart_w'),
    gt = tf.tensor1d(g);
  const adam = tf.train.adam(1e-3);
  const grads = [{ name: w.name, tensor: gt }];
  adam.applyGradients(grads);
  let t0 = performance.now();
  for (let i = 0; i < reps; i++) adam.applyGradients(grads);
  const tfRate = (n * reps) / (performance.now() - t0) / 1e3;
  adam.dispose();
  tf.dispose([w, gt]);
  const flash = await createOptimizer(adamw({ lr: 1e-3 }), { w: g.slice() });
  await flash.step({ w: g });
  t0 = performance.now();
  for (let i = 0; i < reps; i++) await flash.step({ w: g });
  return { tf: tfRate, flash: (n * reps) / (performance.now() - t0) / 1e3 };
}

export interface QuickstartRow {
  name: string;
  /** Variables + gradients + optimizer state, bytes per parameter (measured). */
  endToEnd: number;
  /** The optimizer's own state (and, for flashoptim, its copy of the weights and gradients). */
  optimizerOnly: number;
  valLoss: number;
  stepsPerS: number;
  mparamPerS: number;
}

/**
 * Wrap `opt.applyGradients` to count the gradients' bytes; `afterStep` then measures TF.js's
 * tensors (less `base`: what lived before the model) once each step has landed.
 */
function measured(opt: tf.Optimizer, base: number) {
  const m = { tfBytes: 0, gradBytes: 0, params: 0, afterStep: () => {} };
  const apply = opt.applyGradients.bind(opt);
  opt.applyGradients = (g) => {
    const list = Array.isArray(g) ? g.map((x) => x.tensor) : Object.values(g);
    m.gradBytes = list.reduce((a, t) => a + t.size * 4, 0);
    m.params = list.reduce((a, t) => a + t.size, 0);
    apply(g);
  };
  m.afterStep = () => {
    m.tfBytes = tf.memory().numBytes - base;
  };
  return m;
}

export async function quickstart(steps = 600): Promise<QuickstartRow[]> {
  await tf.setBackend('cpu');
  const data = loadNames();
  const lr = 3e-3;
  const runs = [
    // The reference: TF.js Adam, fp32 weights and states (4 + 4 + 4 + 4 B/param with the gradient).
    { name: 'tf.train.adam (fp32)', make: () => tf.train.adam(lr) },
    // The one-line swap: any flashoptim optimizer is a tf.Optimizer.
    { name: 'FlashAdamW', make: () => new FlashTfOptimizer(adamw({ lr, weightDecay: 0 })) },
  ];
  const out = [];
  const rate = await stepThroughput();
  // The validation tensors trainNames keeps for the whole run are data, not training state.
  const valBytes = (data.val.n * 3 + data.val.n) * 4;
  for (const r of runs) {
    const opt = r.make();
    const before = tf.memory().numBytes;
    const m = measured(opt, before + valBytes);
    const t0 = performance.now();
    const res = await trainNames(data, opt, {
      seed: 1,
      steps,
      batch: 64,
      every: steps / 3,
      afterStep: m.afterStep,
      log: (s) => console.log(`${r.name.padEnd(22)} ${s}`),
    });
    const seconds = (performance.now() - t0) / 1000;
    // flashoptim's arena: every byte it allocated (fields, alignment, row tables, counters).
    const arena = opt instanceof FlashTfOptimizer ? opt.memory()!.allocated : 0;
    const tfState = m.tfBytes - m.params * 4; // tf.train.adam's moments; nothing for ours
    out.push({
      name: r.name,
      endToEnd: (m.tfBytes + m.gradBytes + arena) / m.params,
      optimizerOnly: (arena + tfState) / m.params,
      valLoss: res.valLoss,
      stepsPerS: steps / seconds,
      mparamPerS: opt instanceof FlashTfOptimizer ? rate.flash : rate.tf,
    });
    opt.dispose();
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const t0 = performance.now();
  const rows = await quickstart();
  console.log(
    '\n' +
      markdownTable(
        [
          'optimizer',
          'bytes/param, whole training state (TF.js variables + gradients + optimizer)',
          'bytes/param, optimizer alone',
          'final validation loss',
          'training steps/s',
          'optimizer step, Mparam/s (2^20 params)',
        ],
        rows.map((r) => [
          r.name,
          r.endToEnd.toFixed(2),
          r.optimizerOnly.toFixed(2),
          r.valLoss.toFixed(4),
          r.stepsPerS.toFixed(0),
          r.mparamPerS.toFixed(1),
        ]),
      ),
  );
  console.log(`total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
