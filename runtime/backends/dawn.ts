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

const isNode = typeof process !== 'undefined' && !!process.versions?.node;
let osrOff = false;

/** Turn V8 on-stack replacement off (Node only; idempotent). */
export async function disableOsr(): Promise<void> {
  if (!isNode || osrOff) return;
  const v8 = await import('node:v8');
  v8.setFlagsFromString('--no-use-osr');
  osrOff = true;
}

let nodeGpu: Promise<GPU | null> | undefined;

/** The GPU entry point: navigator.gpu, or Dawn's through the `webgpu` package; null if none. */
export function gpuEntry(): Promise<GPU | null> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return Promise.resolve(nav.gpu);
  if (!isNode) return Promise.resolve(null);
  nodeGpu ??= (async () => {
    try {
      const pkg = 'webgpu';
      const dawn = (await import(/* @vite-ignore */ pkg)) as {
        create(flags: string[]): GPU;
        globals: Record<string, unknown>;
      };
      // Dawn's enums and classes (GPUBufferUsage, …) as globals, as a browser has them.
      for (const [k, v] of Object.entries(dawn.globals))
        if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
      // Dawn rounds timestamps to multiples of 65.536 µs unless told not to (a browser's defence
      // against timing attacks); in Node that only makes `timestamps: true` too coarse for 1 ms kernels.
      return dawn.create(['disable-dawn-features=timestamp_quantization']);
    } catch {
      return null;
    }
  })();
  return nodeGpu;
}

/**
 * Make `navigator.gpu` answer (Node: Dawn's, with its enums and classes as globals, as a browser
 * has them), for libraries that look there themselves (gpu.js). Turns OSR off first. Returns the
 * entry point, or null where there is none.
 */
export async function installNavigatorGpu(): Promise<GPU | null> {
  await disableOsr();
  const gpu = await gpuEntry();
  const g = globalThis as { navigator?: { gpu?: GPU } };
  if (gpu && !g.navigator?.gpu) {
    g.navigator ??= {};
    g.navigator.gpu = gpu;
  }
  return gpu;
}
