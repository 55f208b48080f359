/// <reference types="@webgpu/types" />
// WebGPU step throughput through the public API: createOptimizer on a WebGpuBackend, bf16 params
// and gradients. First checks every built-in × scale × master bits against the JS backend
// (bench/gpu-check.ts: exit code 1 when any exceeds codes ±1 or params 2·S/Q) and the device
// gradient paths against host gradients on the GPU itself (bit for bit), then times AdamW, Lion
// and SGD (momentum 0.9) on GPT-2 small's 148 tensors and on one tensor of N. Per row, step() wall
// ms three ways: gradients from host arrays (uploaded each step), from GPUBuffers of their own
// (one per tensor, as a framework's backward pass leaves them: copied into the arena inside the
// step's submission), and already in the arena (opt.deviceGradients(): nothing moves); the
// kernel's GPU ms (timestamps, back to back); the GPU-buffer step over the kernel; Gparam/s; bytes
// the kernel moves per param; effective GB/s; and opt.memory().bytesPerParam.
//   CHECK_N=4096 N=65536 STEPS=3 SHAPES=tensor npx tsx bench/gpu.ts     (lavapipe: small sizes)
//   bash ../shared/gpu/stage.sh bench/gpu.ts; N=268435456 bash .device/device-run.sh node gpu.mjs
// Environment: N (one tensor's params, default 2^24), CHECK_N (default 100000), STEPS (timed
// steps per round, three rounds, default 50), HOST_STEPS (timed host-array steps, default 5; 0 skips them), SHAPES
// (gpt2,tensor; default both), VARIANTS=1 (the where-the-time-goes kernel rows for AdamW at N:
// runtime/backends/webgpu/diagnostics.ts, exact: false, 4 and 16 elements/thread; VARIANTS=fast and
// VARIANTS=path pick other rows: the driver arithmetic's costs, the fast path against one body).

import { cpus, totalmem } from 'node:os';
import { basename, relative } from 'node:path';
import type { OptimizerDef } from '../optim/define.ts';
import { adamw, lamb, lion, sgd } from '../optim/index.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import { createDiagnosticBackend } from '../runtime/backends/webgpu/diagnostics.ts';
import { variantRows } from './gpu-variants.ts';
import type { WebGpuOptions } from '../runtime/backends/webgpu/webgpu.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import { intakeTuning } from '../runtime/gradients.ts';
import { arithmetic, checkConfig, checkDeviceGradients, configs } from './gpu-check.ts';
import { checkReductions } from './gpu-reductions-check.ts';
import type { Shape } from './gpu-shapes.ts';
import { gpt2Tensors, shapeOf } from './gpu-shapes.ts';
import { header, line, ms, sig } from './gpu-table.ts';
import type { Timing } from './gpu-timing.ts';
import { bytesOf, deviceGradients, kernelMs, time, wall } from './gpu-timing.ts';

const env = process.env;
const N = Number(env.N ?? 2 ** 24),
  CHECK_N = Number(env.CHECK_N ?? 100000),
  STEPS = Number(env.STEPS ?? 50),
  HOST_STEPS = Number(env.HOST_STEPS ?? 5);
const SHAPES = (env.SHAPES ?? 'gpt2,tensor').split(',');

// Timestamps are exact to the nanosecond: runtime/backends/dawn.ts turns Dawn's quantization off in Node.

const probe = await WebGpuBackend.create();
const timestamps = probe.device.features.has('timestamp-query');
console.log(`# bench/gpu.ts, ${new Date().toISOString()}`);
const envs = [
  'N',
  'CHECK_N',
  'CHECK',
  'STEPS',
  'HOST_STEPS',
  'SHAPES',
  'VARIANTS',
  'CHUNKED',
  'INTAKE',
  'BACKEND',
  'REDUCTIONS',
  'BLOCKS',
  'OPTIMIZERS',
  'QUICK',
]
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

// OPTIMIZERS=adamw,lion: the timed rows of those only (A/B runs of one kernel on the device).
const optimizers: [string, OptimizerDef][] = (
  [
    ['adamw', adamw({ lr: 1e-4, weightDecay: 0.1 }) as OptimizerDef],
    ['lion', lion({ lr: 1e-4, weightDecay: 0.1 }) as OptimizerDef],
    ['sgd (momentum 0.9)', sgd({ lr: 1e-3, momentum: 0.9 }) as OptimizerDef],
  ] as [string, OptimizerDef][]
).filter(([l]) => env.OPTIMIZERS === undefined || env.OPTIMIZERS.split(',').includes(l.split(' ')[0]!));

// 1. Correctness first, on the same device.
console.log(`\n## Check: WebGPU against the JS backend, ${CHECK_N} params, 3 steps from the JS state each\n`);
let failed = 0;
// BACKEND: WebGpuOptions as JSON for every checked and timed row (e.g. {"splitKernels":true}).
const timedWith = JSON.parse(env.BACKEND ?? '{}') as WebGpuOptions;
for (const exact of env.CHECK === '0' ? [] : [false, true]) {
  // Both arithmetic modes must stay within the bounds; exact mode is also bit-identical.
  console.log(`\n### exact: ${exact}${env.BACKEND ? `, ${env.BACKEND}` : ''}\n`);
  const gpu = await WebGpuBackend.create({ ...timedWith, exact });
  let over = 0,
    identical = 0;
  for (const c of configs) {
    const r = await checkConfig(gpu, c, CHECK_N);
    if (!r.ok) over++;
    if (r.identical === 1) identical++;
    console.log(
      `${r.key.padEnd(17)} ${r.identical.toFixed(6)} bit-identical, codes worst ±${r.codes}, params worst ${r.params.toFixed(3)} × 2·S/Q${r.nonFiniteAgree ? '' : ', non-finite counts DIFFER'}${r.ok ? '' : '  FAIL'}`,
    );
  }
  failed += over;
  console.log(
    `exact: ${exact}: ${configs.length - over} of ${configs.length} within bounds, ${identical} bit-identical`,
  );
  if (!exact) {
    gpu.dispose();
    continue;
  }
  for (const [label, def] of optimizers) {
    const r = await checkDeviceGradients(gpu, def, CHECK_N);
    if (!r.ok) failed++;
    console.log(`${label}: device gradients (f32 converted, bf16 copied, in the arena) ${r.summary}`);
  }
  console.log(`arithmetic, exact: true: ${await arithmetic(gpu)}`);
  // Steps with reductions: bit for bit the device-order oracle's (bench/gpu-reductions-check.ts).
  for (const r of await checkReductions(gpu, Math.max(CHECK_N, 1 << 18))) {
    if (r.differ > 0) failed++;
    console.log(
      `${r.label}: ${r.values - r.differ} of ${r.values} stored values the device-order oracle's${r.differ ? ` (differ: ${r.fields})  FAIL` : ''}; ${r.dispatches} dispatches a step; gradNorm ${r.gradNorm}`,
    );
  }
  gpu.dispose();
  const driver = await WebGpuBackend.create({ exact: false });
  console.log(`arithmetic, exact: false: ${await arithmetic(driver)}`);
  driver.dispose();
}

// 2. Timing (bench/gpu-timing.ts): one row of the steps table (bench/gpu-table.ts) per optimizer and shape.
// QUICK=1: the GPU-buffer and in-arena steps only (no gradient-release or kernel-time column).
const timing: Timing = { steps: STEPS, hostSteps: HOST_STEPS, timestamps, timedWith, quick: env.QUICK === '1' };

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
  for (const [label, def] of optimizers) console.log(line(await time(timing, label, def, shape)));
  // Bindings of 128 MiB, as Chrome grants a device that asks for nothing: the arena in chunks.
  if (env.CHUNKED)
    console.log(
      line(await time(timing, 'adamw, 128 MiB bindings', optimizers[0]![1], shape, { maxBindingSize: 2 ** 27 })),
    );
  // REDUCTIONS=1: steps with reductions (a blocked pass per level and the update, one submission).
  // BLOCKS=1024,4096: those rows once per reductionBlockGroups (default: the backend's default).
  if (env.REDUCTIONS)
    for (const b of (env.BLOCKS ?? '0').split(',').map(Number)) {
      const o: WebGpuOptions = b ? { reductionBlockGroups: b } : {},
        at = b ? `, blocks of ${b}` : '';
      const lambDef = lamb({ lr: 1e-4 }) as OptimizerDef;
      console.log(
        line(await time(timing, `adamw + clipGradNorm 1${at}`, optimizers[0]![1], shape, o, { clipGradNorm: 1 })),
      );
      console.log(line(await time(timing, `lamb${at}`, lambDef, shape, o, { reductions: true })));
      console.log(line(await time(timing, `lamb + clipGradNorm 1${at}`, lambDef, shape, o, { clipGradNorm: 1 })));
    }
  if (s === 'tensor') tensor = shape;
}

// Intake: INTAKE=gather,0,65536: the default (copies gathered into a few dispatches), then without
// gathers, device gradients at least that long moved by a kernel and shorter ones by copyBufferToBuffer.
if (env.INTAKE) {
  const shape = shapeOf('GPT-2 small (148 tensors)', gpt2Tensors());
  console.log(
    `\n## Intake: GPT-2 small, step() with one GPUBuffer per tensor (bf16)\n\n| optimizer | intake | step ms |\n|---|---|---|`,
  );
  const before = { ...intakeTuning };
  for (const [label, def] of optimizers)
    for (const x of env.INTAKE.split(',')) {
      intakeTuning.gather = x === 'gather';
      if (x !== 'gather') intakeTuning.kernelFrom = Number(x);
      const b = await WebGpuBackend.create(timedWith); // no timestamps: they make each step wait
      const dg = deviceGradients(b.device, shape.grads);
      const opt = await createOptimizer(def, shape.params, { backend: b });
      const what = x === 'gather' ? 'gathered copies' : `no gathers, kernel from ${x}`;
      console.log(`| ${label} | ${what} | ${ms(await wall(b, () => opt.step(dg), STEPS))} |`);
      await opt.dispose();
      for (const g of Object.values(dg)) g.buffer.destroy();
      b.dispose();
    }
  Object.assign(intakeTuning, before);
}

// 3. Where the time goes: AdamW at N with one thing changed (rows marked [not exact] store other values).
if (env.VARIANTS) {
  const shape = tensor ?? oneTensor();
  const def = optimizers[0]![1];
  // Each row is built twice: without timestamps for the in-arena step's wall time (timestamps
  // make each launch wait for its read-back, and the idle GPU then drops its clocks: kernel
  // times up to 2.9× the wall time of a whole step were seen on the H200), then with them.
  let stamped = false;
  const rows = variantRows(
    env.VARIANTS,
    (o = {}) => WebGpuBackend.create({ ...timedWith, ...o, timestamps: stamped && timestamps }),
    // A diagnostic build leaves its parts out of one kernel (the general body), as the tables of
    // docs/bench-gpu.md §3–§8 measured them: splitKernels off unless the row asks for it.
    (off, o = {}) =>
      () =>
        createDiagnosticBackend({ splitKernels: false, ...o, timestamps: stamped && timestamps }, off),
  );
  console.log(
    `\n## Where the time goes: AdamW, ${shape.name}: the in-arena step (wall) and the kernel alone (timestamps, back to back)\n\n| variant | step ms, in the arena | Gparam/s (step) | kernel ms | Gparam/s (kernel) | GB/s (kernel) |\n|---|---|---|---|---|---|`,
  );
  for (const [what, make, storage, zeros] of rows) {
    const first = zeros
      ? Object.fromEntries(
          Object.entries(shape.grads).map(([t, g]) => [t, new (g.constructor as Float32ArrayConstructor)(g.length)]),
        )
      : shape.grads;
    let arenaMs: number | null = null;
    let k: number | null = null;
    let bytes = 0;
    try {
      for (stamped of [false, true]) {
        const b = await make();
        try {
          const opt = await createOptimizer(def, shape.params, { ...storage, backend: b });
          bytes = bytesOf(def, opt);
          if (!stamped) {
            // Real gradients first: zeros would send every exact ÷ down its fallback branch.
            await opt.step(first);
            if (opt.chunks === 1) arenaMs = await wall(b, () => opt.step(opt.deviceGradients()), STEPS);
          } else {
            // The same gradients stay in the arena for the timed steps (step({})).
            await opt.step(first);
            k = await kernelMs(b, opt, STEPS);
          }
          await opt.dispose();
        } finally {
          b.dispose();
        }
      }
      console.log(
        `| adamw, ${what} | ${ms(arenaMs)} | ${sig(arenaMs && shape.count / arenaMs / 1e6)} | ${ms(k)} | ${sig(k && shape.count / k / 1e6)} | ${sig(k && (shape.count * bytes) / k / 1e6)} |`,
      );
    } catch (e) {
      console.log(`| adamw, ${what} | (cannot run here: ${(e as Error).message}) | | | | |`);
    }
  }
}
if (failed) {
  console.log(`\n${failed} configuration(s) exceeded the bounds: see the check above.`);
  process.exitCode = 1;
}
