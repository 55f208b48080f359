// bench/gpu.ts's steps table: what one row holds (bench/gpu-timing.ts measures it) and how it prints.

/** One optimizer on one shape, every way of stepping it timed. */
export interface Row {
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

/** Three significant digits (whole numbers from 100 up); a dash where there is no figure. */
export const sig = (x: number | null) => (x === null ? '—' : x >= 100 ? x.toFixed(0) : x.toPrecision(3));
export const ms = (x: number | null) => (x === null ? '—' : x.toFixed(3));
const ratio = (a: number | null, b: number | null) => (a && b ? `${(a / b).toFixed(2)}×` : '—');
export const header =
  '| optimizer | shape | params | step ms, host arrays | step ms, GPU buffers | step ms, in the arena | step ms, GPU buffers, gradient release | kernel ms | GPU-buffer step ÷ kernel | in-arena step ÷ kernel | release step ÷ kernel | Gparam/s (GPU-buffer step) | Gparam/s (kernel) | B/param moved | GB/s (kernel) | memory B/param (release) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|';
export const line = (r: Row) => {
  const k = r.kernelMs;
  return (
    `| ${r.label} | ${r.shape} | ${r.params} | ${ms(r.hostMs)} | ${ms(r.deviceMs)} | ${ms(r.arenaMs)} | ${ms(r.releaseMs)} | ${ms(k)} | ` +
    `${ratio(r.deviceMs, k)} | ${ratio(r.arenaMs, k)} | ${ratio(r.releaseMs, k)} | ${sig(r.deviceMs && r.params / r.deviceMs / 1e6)} | ` +
    `${sig(k && r.params / k / 1e6)} | ${r.bpp.toFixed(3)} | ${sig(k && (r.params * r.bpp) / k / 1e6)} | ${r.memory.toFixed(3)} (${Number.isNaN(r.releaseMemory) ? '—' : r.releaseMemory.toFixed(3)}) |`
  );
};
