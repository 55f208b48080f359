// WebGPU step throughput through the public API: createOptimizer on a WebGpuBackend, bf16 params
// and gradients, one step() at a time. First checks every built-in × scale × master bits against
// the JS backend (bench/gpu-check.ts: exit code 1 when any exceeds codes ±1 or params 2·S/Q), then
// times AdamW, Lion and SGD (momentum 0.9) on GPT-2 small's 148 tensors and on one tensor of N.
// Per row: step() wall ms (gradient upload included), the kernel's GPU ms (timestamps: true,
// median over the timed steps), Gparam/s of both, bytes the kernel moves per param, effective
// GB/s, and opt.memory().bytesPerParam.
//   CHECK_N=4096 N=65536 STEPS=3 SHAPES=tensor npx tsx bench/gpu.ts     (lavapipe: small sizes)
//   bash ../shared/gpu/stage.sh bench/gpu.ts; N=268435456 bash .device/device-run.sh node gpu.mjs
// Environment: N (one tensor's params, default 2^24), CHECK_N (default 100000), STEPS (timed
// steps, default 20), SHAPES (gpt2,tensor; default both), VARIANTS=1 (the where-the-time-goes rows
// for AdamW at N: runtime/backends/webgpu/diagnostics.ts, exact: false, 4 and 16 elements/thread).

import { cpus, totalmem } from 'node:os';
import { basename, relative } from 'node:path';
import type { OptimizerDef } from '../optim/define.ts';
import { adamw, lion, sgd } from '../optim/index.ts';
import { fusedKernel } from '../optim/storage.ts';
import type { StorageOptions } from '../optim/storage.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import type { Diagnostic } from '../runtime/backends/webgpu/diagnostics.ts';
import { createDiagnosticBackend } from '../runtime/backends/webgpu/diagnostics.ts';
import type { WebGpuOptions } from '../runtime/backends/webgpu/webgpu.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import { arithmetic, checkConfig, configs } from './gpu-check.ts';
import type { Shape } from './gpu-shapes.ts';
import { bytesMoved, gpt2Tensors, median, shapeOf } from './gpu-shapes.ts';

const env = process.env;
const N = Number(env.N ?? 2 ** 24),
  CHECK_N = Number(env.CHECK_N ?? 100000),
  STEPS = Number(env.STEPS ?? 20);
const SHAPES = (env.SHAPES ?? 'gpt2,tensor').split(',');

// Timestamps are exact to the nanosecond: runtime/backends/dawn.ts turns Dawn's quantization off in Node.

const probe = await WebGpuBackend.create();
const timestamps = probe.device.features.has('timestamp-query');
console.log(`# bench/gpu.ts, ${new Date().toISOString()}`);
const envs = ['N', 'CHECK_N', 'STEPS', 'SHAPES', 'VARIANTS']
  .filter((k) => env[k] !== undefined)
  .map((k) => `${k}=${env[k]} `)
  .join('');
console.log(
  `command: ${envs}${basename(process.argv[0]!)} ${process.argv
    .slice(1)
    .map((a) => relative(process.cwd(), a))
    .join(' ')}`,
);
console.log(
  `device: ${probe.adapter}; subgroups ≥ ${probe.subgroupMinSize}; fma fused: ${probe.fusedFma}; timestamp-query: ${timestamps}; maxBufferSize ${probe.device.limits.maxBufferSize}, maxStorageBufferBindingSize ${probe.device.limits.maxStorageBufferBindingSize}`,
);
console.log(
  `host: ${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version}`,
);
probe.dispose();

// 1. Correctness first, on the same device.
console.log(`\n## Check: WebGPU against the JS backend, ${CHECK_N} params, 3 steps from the JS state each\n`);
let failed = 0;
{
  const gpu = await WebGpuBackend.create();
  for (const c of configs) {
    const r = await checkConfig(gpu, c, CHECK_N);
    if (!r.ok) failed++;
    console.log(
      `${r.key.padEnd(17)} ${r.identical.toFixed(6)} bit-identical, codes worst ±${r.codes}, params worst ${r.params.toFixed(3)} × 2·S/Q${r.nonFiniteAgree ? '' : ', non-finite counts DIFFER'}${r.ok ? '' : '  FAIL'}`,
    );
  }
  console.log(`${configs.length - failed} of ${configs.length} within bounds`);
  console.log(`arithmetic, exact: true: ${await arithmetic(gpu)}`);
  gpu.dispose();
  const driver = await WebGpuBackend.create({ exact: false });
  console.log(`arithmetic, exact: false: ${await arithmetic(driver)}`);
  driver.dispose();
}

// 2. Timing.
interface Row {
  label: string;
  shape: string;
  params: number;
  wallMs: number;
  /** Median GPU time of the kernel inside those steps (the GPU idles while each step uploads). */
  stepKernelMs: number | null;
  /** The same kernel back to back, at steady clocks (see `time`). */
  kernelMs: number | null;
  bpp: number;
  memory: number;
}

/** One optimizer on a fresh backend: create, warm up (≥ 3 steps and ≥ 300 ms), time STEPS steps, dispose. */
async function time(
  label: string,
  def: OptimizerDef,
  shape: Shape,
  backend: WebGpuBackend,
  storage: StorageOptions = {},
): Promise<Row> {
  try {
    const opt = await createOptimizer(def, shape.params, { ...storage, backend });
    const { masterWeightBits, paramDtype, quantize, groupSize, scale, gradDtype } = opt.options;
    const bpp = bytesMoved(fusedKernel(def, { masterWeightBits, paramDtype, quantize, groupSize, scale, gradDtype }));
    for (let i = 0, t0 = performance.now(); i < 3 || performance.now() - t0 < 300; i++) await opt.step(shape.grads);
    backend.kernelTimes.length = 0;
    const t0 = performance.now();
    for (let i = 0; i < STEPS; i++) await opt.step(shape.grads);
    await backend.finish();
    const wallMs = (performance.now() - t0) / STEPS;
    const stepKernelMs = backend.kernelTimes.length ? median(backend.kernelTimes) : null;
    // The kernel at steady clocks: step() with no gradient, back to back. Every tensor sits the
    // step out, but it is the same program over the same groups doing the same work (every value
    // computed, the old one selected and stored), with no upload leaving the GPU idle between
    // launches: an idle GPU lowers its clocks within milliseconds and needs ~300 ms to raise them.
    for (let i = 0, t1 = performance.now(); i < 3 || performance.now() - t1 < 300; i++) await opt.step({});
    backend.kernelTimes.length = 0;
    for (let i = 0; i < 2 * STEPS; i++) await opt.step({});
    const kernelMs = backend.kernelTimes.length ? median(backend.kernelTimes) : null;
    return {
      label,
      shape: shape.name,
      params: shape.count,
      wallMs,
      stepKernelMs,
      kernelMs,
      bpp,
      memory: opt.memory().bytesPerParam,
    };
  } finally {
    backend.dispose();
  }
}

/** Three significant digits (whole numbers from 100 up); a dash where there is no kernel time. */
const sig = (x: number | null) => (x === null ? '—' : x >= 100 ? x.toFixed(0) : x.toPrecision(3));
const header =
  '| optimizer | shape | params | step ms | its kernel ms | kernel ms, back to back | Gparam/s (step) | Gparam/s (kernel) | B/param moved | GB/s (kernel) | memory B/param |\n|---|---|---|---|---|---|---|---|---|---|---|';
const line = (r: Row) => {
  const k = r.kernelMs;
  return (
    `| ${r.label} | ${r.shape} | ${r.params} | ${r.wallMs.toFixed(3)} | ${r.stepKernelMs === null ? '—' : r.stepKernelMs.toFixed(3)} | ${k === null ? '—' : k.toFixed(3)} | ${sig(r.params / r.wallMs / 1e6)} | ` +
    `${sig(k && r.params / k / 1e6)} | ${r.bpp.toFixed(3)} | ${sig(k && (r.params * r.bpp) / k / 1e6)} | ${r.memory.toFixed(3)} |`
  );
};
const backend = (o: WebGpuOptions = {}) => WebGpuBackend.create({ ...o, timestamps });

const optimizers: [string, OptimizerDef][] = [
  ['adamw', adamw({ lr: 1e-4, weightDecay: 0.1 }) as OptimizerDef],
  ['lion', lion({ lr: 1e-4, weightDecay: 0.1 }) as OptimizerDef],
  ['sgd (momentum 0.9)', sgd({ lr: 1e-3, momentum: 0.9 }) as OptimizerDef],
];
console.log(
  `\n## Steps: bf16 params + 24-bit masters, 8-bit states, bf16 gradients; ${STEPS} timed steps${timestamps ? '' : ' (no timestamp-query: no kernel times)'}\n`,
);
console.log(header);
const oneTensor = () =>
  shapeOf(`one tensor of ${Number.isInteger(Math.log2(N)) ? `2^${Math.log2(N)}` : N}`, [['w', N]]);
let tensor: Shape | null = null;
for (const s of SHAPES) {
  if (s !== 'gpt2' && s !== 'tensor') throw new RangeError(`SHAPES: ${s} is not gpt2 or tensor`);
  const shape = s === 'gpt2' ? shapeOf('GPT-2 small (148 tensors)', gpt2Tensors()) : oneTensor();
  for (const [label, def] of optimizers) console.log(line(await time(label, def, shape, await backend())));
  if (s === 'tensor') tensor = shape;
}

// 3. Where the time goes: AdamW at N with one thing changed (rows marked [not exact] store other values).
if (env.VARIANTS) {
  const shape = tensor ?? oneTensor();
  const def = optimizers[0]![1];
  const diag =
    (off: Diagnostic[], o: WebGpuOptions = {}) =>
    () =>
      createDiagnosticBackend({ ...o, timestamps }, off);
  const variants: [string, () => Promise<WebGpuBackend>, StorageOptions?][] = [
    ['default', () => backend()],
    ['exact: false (driver ÷, √, contraction) [not exact]', () => backend({ exact: false })],
    ['elementsPerThread 4', () => backend({ elementsPerThread: 4 })],
    ['elementsPerThread 16', () => backend({ elementsPerThread: 16 })],
    ['loads and stores only [not a step]', diag(['arithmetic'])],
    ['driver ÷ in exact mode [not exact]', diag(['exactDiv'])],
    ['driver √ in exact mode [not exact]', diag(['exactSqrt'])],
    ['exact ÷ √ without fallback branches [not exact at range ends]', diag(['fallbackBranches'])],
    ['no contraction guards [not exact]', diag(['contractionGuards'])],
    ['no NaN guards [not IEEE-safe]', diag(['nanGuards'])],
    ['exact: false, no NaN guards [not safe]', diag(['nanGuards'], { exact: false })],
    ['no range analysis (every NaN guard kept)', diag(['rangeAnalysis'])],
    ['no tables (8-bit decodes computed)', diag(['tables'])],
    ['bf16 params, no correction (masterWeightBits null)', () => backend(), { masterWeightBits: null }],
    ['f32 group scales', () => backend(), { scale: 'f32' }],
  ];
  console.log(`\n## Where the time goes: AdamW, ${shape.name}\n\n${header}`);
  for (const [what, make, storage] of variants)
    console.log(line(await time(`adamw, ${what}`, def, shape, await make(), storage)));
}
if (failed) {
  console.log(`\n${failed} configuration(s) exceeded the bounds: see the check above.`);
  process.exitCode = 1;
}
