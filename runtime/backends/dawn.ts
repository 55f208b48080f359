/// <reference types="@webgpu/types" />
// WebGPU's entry point: `navigator.gpu` in browsers, the `webgpu` package (Dawn) in Node. Both GPU
// backends (webgpu/, gpujs/) start here, so Dawn is loaded and set up in one place.
//
// In Node, V8's on-stack replacement of a hot loop while a Dawn device is alive kills the process
// about half the time (segfaults, futex and mutex assertion failures). It never happens with OSR
// off, so before the first device is created `disableOsr` calls
// `v8.setFlagsFromString('--no-use-osr')` (NODE_OPTIONS refuses that flag). Functions are still
// optimized; only the replacement of a running loop is off. runtime/backends/webgpu/webgpu.test.ts
// proves a 500 ms busy loop after device creation no longer kills the process.

import { MissingPeerError, importNode, importPeer } from './peers.ts';

const isNode = typeof process !== 'undefined' && !!process.versions?.node;
let osrOff = false;

/** Turn V8 on-stack replacement off (Node only; idempotent). */
export async function disableOsr(): Promise<void> {
  if (!isNode || osrOff) return;
  const v8 = await importNode<typeof import('node:v8')>('node:v8');
  v8.setFlagsFromString('--no-use-osr');
  osrOff = true;
}

interface Dawn {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

/** Dawn's entry point; null where it cannot start; a MissingPeerError where `webgpu` is not installed. */
let nodeGpu: Promise<GPU | null | MissingPeerError> | undefined;

async function startDawn(): Promise<GPU | null | MissingPeerError> {
  let dawn: Dawn;
  try {
    dawn = await importPeer<Dawn>('webgpu', 'gpuEntry');
  } catch (e) {
    return e instanceof MissingPeerError ? e : null;
  }
  try {
    // Dawn's enums and classes (GPUBufferUsage, …) as globals, as a browser has them.
    for (const [k, v] of Object.entries(dawn.globals))
      if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    // Dawn rounds timestamps to multiples of 65.536 µs unless told not to (a browser's defence
    // against timing attacks); in Node that only makes `timestamps: true` too coarse for 1 ms kernels.
    return dawn.create(['disable-dawn-features=timestamp_quantization']);
  } catch {
    return null;
  }
}

/**
 * The GPU entry point: navigator.gpu, or Dawn's through the `webgpu` package; null if none. With
 * `who` (a caller that needs a GPU), Node without the `webgpu` package is a MissingPeerError naming
 * `who` and the install command instead of null.
 */
export async function gpuEntry(who?: string): Promise<GPU | null> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (!isNode) return null;
  nodeGpu ??= startDawn();
  const gpu = await nodeGpu;
  if (!(gpu instanceof MissingPeerError)) return gpu;
  if (who) throw new MissingPeerError('webgpu', who, { cause: gpu });
  return null;
}

/**
 * Make `navigator.gpu` answer (Node: Dawn's, with its enums and classes as globals, as a browser
 * has them), for libraries that look there themselves (gpu.js). Turns OSR off first. Returns the
 * entry point, or null where there is none (with `who`, a MissingPeerError where Node lacks `webgpu`).
 */
export async function installNavigatorGpu(who?: string): Promise<GPU | null> {
  await disableOsr();
  const gpu = await gpuEntry(who);
  const g = globalThis as { navigator?: { gpu?: GPU } };
  if (gpu && !g.navigator?.gpu) {
    g.navigator ??= {};
    g.navigator.gpu = gpu;
  }
  return gpu;
}
