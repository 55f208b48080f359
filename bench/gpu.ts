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
import { fusedKernel } from '../optim/storage.ts';
import type { Hyper } from '../optim/define.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import type { Session } from '../runtime/session.ts';
import { createDiagnosticBackend } from '../runtime/backends/webgpu/diagnostics.ts';
import { variantRows } from './gpu-variants.ts';
import type { WebGpuOptions } from '../runtime/backends/webgpu/webgpu.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import { intakeTuning } from '../runtime/gradients.ts';
import { arithmetic, checkConfig, checkDeviceGradients, configs } from './gpu-check.ts';
import type { Shape } from './gpu-shapes.ts';
import { bytesMoved, gpt2Tensors, median, shapeOf } from './gpu-shapes.ts';

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
const envs = ['N', 'CHECK_N', 'CHECK', 'STEPS', 'HOST_STEPS', 'SHAPES', 'VARIANTS', 'CHUNKED', 'INTAKE', 'BACKEND']
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

const optimizers: [string, OptimizerDef][] = [
  ['adamw', adamw({ lr: 1e-4, weightDecay: 0.1 }) as OptimizerDef],
  ['lion', lion({ lr: 1e-4, weightDecay: 0.1 }) as OptimizerDef],
  ['sgd (momentum 0.9)', sgd({ lr: 1e-3, momentum: 0.9 }) as OptimizerDef],
];

// 1. Correctness first, on the same device.
console.log(`\n## Check: WebGPU against the JS backend, ${CHECK_N} params, 3 steps from the JS state each\n`);
let failed = 0;
for (const exact of env.CHECK === '0' ? [] : [false, true]) {
  // Both arithmetic modes must stay within the bounds; exact mode is also bit-identical.
  console.log(`\n### exact: ${exact}\n`);
  const gpu = await WebGpuBackend.create({ exact });
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
  /** step() wall ms per step, gradients from host arrays (uploaded every step). */
  hostMs: number | null;
  /** step() wall ms per step, gradients in GPUBuffers of their own (one per tensor, as a framework holds them). */
  deviceMs: number | null;
  /** step(opt.deviceGradients()) wall ms: gradients already in the arena, nothing moves. */
  arenaMs: number | null;
  /** step() of the same GPUBuffers with gradient release: one launch per tensor reading each where it is. */
  releaseMs: number | null;
  releaseMemory: number;
  /** The kernel's GPU ms (timestamps), back to back (see `kernelMs`). */
  kernelMs: number | null;
  bpp: number;
  memory: number;
}

/**
 * Wall ms per call of `f`: warm up (≥ 3 calls and ≥ 300 ms), then three rounds of `n` calls, each
 * waiting for the GPU at its end; the median round (a GC pause or a clock change moves one round).
 */
async function wall(backend: WebGpuBackend, f: () => Promise<unknown>, n = STEPS): Promise<number> {
  for (let i = 0, t0 = performance.now(); i < 3 || performance.now() - t0 < 300; i++) await f();
  await backend.finish();
  const rounds: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await f();
    await backend.finish();
    rounds.push((performance.now() - t0) / n);
  }
  return median(rounds);
}

/**
 * The kernel's GPU time at steady clocks: step() with no gradient, back to back, on a backend with
 * timestamps. Every tensor sits the step out, but it is the same program over the same groups
 * doing the same work (every value computed, the old one selected and stored).
 */
async function kernelMs(backend: WebGpuBackend, opt: Session<Hyper>): Promise<number | null> {
  if (!backend.options.timestamps) return null;
  for (let i = 0, t1 = performance.now(); i < 3 || performance.now() - t1 < 300; i++) await opt.step({});
  backend.kernelTimes.length = 0;
  for (let i = 0; i < 2 * STEPS; i++) await opt.step({});
  // A step is one launch per chunk: the median over steps of their sum.
  const per = backend.kernelTimes.length / (2 * STEPS);
  const steps = Array.from({ length: 2 * STEPS }, (_, i) =>
    backend.kernelTimes.slice(i * per, (i + 1) * per).reduce((a, b) => a + b, 0),
  );
  return median(steps);
}

/** One GPUBuffer per tensor holding its bf16 gradient: what a framework's backward pass leaves on the GPU. */
function deviceGradients(device: GPUDevice, grads: Readonly<Record<string, Uint16Array>>) {
  const out: Record<string, { buffer: GPUBuffer; dtype: 'bf16' }> = {};
  for (const [k, g] of Object.entries(grads)) {
    const bytes = Math.ceil(g.byteLength / 4) * 4;
    const buffer = device.createBuffer({ size: bytes, usage: 0x80 | 0x4 | 0x8 /* STORAGE | COPY_SRC | COPY_DST */ });
    const words = new Uint8Array(bytes);
    words.set(new Uint8Array(g.buffer, g.byteOffset, g.byteLength));
    device.queue.writeBuffer(buffer, 0, words);
    out[k] = { buffer, dtype: 'bf16' };
  }
  return out;
}

const bytesOf = (def: OptimizerDef, opt: Session<Hyper>) => {
  const { masterWeightBits, paramDtype, quantize, groupSize, scale, gradDtype } = opt.options;
  return bytesMoved(fusedKernel(def, { masterWeightBits, paramDtype, quantize, groupSize, scale, gradDtype }));
};

/** One optimizer on a fresh device: every way of stepping, timed; then the kernel alone. */
async function time(
  label: string,
  def: OptimizerDef,
  shape: Shape,
  o: WebGpuOptions = {},
  step: { clipGradNorm?: number; reductions?: boolean } = {},
): Promise<Row> {
  // A step with reductions (clipGradNorm, LAMB, LARS) cannot release gradients: no release column.
  const reduces = step.reductions === true || step.clipGradNorm !== undefined;
  const clip = step.clipGradNorm === undefined ? {} : { clipGradNorm: step.clipGradNorm };
  const plain = await WebGpuBackend.create({ ...timedWith, ...o });
  // The kernel's timestamps come from a second backend on the same device: timestamps make each
  // launch wait for its read-back, which the wall times must not.
  const timed = timestamps
    ? await WebGpuBackend.create({ ...timedWith, ...o, device: plain.device, timestamps })
    : null;
  const dg = deviceGradients(plain.device, shape.grads);
  try {
    const opt = await createOptimizer(def, shape.params, { backend: plain, ...clip });
    const hostMs = HOST_STEPS > 0 ? await wall(plain, () => opt.step(shape.grads), HOST_STEPS) : null;
    const deviceMs = await wall(plain, () => opt.step(dg));
    // The arena's own gradient regions hold the last step's gradients: stepping on them moves
    // nothing. A tensor split across chunks has no single region (then there is no such row).
    const arena = opt.chunks === 1 ? opt.deviceGradients() : null;
    const arenaMs = arena ? await wall(plain, () => opt.step(arena)) : null;
    const memory = opt.memory().bytesPerParam;
    const chunks = opt.chunks;
    await opt.dispose();
    let releaseMs: number | null = null,
      releaseMemory = NaN;
    if (!reduces) {
      const rel = await createOptimizer(def, shape.params, { backend: plain, gradientRelease: true });
      releaseMs = await wall(plain, () => rel.step(dg));
      releaseMemory = rel.memory().bytesPerParam;
      await rel.dispose();
    }
    let k: number | null = null;
    if (timed) {
      const t = await createOptimizer(def, shape.params, { backend: timed, ...clip });
      k = await kernelMs(timed, t);
      await t.dispose();
    }
    return {
      label: chunks > 1 ? `${label} (${chunks} chunks)` : label,
      shape: shape.name,
      params: shape.count,
      hostMs,
      deviceMs,
      arenaMs,
      releaseMs,
      releaseMemory,
      kernelMs: k,
      bpp: bytesOf(def, opt),
      memory,
    };
  } finally {
    for (const g of Object.values(dg)) g.buffer.destroy();
    timed?.dispose();
    plain.dispose();
  }
}

/** Three significant digits (whole numbers from 100 up); a dash where there is no figure. */
const sig = (x: number | null) => (x === null ? '—' : x >= 100 ? x.toFixed(0) : x.toPrecision(3));
const ms = (x: number | null) => (x === null ? '—' : x.toFixed(3));
const ratio = (a: number | null, b: number | null) => (a && b ? `${(a / b).toFixed(2)}×` : '—');
const header =
  '| optimizer | shape | params | step ms, host arrays | step ms, GPU buffers | step ms, in the arena | step ms, GPU buffers, gradient release | kernel ms | GPU-buffer step ÷ kernel | in-arena step ÷ kernel | release step ÷ kernel | Gparam/s (GPU-buffer step) | Gparam/s (kernel) | B/param moved | GB/s (kernel) | memory B/param (release) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|';
const line = (r: Row) => {
  const k = r.kernelMs;
  return (
    `| ${r.label} | ${r.shape} | ${r.params} | ${ms(r.hostMs)} | ${ms(r.deviceMs)} | ${ms(r.arenaMs)} | ${ms(r.releaseMs)} | ${ms(k)} | ` +
    `${ratio(r.deviceMs, k)} | ${ratio(r.arenaMs, k)} | ${ratio(r.releaseMs, k)} | ${sig(r.deviceMs && r.params / r.deviceMs / 1e6)} | ` +
    `${sig(k && r.params / k / 1e6)} | ${r.bpp.toFixed(3)} | ${sig(k && (r.params * r.bpp) / k / 1e6)} | ${r.memory.toFixed(3)} (${Number.isNaN(r.releaseMemory) ? '—' : r.releaseMemory.toFixed(3)}) |`
  );
};
// BACKEND: WebGpuOptions as JSON for every timed row (e.g. {"exact":false,"workgroupSize":64}).
const timedWith = JSON.parse(env.BACKEND ?? '{}') as WebGpuOptions;

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
  for (const [label, def] of optimizers) console.log(line(await time(label, def, shape)));
  // Bindings of 128 MiB, as Chrome grants a device that asks for nothing: the arena in chunks.
  if (env.CHUNKED)
    console.log(line(await time('adamw, 128 MiB bindings', optimizers[0]![1], shape, { maxBindingSize: 2 ** 27 })));
  // REDUCTIONS=1: steps with reductions (the pass, the device combine and the update, one submission).
  if (env.REDUCTIONS) {
    console.log(line(await time('adamw + clipGradNorm 1', optimizers[0]![1], shape, {}, { clipGradNorm: 1 })));
    console.log(line(await time('lamb', lamb({ lr: 1e-4 }) as OptimizerDef, shape, {}, { reductions: true })));
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
      console.log(`| ${label} | ${what} | ${ms(await wall(b, () => opt.step(dg)))} |`);
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
    (off, o = {}) =>
      () =>
        createDiagnosticBackend({ ...o, timestamps: stamped && timestamps }, off),
  );
  console.log(
    `\n## Where the time goes: AdamW, ${shape.name}: the in-arena step (wall) and the kernel alone (timestamps, back to back)\n\n| variant | step ms, in the arena | Gparam/s (step) | kernel ms | Gparam/s (kernel) | GB/s (kernel) |\n|---|---|---|---|---|---|`,
  );
  for (const [what, make, storage] of rows) {
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
            await opt.step(shape.grads);
            if (opt.chunks === 1) arenaMs = await wall(b, () => opt.step(opt.deviceGradients()));
          } else k = await kernelMs(b, opt);
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
