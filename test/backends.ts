// The backends the conformance suite runs on, each compared with the oracle (the IR's semantics).
// To add one, append an entry: `available()` says whether this machine can run it (the suite
// prints what it ran and what it could not), `create()` makes a fresh backend.

import type { Kernel } from '../compiler/ir/kernel.ts';
import type { Backend } from '../runtime/backends/backend.ts';
import { GpujsBackend } from '../runtime/backends/gpujs/gpujs.ts';
import { JsBackend } from '../runtime/backends/js/js.ts';
import { JsThreadsBackend } from '../runtime/backends/js/threads.ts';
import { simdSupported } from '../runtime/backends/js/wasm-module.ts';
import { findAdapter } from '../runtime/backends/webgpu/device.ts';
import type { WebGpuOptions } from '../runtime/backends/webgpu/webgpu.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import { DeviceOrderOracle, gpujsOrder, webgpuOrder } from './device-oracle.ts';

export interface ConformanceBackend {
  readonly name: string;
  available(): Promise<boolean>;
  create(): Promise<Backend>;
  /**
   * Bit-identical to the oracle on every kernel and optimizer step. Otherwise `identicalAtLeast`
   * is the least fraction of stored values that must match, and optimizer states must stay within
   * the codec bounds (codes ±1, master weights within two correction quanta).
   */
  readonly exact: boolean;
  readonly identicalAtLeast?: number;
  /** f32 ops this backend only approximates: left out of its random kernels (docs say why). */
  readonly approximate: readonly string[];
  /** Random kernels per case family. */
  readonly kernelRuns: number;
  /** Elements of the optimizer runs. */
  readonly optimizerElements: number;
  /**
   * Its renderer has no groupSum yet: reduction passes are refused by name instead of run
   * (docs/compiler.md, "Reductions").
   */
  readonly noGroupSum?: true;
  /**
   * Threads its renderer splits a group's sum over (WGSL: the kernel's threads a group), so the
   * oracle adds a groupSum in that order (compiler/ir/interpret.ts `sumLanes`); default 1.
   */
  readonly sumLanes?: (b: Backend, k: Kernel) => number;
  /**
   * The oracle of its order of reductions, where that is not the JS engines' (WebGPU and gpu.js in
   * webgpu mode combine partials on the device, in a tree: test/device-oracle.ts); its steps with
   * reductions must store what that oracle stores. Every backend runs such steps.
   */
  readonly reductionOrder?: (b: Backend) => Backend;
}

const gpu = async () => (await findAdapter()) !== null;
const wgslLanes = (b: Backend, k: Kernel) => webgpuOrder(b as WebGpuBackend).sumLanes(k);
// GPU drivers compute exp2, log2 and inverseSqrt approximately (WGSL allows it); gpu.js likewise.
const TRANSCENDENTAL = ['exp2', 'log2', 'rsqrt'];

/** A WebGPU backend with `options`: exact, reductions in the device's order. */
const webgpu = (name: string, options: WebGpuOptions, kernelRuns: number, optimizerElements: number) =>
  ({
    name,
    available: gpu,
    create: () => WebGpuBackend.create(options),
    exact: true,
    approximate: TRANSCENDENTAL,
    kernelRuns,
    optimizerElements,
    sumLanes: wgslLanes,
    reductionOrder: (b: Backend) => new DeviceOrderOracle(webgpuOrder(b as WebGpuBackend)),
  }) satisfies ConformanceBackend;

export const conformanceBackends: ConformanceBackend[] = [
  // Generated JavaScript: the JS backend where WebAssembly SIMD is missing.
  {
    name: 'js',
    available: async () => true,
    create: async () => new JsBackend({ engine: 'js' }),
    exact: true,
    approximate: [],
    kernelRuns: 2000,
    optimizerElements: 8192,
  },
  // WebAssembly SIMD, the JS backend's default engine.
  {
    name: 'js-wasm',
    available: async () => simdSupported,
    create: async () => new JsBackend({ engine: 'wasm' }),
    exact: true,
    approximate: [],
    kernelRuns: 2000,
    optimizerElements: 8192,
  },
  // Two workers over one shared memory, every launch split (minGroupsPerThread 1) so slicing runs.
  {
    name: 'js-threads',
    available: async () => simdSupported,
    create: async () => new JsThreadsBackend({ threads: 2, minGroupsPerThread: 1 }),
    exact: true,
    approximate: [],
    kernelRuns: 300,
    optimizerElements: 8192,
  },
  // lavapipe in CI (Vulkan on the CPU): each random kernel compiles a pipeline, so fewer of them.
  webgpu('webgpu', {}, 60, 8192),
  // The driver's arithmetic (exact: false, 64 invocations a workgroup). lavapipe's ÷ rounds
  // correctly and its fma is not fused, so here it must store what the oracle stores; on the H200
  // it does not (docs/bench-gpu.md §4), which is why it is not the default.
  webgpu('webgpu-driver', { exact: false }, 30, 4096),
  // Exact mode's split kernels (a fast kernel, then a fallback for the workgroups whose checks
  // failed): the default where fma is fused, forced here where it is not (lavapipe).
  webgpu('webgpu-split', { splitKernels: true }, 30, 4096),
  {
    name: 'gpujs-cpu',
    available: async () => true,
    create: () => GpujsBackend.create('cpu'),
    exact: true,
    approximate: TRANSCENDENTAL,
    kernelRuns: 100,
    optimizerElements: 4096,
  },
  {
    name: 'gpujs-webasm',
    available: async () => true,
    create: () => GpujsBackend.create('webasm'),
    exact: true,
    approximate: TRANSCENDENTAL,
    kernelRuns: 100,
    optimizerElements: 8192,
  },
  // gpu.js's WebGPU kernels run with fast-math on lavapipe: subnormals flush and −0 may become +0
  // (docs/gpujs.md), so a difference that starts there can spread; held to a measured fraction.
  {
    name: 'gpujs-webgpu',
    available: gpu,
    create: () => GpujsBackend.create('webgpu'),
    exact: false,
    identicalAtLeast: 0.99,
    approximate: TRANSCENDENTAL,
    kernelRuns: 30,
    optimizerElements: 4096,
    // Its arrays stay on the GPU and its reduction passes' launches combine there, in WebGPU's
    // order; a group's elements are added in element order (one lane).
    reductionOrder: () => new DeviceOrderOracle(gpujsOrder),
  },
];

/** The backends this machine can run, in list order; prints the ones it cannot. */
export async function availableBackends(): Promise<ConformanceBackend[]> {
  const ok = await Promise.all(conformanceBackends.map((b) => b.available()));
  const missing = conformanceBackends.filter((_, i) => !ok[i]).map((b) => b.name);
  if (missing.length) console.log(`conformance: not available on this machine: ${missing.join(', ')}`);
  return conformanceBackends.filter((_, i) => ok[i]);
}
