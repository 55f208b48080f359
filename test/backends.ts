// The backends the conformance suite (test/conformance.test.ts) runs on. To add one, append an
// entry to `conformanceBackends`: `available()` says whether this machine can run it (the suite
// skips nothing silently: it lists what it ran), `create()` makes a fresh backend, and `exact`
// says whether kernels of exact ops must match the JS backend bit for bit.

import type { Backend } from '../runtime/backends/backend.ts';
import { GpujsBackend } from '../runtime/backends/gpujs/gpujs.ts';
import { JsBackend } from '../runtime/backends/js/js.ts';
import { simdSupported } from '../runtime/backends/js/wasm-module.ts';
import { findAdapter } from '../runtime/backends/webgpu/device.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';

export interface ConformanceBackend {
  readonly name: string;
  available(): Promise<boolean>;
  create(): Promise<Backend>;
  /** Kernels made only of exact ops (no ÷, √, exp2, log2) match the JS backend bit for bit. */
  readonly exact: boolean;
  /** Elements for the optimizer × codec runs (small on a CPU emulation such as lavapipe). */
  readonly optimizerElements: number;
}

const FULL = 100_000;

export const conformanceBackends: ConformanceBackend[] = [
  { name: 'js', available: async () => true, create: async () => new JsBackend({ engine: 'js' }), exact: true, optimizerElements: 20_000 },
  // The JS backend's WebAssembly SIMD engine (its default): must be bit-identical to generated JS.
  { name: 'js-wasm', available: async () => simdSupported, create: async () => new JsBackend({ engine: 'wasm' }), exact: true, optimizerElements: 20_000 },
  {
    name: 'webgpu', exact: true,
    available: async () => (await findAdapter()) !== null,
    create: () => WebGpuBackend.create(),
    // lavapipe runs on the CPU (2 cores in CI): a modest size there, the full 1e5 on a real GPU
    // or with FLASHOPTIM_FULL_CONFORMANCE=1.
    optimizerElements: process.env.FLASHOPTIM_FULL_CONFORMANCE ? FULL : 20_000,
  },
  // gpu.js (runtime/backends/gpujs/gpujs.ts): cpu and webasm run everywhere and are bit-exact; its webgpu mode
  // runs where an adapter answers. Sizes keep the 27 optimizer configs to seconds on 2 cores.
  { name: 'gpujs-cpu', exact: true, available: async () => true, create: () => GpujsBackend.create('cpu'), optimizerElements: 4_096 },
  { name: 'gpujs-webasm', exact: true, available: async () => true, create: () => GpujsBackend.create('webasm'), optimizerElements: 20_000 },
  {
    name: 'gpujs-webgpu', exact: true,
    available: async () => (await findAdapter()) !== null,
    create: () => GpujsBackend.create('webgpu'),
    optimizerElements: process.env.FLASHOPTIM_FULL_CONFORMANCE ? FULL : 4_096,
  },
];

/** The backends this machine can run, in list order. */
export async function availableBackends(): Promise<ConformanceBackend[]> {
  const ok = await Promise.all(conformanceBackends.map((b) => b.available()));
  return conformanceBackends.filter((_, i) => ok[i]);
}
