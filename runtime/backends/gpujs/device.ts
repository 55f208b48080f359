// Where gpu.js meets the machine: loading it, starting a mode, making kernels with the settings
// this backend relies on, and moving arrays to and from a WebGPU device. In Node, `webgpu` mode
// takes navigator.gpu from the `webgpu` package (Dawn) and turns off V8 on-stack replacement
// first (../shared/docs/gpu.md: a hot loop beside a live device can crash the process otherwise).

import { BackendError } from '../backend.ts';
import { installNavigatorGpu } from '../dawn.ts';
import { MissingPeerError, importPeer } from '../peers.ts';

export type GpujsMode = 'webgl2' | 'webgl' | 'headlessgl' | 'webasm' | 'cpu' | 'webgpu';
export const gpujsModes: readonly GpujsMode[] = ['webgl2', 'webgl', 'headlessgl', 'webasm', 'cpu', 'webgpu'];

/** A gpu.js WebGPU pipeline result: an f32 array that stays on the GPU. */
export interface DeviceArray {
  toArray(): Promise<Float32Array>;
  delete(): void;
  readonly output: number[];
}
export type Part = Float32Array | DeviceArray;
export interface GpujsKernel {
  run(args: readonly Part[]): Promise<Part>;
}
export interface GpujsModule {
  kernel(source: string, length: number): GpujsKernel;
  /** webgpu only: a device copy of a host array. */
  upload(a: Float32Array): Promise<DeviceArray>;
  destroy(): void;
}

export const isDeviceArray = (p: Part): p is DeviceArray => !(p instanceof Float32Array);
/** `p` as a host array: a device array read back (a copy), a host array itself. */
export const hostArray = async (p: Part): Promise<Float32Array> => (isDeviceArray(p) ? await p.toArray() : p);
/** Does `mode` keep arrays on the GPU between kernel calls (pipeline results), not in host Float32Arrays? */
export const arraysOnDevice = (mode: GpujsMode): boolean => mode === 'webgpu';

interface GpuCtor {
  new (s: { mode: string }): GpuInstance;
  isWebGPUAvailable(): Promise<boolean>;
}
interface GpuInstance {
  createKernel(src: string, settings: object): RawKernel;
  destroy(): void;
}
type RawKernel = ((...args: Part[]) => Part | Promise<Part>) & {
  kernel?: { constructor: { name: string }; fallbackReason?: string | null };
};
interface WebGpuContextStatic {
  acquire(): Promise<{ device: unknown }>;
}

interface Gpujs {
  GPU: GpuCtor;
  WebGPUContext: WebGpuContextStatic;
}

/**
 * gpu.js itself, loaded on first use only (an optional peer): the page's global `GPU` where
 * gpu-browser.js was loaded with a script tag, else the `gpu.js` package (CommonJS in Node).
 */
async function loadGpujs(): Promise<Gpujs> {
  const global = (globalThis as { GPU?: Partial<Gpujs> }).GPU;
  if (global?.GPU && global.WebGPUContext) return global as Gpujs;
  const m = await importPeer<{ default?: Gpujs } & Gpujs>('gpu.js', 'GpujsBackend.create');
  return m.default ?? m;
}

/** The first acquisition of gpu.js's shared device asks for every storage buffer the adapter allows
 *  (gpu.js asks for the default 8 per shader stage; a fused optimizer step binds more). */
async function acquireWebGpu(ctx: WebGpuContextStatic): Promise<void> {
  const g = globalThis as { navigator?: { gpu?: { requestAdapter(o?: object): Promise<unknown> } } };
  if (!(await installNavigatorGpu('GpujsBackend.create')))
    throw new Error('no WebGPU entry point (navigator.gpu, or the webgpu package in Node)');
  const real = g.navigator!.gpu!;
  const wrapped = {
    requestAdapter: async (o?: object) => {
      const a = (await real.requestAdapter(o)) as null | {
        limits: Record<string, number>;
        requestDevice(d?: { requiredLimits?: object }): Promise<unknown>;
      };
      if (!a) return a;
      const requestDevice = a.requestDevice.bind(a);
      return new Proxy(a, {
        get: (t, k) =>
          k === 'requestDevice'
            ? (d?: { requiredLimits?: object }) =>
                requestDevice({
                  ...d,
                  requiredLimits: {
                    ...d?.requiredLimits,
                    maxStorageBuffersPerShaderStage: a.limits.maxStorageBuffersPerShaderStage,
                  },
                })
            : Reflect.get(t, k),
      });
    },
  };
  g.navigator!.gpu = wrapped as never;
  try {
    await ctx.acquire();
  } finally {
    g.navigator!.gpu = real;
  }
}

export interface DeviceOptions {
  /** webasm: run kernels on gpu.js's worker pool. */
  readonly threads?: boolean;
  /** Compute values several outputs share once per launch (default true; see compiler/render/gpujs/share.ts). */
  readonly share?: boolean;
}

export async function gpujsDevice(mode: GpujsMode, opts: DeviceOptions = {}): Promise<GpujsModule> {
  const lib = await loadGpujs();
  if (mode === 'webgpu') {
    try {
      await acquireWebGpu(lib.WebGPUContext);
    } catch (e) {
      if (e instanceof MissingPeerError) throw e;
      throw new BackendError(`gpujs: mode webgpu has no WebGPU adapter here (${(e as Error).message})`);
    }
  }
  let gpu: GpuInstance;
  try {
    gpu = new lib.GPU({ mode });
  } catch (e) {
    const why =
      mode === 'headlessgl'
        ? 'it needs the optional `gl` package, which is not installed'
        : mode.startsWith('webgl')
          ? 'it needs a browser WebGL context'
          : (e as Error).message;
    throw new BackendError(`gpujs: mode ${mode} is not available here: ${why}`);
  }
  const onGpu = arraysOnDevice(mode);
  const settings = (length: number) => ({
    output: [length],
    precision: 'single',
    tactic: 'precision',
    dynamicArguments: true,
    pipeline: onGpu,
    immutable: onGpu,
    loopMaxIterations: 100_000,
    optimizeFloatMemory: false,
    // webasm splits a kernel across a worker pool only under gpu.js's async contract.
    ...(mode === 'webasm' && opts.threads ? { asyncMode: true } : {}),
  });
  const uploads = new Map<number, RawKernel>();
  const kernel = (source: string, length: number): GpujsKernel => {
    const raw = gpu.createKernel(source, settings(length));
    let checked = false;
    return {
      run: async (args) => {
        const out = await raw(...args);
        if (!checked) {
          checked = true;
          // webasm degrades to the cpu kernel (f64 arithmetic) on what it cannot take: refuse it.
          const reason = raw.kernel?.fallbackReason;
          if (reason) throw new BackendError(`gpujs: mode ${mode} fell back to another backend (${reason})`);
        }
        if (!onGpu && !(out instanceof Float32Array))
          throw new BackendError(
            `gpujs: mode ${mode} returned a ${(out as object).constructor.name}, expected a Float32Array`,
          );
        const got = out instanceof Float32Array ? out.length : out.output[0];
        if (got !== length)
          throw new BackendError(`gpujs: mode ${mode} returned ${got} values for an output of ${length}`);
        return out;
      },
    };
  };
  return {
    kernel,
    upload: async (a) => {
      let k = uploads.get(a.length);
      if (!k) {
        k = gpu.createKernel('function (a) { return a[this.thread.x]; }', settings(a.length));
        uploads.set(a.length, k);
      }
      return (await k(a)) as DeviceArray;
    },
    destroy: () => gpu.destroy(),
  };
}
