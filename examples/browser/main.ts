// The page: trains the names model (model.ts) with FlashAdamW in the browser, on WebGPU when
// navigator.gpu answers, else on the JS backend (WebAssembly SIMD kernels), and shows the loss
// curve live, bytes per parameter end to end, steps per second and the kernel it runs.
// Query: ?backend=auto|webgpu|wasm (default auto), ?steps=N (default 3000), ?seed=N (default 1),
// ?device=default: WebGPU on a device asked for no limits (8 storage buffers, 128 MiB a binding: what
// a library that makes its own device gets); by default WebGpuBackend.create() asks for the largest.
// What it shows is also in window.flashoptimDemo, which examples/browser/page.test.ts reads.

import type { Backend } from '../../index.ts';
import { JsBackend, WebGpuBackend, adamw, createOptimizer } from '../../index.ts';
import { prng } from '../../props/prng.ts';
import { drawCurves } from './chart.ts';
import { namesDataset } from './dataset.ts';
import type { Tensor, Weights } from './model.ts';
import { CONTEXT, initialWeights, loss, lossAndGradients, sample, shapes } from './model.ts';
import type { Report } from './view.ts';
import { showReport } from './view.ts';

/** The names serve.ts embeds at build time (esbuild `define`). */
declare const NAMES: readonly string[];

const EMBED = 10,
  HIDDEN = 128,
  BATCH = 32,
  LR = 5e-3,
  EVERY = 10;

interface Query {
  readonly backend: 'auto' | 'webgpu' | 'wasm';
  readonly device: 'largest' | 'default';
  readonly steps: number;
  readonly seed: number;
}

function query(): Query {
  const q = new URLSearchParams(location.search);
  const oneOf = <T extends string>(k: string, allowed: readonly T[]): T => {
    const v = q.get(k) ?? allowed[0]!;
    if (!(allowed as readonly string[]).includes(v))
      throw new Error(`?${k} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
    return v as T;
  };
  const int = (k: string, d: number, max: number) => {
    const v = Number(q.get(k) ?? d);
    if (!Number.isInteger(v) || v < 1 || v > max)
      throw new Error(`?${k} must be an integer in [1, ${max}], got ${JSON.stringify(q.get(k))}`);
    return v;
  };
  return {
    backend: oneOf('backend', ['auto', 'webgpu', 'wasm'] as const),
    device: oneOf('device', ['largest', 'default'] as const),
    steps: int('steps', 3000, 1e6),
    seed: int('seed', 1, 2 ** 31),
  };
}

/** WebGPU when asked for or when navigator.gpu answers; else the JS backend, saying why. */
async function pickBackend(q: Query): Promise<{ backend: Backend; r: Partial<Report> }> {
  let why = '?backend=wasm';
  if (q.backend !== 'wasm') {
    try {
      const gpu = navigator.gpu;
      if (!gpu) throw new Error('navigator.gpu is absent (no WebGPU in this browser, or not a secure context)');
      const device = q.device === 'default' ? await (await gpu.requestAdapter())?.requestDevice() : undefined;
      if (q.device === 'default' && !device) throw new Error('navigator.gpu offers no adapter');
      const b = await WebGpuBackend.create(device ? { device } : {});
      const L = b.device.limits;
      return {
        backend: b,
        r: {
          backend: 'webgpu',
          device: `${b.adapter}; ${L.maxStorageBuffersPerShaderStage} storage buffers a stage, ${L.maxStorageBufferBindingSize / 2 ** 20} MiB a binding, subgroups ${b.subgroupMinSize ? `≥ ${b.subgroupMinSize}` : 'off'}, fma ${b.fusedFma ? 'fused' : 'unfused'}`,
          why: `navigator.gpu answered${device ? '; a device asked for no limits (?device=default)' : ''}`,
        },
      };
    } catch (e) {
      if (q.backend === 'webgpu') throw e;
      why = `WebGPU unavailable: ${(e as Error).message}`;
    }
  }
  const b = new JsBackend({ engine: 'auto' });
  const device = b.engine === 'wasm' ? 'WebAssembly SIMD kernels' : 'generated JavaScript (no WebAssembly SIMD here)';
  return { backend: b, r: { backend: b.engine, device, why } };
}

const pause = () => new Promise((done) => setTimeout(done, 0));

async function train(report: Report, show: () => void): Promise<void> {
  const q = query();
  report.steps = q.steps;
  const { backend, r } = await pickBackend(q);
  Object.assign(report, r);
  const data = namesDataset(NAMES);
  const s = { vocab: data.vocab.length, embed: EMBED, hidden: HIDDEN };
  const init = initialWeights(s, q.seed);
  const params = Object.fromEntries(
    Object.entries(shapes(s)).map(([k, shape]) => [k, { data: init[k as Tensor], shape }]),
  );
  const opt = await createOptimizer(adamw({ lr: LR, weightDecay: 0 }), params, { backend });
  const grads = Object.fromEntries(Object.entries(init).map(([k, v]) => [k, new Uint16Array(v.length)])) as Weights;
  report.params = opt.layout.params;
  report.source = opt.source;
  report.memory = opt.memory();
  report.state = 'training';
  show();
  const pick = prng(q.seed * 7919 + 1);
  const x = new Int32Array(BATCH * CONTEXT),
    y = new Int32Array(BATCH);
  let sum = 0,
    inOpt = 0,
    inSteps = 0, // the steps alone: validation and painting are not part of training speed
    pageBytes = 0;
  const valEvery = Math.max(1, Math.round(q.steps / EVERY / 15)) * EVERY; // about 15 points
  const valLoss = async () =>
    loss(s, (await opt.readParams()) as unknown as Weights, data.val.x, data.val.y, data.val.n);
  report.val.push({ step: 0, loss: await valLoss() });
  for (let step = 1; step <= q.steps; step++) {
    const t0 = performance.now();
    for (let j = 0; j < BATCH; j++) {
      const k = Math.floor(pick() * data.train.n);
      x.set(data.train.x.subarray(k * CONTEXT, (k + 1) * CONTEXT), j * CONTEXT);
      y[j] = data.train.y[k]!;
    }
    const w = (await opt.readParams()) as unknown as Weights; // bf16 bits: paramDtype is bf16
    sum += lossAndGradients(s, w, x, y, BATCH, grads);
    const t1 = performance.now();
    await opt.step(grads);
    const t2 = performance.now();
    inOpt += t2 - t1;
    inSteps += t2 - t0;
    pageBytes = [...Object.values(w), ...Object.values(grads)].reduce((a, t) => a + t.byteLength, 0);
    if (step % EVERY === 0 || step === q.steps) {
      report.step = step;
      report.train.push({ step, loss: sum / (step % EVERY || EVERY) });
      sum = 0;
      report.stepsPerSecond = (step * 1000) / inSteps;
      report.optimizerShare = inOpt / inSteps;
      report.pageBytesPerParam = pageBytes / report.params;
      if (step % valEvery === 0 || step === q.steps) report.val.push({ step, loss: await valLoss() });
      show();
      await pause(); // let the page paint
    }
  }
  report.memory = opt.memory();
  report.samples = sample(s, (await opt.readParams()) as unknown as Weights, data.vocab, q.seed, 10);
  report.state = 'done';
}

const report: Report = {
  state: 'starting',
  backend: '',
  device: '',
  why: '',
  steps: 0,
  step: 0,
  params: 0,
  train: [],
  val: [],
  stepsPerSecond: 0,
  optimizerShare: 0,
  memory: null,
  pageBytesPerParam: 0,
  samples: [],
  source: '',
  error: '',
};
(window as unknown as { flashoptimDemo: Report }).flashoptimDemo = report;
const show = () => {
  showReport(report);
  drawCurves(
    document.querySelector<HTMLCanvasElement>('#chart')!,
    [
      { label: `training loss (mean of ${EVERY} steps)`, color: '#1f6feb', points: report.train },
      { label: 'validation loss', color: '#d9480f', points: report.val },
    ],
    report.steps,
  );
};
train(report, show)
  .catch((e: unknown) => {
    report.state = 'error';
    report.error = e instanceof Error ? e.message : String(e);
  })
  .finally(show);
