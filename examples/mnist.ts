// MNIST quality parity: the same MLP, seeds, batches and hyperparameters trained with an fp32
// optimizer and with its Flash counterpart (bf16 params + 8-bit correction = 24-bit masters,
// 8-bit states). Final test accuracy, mean ± std over seeds, per family.
//
//   npx tsx examples/mnist.ts              # 3 seeds × 6 runs, writes examples/out/mnist.*
//   npx tsx examples/mnist.ts --quick      # 1 seed, 1 epoch (a smoke run)

import * as tf from '@tensorflow/tfjs-core';
import '../tfjs/gradients.ts';
import '@tensorflow/tfjs-backend-cpu';
import { createRequire } from 'node:module';
import { FlashTfOptimizer } from '../tfjs/adapter.ts';
import { families, type Family } from './families.ts';
import { bytesChart, lineChart, markdownTable, meanStd, type Point, writeOut } from './report.ts';
import { memoryBars } from './families.ts';
import { prng } from '../props/prng.ts';

const require = createRequire(import.meta.url);

export interface Digits {
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly n: number;
}

/** Pixels per image after 2×2 mean pooling (28×28 → 14×14): 4× less CPU, same task. */
export const PIXELS = 196;

function pool(img: number[]): number[] {
  const out = new Array<number>(PIXELS);
  for (let r = 0; r < 14; r++)
    for (let c = 0; c < 14; c++)
      out[r * 14 + c] =
        (img[56 * r + 2 * c]! + img[56 * r + 2 * c + 1]! + img[56 * r + 28 + 2 * c]! + img[56 * r + 29 + 2 * c]!) / 4;
  return out;
}

/** The `mnist` package's 10,000 digits: per digit the first 80% train, the rest test (fixed). */
export function loadDigits(): { train: Digits; test: Digits } {
  const mnist = require('mnist') as { raw: number[]; length: number }[];
  const split = (take: (d: { length: number }) => [number, number]) => {
    const xs: number[][] = [],
      ys: number[] = [];
    mnist.forEach((d, label) => {
      const [a, b] = take(d);
      for (let i = a; i < b; i++) {
        xs.push(pool(d.raw.slice(i * 784, (i + 1) * 784)));
        ys.push(label);
      }
    });
    const x = new Float32Array(xs.length * PIXELS);
    xs.forEach((r, i) => x.set(r, i * PIXELS));
    return { x, y: Int32Array.from(ys), n: ys.length };
  };
  return {
    train: split((d) => [0, Math.floor(d.length * 0.8)]),
    test: split((d) => [Math.floor(d.length * 0.8), d.length]),
  };
}

/** A seeded permutation (Fisher–Yates): every optimizer sees the same batches. */
export function permutation(n: number, seed: number): Int32Array {
  const rnd = prng(seed);
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

export interface RunResult {
  readonly acc: number;
  readonly loss: number;
  readonly curve: { epoch: number; loss: number; acc: number }[];
  readonly seconds: number;
}

/** Train a 196-128-10 MLP with `opt` for `epochs`; the test set is evaluated after each epoch. */
export async function trainMlp(
  data: { train: Digits; test: Digits },
  opt: tf.Optimizer,
  o: { seed: number; epochs: number; batch: number; hidden?: number; log?: (s: string) => void },
): Promise<RunResult> {
  const H = o.hidden ?? 128;
  const t0 = performance.now();
  // Glorot-uniform weights from the seed; names are unique per run so runs never share variables.
  const tag = `mnist${o.seed}_${Math.random().toString(36).slice(2, 8)}`;
  const glorot = (r: number, c: number, s: number) =>
    tf.randomUniform([r, c], -Math.sqrt(6 / (r + c)), Math.sqrt(6 / (r + c)), 'float32', s);
  const w1 = tf.variable(glorot(PIXELS, H, o.seed * 2 + 1), true, `${tag}/w1`);
  const b1 = tf.variable(tf.zeros([H]), true, `${tag}/b1`);
  const w2 = tf.variable(glorot(H, 10, o.seed * 2 + 2), true, `${tag}/w2`);
  const b2 = tf.variable(tf.zeros([10]), true, `${tag}/b2`);
  const logits = (x: tf.Tensor2D) => tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, w1), b1)), w2), b2) as tf.Tensor2D;
  const xTest = tf.tensor2d(data.test.x, [data.test.n, PIXELS]);
  const yTest = tf.oneHot(tf.tensor1d(data.test.y, 'int32'), 10);
  const evaluate = () =>
    tf.tidy(() => {
      const z = logits(xTest);
      const loss = tf.losses.softmaxCrossEntropy(yTest, z).dataSync()[0]!;
      const acc = tf.mean(tf.cast(tf.equal(tf.argMax(z, 1), tf.argMax(yTest, 1)), 'float32')).dataSync()[0]!;
      return { loss, acc };
    });
  const curve: RunResult['curve'] = [];
  const xb = new Float32Array(o.batch * PIXELS),
    yb = new Int32Array(o.batch);
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    const order = permutation(data.train.n, o.seed * 1000 + epoch);
    for (let s = 0; s + o.batch <= data.train.n; s += o.batch) {
      for (let j = 0; j < o.batch; j++) {
        const k = order[s + j]!;
        xb.set(data.train.x.subarray(k * PIXELS, (k + 1) * PIXELS), j * PIXELS);
        yb[j] = data.train.y[k]!;
      }
      tf.tidy(() => {
        const x = tf.tensor2d(xb, [o.batch, PIXELS]),
          y = tf.oneHot(tf.tensor1d(yb, 'int32'), 10);
        opt.minimize(() => tf.losses.softmaxCrossEntropy(y, logits(x)) as tf.Scalar, false, [w1, b1, w2, b2]);
      });
      if (opt instanceof FlashTfOptimizer) await opt.settled();
    }
    const e = evaluate();
    curve.push({ epoch, ...e });
    o.log?.(`epoch ${epoch}/${o.epochs}  test loss ${e.loss.toFixed(4)}  acc ${(100 * e.acc).toFixed(2)}%`);
  }
  const last = curve[curve.length - 1]!;
  tf.dispose([w1, b1, w2, b2, xTest, yTest]);
  return { acc: last.acc, loss: last.loss, curve, seconds: (performance.now() - t0) / 1000 };
}

export async function main(o: {
  seeds: number;
  epochs: number;
  batch: number;
  families?: readonly Family[];
  write: boolean;
}): Promise<Record<string, RunResult[]>> {
  await tf.setBackend('cpu');
  const data = loadDigits();
  const fams = o.families ?? families('mnist');
  const runs: Record<string, RunResult[]> = {};
  for (const fam of fams)
    for (const side of [fam.reference, fam.flash]) {
      runs[side.name] = [];
      for (let seed = 1; seed <= o.seeds; seed++) {
        const opt = side.make();
        const r = await trainMlp(data, opt, {
          seed,
          epochs: o.epochs,
          batch: o.batch,
          log: (s) => console.log(`${side.name.padEnd(26)} seed ${seed}  ${s}`),
        });
        opt.dispose();
        runs[side.name]!.push(r);
      }
    }
  if (o.write) await write(fams, runs, o);
  return runs;
}

async function write(
  fams: readonly Family[],
  runs: Record<string, RunResult[]>,
  o: { seeds: number; epochs: number; batch: number },
): Promise<void> {
  const pct = (xs: number[]) => {
    const { mean, std } = meanStd(xs.map((x) => 100 * x));
    return `${mean.toFixed(2)} ± ${std.toFixed(2)}`;
  };
  const rows = fams.map((f) => {
    const ref = runs[f.reference.name]!,
      fl = runs[f.flash.name]!;
    const gap = meanStd(fl.map((r) => 100 * r.acc)).mean - meanStd(ref.map((r) => 100 * r.acc)).mean;
    return [
      f.label,
      f.reference.name,
      pct(ref.map((r) => r.acc)),
      f.flash.name,
      pct(fl.map((r) => r.acc)),
      `${gap >= 0 ? '+' : ''}${gap.toFixed(2)}`,
      Math.abs(gap) <= 0.5 ? 'yes' : 'NO',
    ];
  });
  const table = markdownTable(
    [
      'family',
      'fp32 reference',
      'test acc % (mean ± std)',
      'Flash',
      'test acc % (mean ± std)',
      'Δ pp',
      'within 0.5 pp',
    ],
    rows,
  );
  const head = `MNIST (mnist package: 7,996 train / 2,004 test, per digit the first 80% train), MLP 196-128-10 on 14×14 (2×2 mean-pooled) digits, batch ${o.batch}, ${o.epochs} epochs, seeds 1..${o.seeds}.\n\n`;
  writeOut('mnist.md', head + table);
  console.log('\n' + head + table);
  const points: Point[] = [];
  for (const [name, rs] of Object.entries(runs))
    for (let e = 0; e < rs[0]!.curve.length; e++)
      points.push({ series: name, x: e + 1, y: meanStd(rs.map((r) => r.curve[e]!.loss)).mean });
  writeOut('mnist-curves.json', JSON.stringify(points));
  writeOut(
    'mnist-loss.svg',
    await lineChart(points, {
      title: `MNIST test loss (mean of ${o.seeds} seeds)`,
      x: 'epoch',
      y: 'test cross-entropy',
    }),
  );
  writeOut('memory.svg', await bytesChart(await memoryBars(), 'Optimizer memory per parameter (AdamW)'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  await main({ seeds: quick ? 1 : 3, epochs: quick ? 1 : 5, batch: 64, write: !quick });
}
