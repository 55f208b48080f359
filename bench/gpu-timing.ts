/// <reference types="@webgpu/types" />
// How bench/gpu.ts times a step: wall ms per step() (median of three rounds, each ending with the
// GPU idle), the kernel's GPU ms from timestamps, and `time`, which measures one row of the steps
// table every way of stepping on a fresh device.

import type { Hyper, OptimizerDef } from '../optim/define.ts';
import { fusedKernel } from '../optim/storage.ts';
import type { WebGpuOptions } from '../runtime/backends/webgpu/webgpu.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import type { Session } from '../runtime/session.ts';
import type { Shape } from './gpu-shapes.ts';
import { bytesMoved, median } from './gpu-shapes.ts';
import type { Row } from './gpu-table.ts';

/** What bench/gpu.ts reads from its environment and its device for the timed rows. */
export interface Timing {
  /** Timed steps per round (STEPS). */
  readonly steps: number;
  /** Timed host-array steps (HOST_STEPS; 0 skips them). */
  readonly hostSteps: number;
  /** The device has timestamp-query: kernel times. */
  readonly timestamps: boolean;
  /** WebGpuOptions for every timed row (BACKEND). */
  readonly timedWith: WebGpuOptions;
  /** QUICK=1: only the GPU-buffer and in-arena steps. */
  readonly quick?: boolean;
}

/**
 * Wall ms per call of `f`: warm up (≥ 3 calls and ≥ 300 ms), then three rounds of `n` calls, each
 * waiting for the GPU at its end; the median round (a GC pause or a clock change moves one round).
 */
export async function wall(backend: WebGpuBackend, f: () => Promise<unknown>, n: number): Promise<number> {
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
export async function kernelMs(backend: WebGpuBackend, opt: Session<Hyper>, n: number): Promise<number | null> {
  if (!backend.options.timestamps) return null;
  for (let i = 0, t1 = performance.now(); i < 3 || performance.now() - t1 < 300; i++) await opt.step({});
  backend.kernelTimes.length = 0;
  for (let i = 0; i < 2 * n; i++) await opt.step({});
  // A step is one launch per chunk: the median over steps of their sum.
  const per = backend.kernelTimes.length / (2 * n);
  const steps = Array.from({ length: 2 * n }, (_, i) =>
    backend.kernelTimes.slice(i * per, (i + 1) * per).reduce((a, b) => a + b, 0),
  );
  return median(steps);
}

/** One GPUBuffer per tensor holding its bf16 gradient: what a framework's backward pass leaves on the GPU. */
export function deviceGradients(device: GPUDevice, grads: Readonly<Record<string, Uint16Array>>) {
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

export const bytesOf = (def: OptimizerDef, opt: Session<Hyper>) => {
  const { masterWeightBits, paramDtype, quantize, groupSize, scale, gradDtype } = opt.options;
  return bytesMoved(fusedKernel(def, { masterWeightBits, paramDtype, quantize, groupSize, scale, gradDtype }));
};

/** One optimizer on a fresh device: every way of stepping, timed; then the kernel alone. */
export async function time(
  timing: Timing,
  label: string,
  def: OptimizerDef,
  shape: Shape,
  o: WebGpuOptions = {},
  step: { clipGradNorm?: number; reductions?: boolean } = {},
): Promise<Row> {
  const { steps, hostSteps, timestamps, timedWith } = timing;
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
    const hostMs = hostSteps > 0 ? await wall(plain, () => opt.step(shape.grads), hostSteps) : null;
    const deviceMs = await wall(plain, () => opt.step(dg), steps);
    // The arena's own gradient regions hold the last step's gradients: stepping on them moves
    // nothing. A tensor split across chunks has no single region (then there is no such row).
    const arena = opt.chunks === 1 ? opt.deviceGradients() : null;
    const arenaMs = arena ? await wall(plain, () => opt.step(arena), steps) : null;
    const memory = opt.memory().bytesPerParam;
    const chunks = opt.chunks;
    await opt.dispose();
    let releaseMs: number | null = null,
      releaseMemory = NaN;
    if (!reduces && !timing.quick) {
      const rel = await createOptimizer(def, shape.params, { backend: plain, gradientRelease: true });
      releaseMs = await wall(plain, () => rel.step(dg), steps);
      releaseMemory = rel.memory().bytesPerParam;
      await rel.dispose();
    }
    let k: number | null = null;
    if (timed && !timing.quick) {
      const t = await createOptimizer(def, shape.params, { backend: timed, ...clip });
      // Real gradients first (the timed steps reuse what the arena holds): with zeros every
      // group's states and scales stay 0, the exact kernel's fallback for all of them.
      await t.step(dg);
      k = await kernelMs(timed, t, steps);
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
