// The gpu.js backend: the same kernels through gpu.js, in the mode the user picks. Every field is
// held as f32 arrays on the gpu.js side (an i32/u32 field as two arrays of 16-bit halves, see
// compiler/render/gpujs/render.ts), so a narrow field costs 4 bytes per value on the device whatever its
// storage. In `webgpu` mode arrays stay on the GPU between launches (pipeline results), and
// reductions are combined there, within the reduction passes' launches (`combiner`,
// `combinesInLaunches`, gpujs/combine.ts; `submit` runs a step's launches in order); in the other
// modes they are host Float32Arrays, so the backend declares `hostMemory` there and the runtime
// combines reduction partials on the host (runtime/reductions.ts) as for the JS engines.
// One `run` is one launch as the runtime counts them, but several gpu.js kernel calls underneath
// (one per group maximum or sum, output array and counter, and a reduction level's combine):
// gpujs/launch.ts makes them.

import type { Storage } from '../../../compiler/ir/ir.ts';
import type { FieldArray, Kernel } from '../../../compiler/ir/kernel.ts';
import { arrayFor } from '../../../compiler/ir/kernel.ts';
import { prepare } from '../../../compiler/ir/pipeline.ts';
import type { GpujsPlan } from '../../../compiler/render/gpujs/plan.ts';
import { split } from '../../../compiler/render/gpujs/plan.ts';
import { renderGpujs } from '../../../compiler/render/gpujs/render.ts';
import type { Backend, CombinePlan, DeviceBuffer, Item, Launch } from '../backend.ts';
import { BackendError } from '../backend.ts';
import type { DeviceOptions, GpujsMode, GpujsModule, Part } from './device.ts';
import { arraysOnDevice, gpujsDevice, gpujsModes, hostArray, isDeviceArray } from './device.ts';
import { GpujsCombine } from './combine.ts';
import type { GpujsLaunchHost, GpujsProgram } from './launch.ts';
import { runLaunch } from './launch.ts';
import { submitItems } from './submit.ts';

export type { GpujsProgram } from './launch.ts';

/** A field as gpu.js holds it: one f32 array (two for i32/u32: 16-bit halves), on the host or the GPU. */
export interface GpujsBuffer extends DeviceBuffer {
  parts: Part[];
  freed: boolean;
  readonly owner: GpujsBackend;
}

export class GpujsBackend implements Backend<GpujsBuffer, GpujsProgram> {
  readonly name: string;
  launches = 0;
  /** gpu.js kernel calls (several per launch: see compiler/render/gpujs/render.ts). */
  calls = 0;
  /** The most bytes of arrays held at once, during a launch included (its new arrays and group reductions). */
  peakBytes = 0;
  /**
   * Arrays are host Float32Arrays in every mode but webgpu, so reading a reduction partial is a
   * copy within host memory. webgpu keeps them on the GPU and combines them there, in the passes'
   * launches (`combiner`, `combinesInLaunches`), running each step's launches in order (`submit`).
   */
  readonly hostMemory: boolean;
  readonly combiner?: (plan: CombinePlan<GpujsBuffer>) => GpujsCombine<GpujsBuffer>;
  readonly combinesInLaunches?: boolean;
  readonly submit?: (items: readonly Item<GpujsBuffer, GpujsProgram>[]) => Promise<void>;
  private readonly buffers = new Set<GpujsBuffer>();
  private readonly launchHost: GpujsLaunchHost<GpujsBuffer> = {
    check: (b, op) => this.check(b, op),
    combine: (c, op) => {
      if (!(c instanceof GpujsCombine) || c.host.owner !== this)
        throw new BackendError(
          `gpujs.${op}: a reduction pass's launch needs a combine of this backend (Launch.reductions)`,
        );
      return c as GpujsCombine<GpujsBuffer>;
    },
    read: (b, offset, length) => this.read(b, offset, length),
    upload: (b) => this.upload(b),
    kernel: (source, length) => this.gpu.kernel(source, length),
    launched: () => {
      this.launches++;
    },
    called: () => {
      this.calls++;
    },
    held: (extra) => {
      this.peakBytes = Math.max(this.peakBytes, this.bytesHeld() + extra);
    },
  };
  private constructor(
    readonly mode: GpujsMode,
    private readonly gpu: GpujsModule,
    private readonly opts: DeviceOptions,
  ) {
    this.name = `gpujs-${mode}`;
    this.hostMemory = !arraysOnDevice(mode);
    if (arraysOnDevice(mode)) {
      this.combiner = (plan) => this.combineOf(plan);
      this.combinesInLaunches = true;
      this.submit = (items) => submitItems(this, items);
    }
  }

  private combineOf(plan: CombinePlan<GpujsBuffer>): GpujsCombine<GpujsBuffer> {
    return new GpujsCombine(
      {
        owner: this,
        alloc: (s, n) => this.alloc(s, n),
        free: (b) => this.free(b),
        kernel: (source, length) => this.gpu.kernel(source, length),
        onDevice: async (b) => (await this.upload(this.check(b, 'combine')), b.parts[0]!),
        // Its kernel is part of the launch that ends with it: a call, not a launch.
        called: () => {
          this.calls++;
        },
      },
      plan,
    );
  }

  get threads(): boolean {
    return this.mode === 'webasm' && !!this.opts.threads;
  }
  /** '' or the options that differ from the defaults, for reports: '-threads', '-noshare'. */
  get variant(): string {
    return (this.threads ? '-threads' : '') + (this.opts.share === false ? '-noshare' : '');
  }

  /** A backend in `mode`; rejects with the reason when gpu.js cannot run that mode here. */
  static async create(mode: GpujsMode, opts: DeviceOptions = {}): Promise<GpujsBackend> {
    if (!gpujsModes.includes(mode))
      throw new BackendError(`gpujs: unknown mode ${String(mode)} (one of ${gpujsModes.join(', ')})`);
    return new GpujsBackend(mode, await gpujsDevice(mode, opts), opts);
  }

  alloc(storage: Storage, length: number): GpujsBuffer {
    if (!Number.isInteger(length) || length < 0)
      throw new BackendError(`gpujs.alloc: length must be a non-negative integer, got ${length}`);
    const parts = split(storage) ? [new Float32Array(length), new Float32Array(length)] : [new Float32Array(length)];
    const b: GpujsBuffer = { storage, length, parts, freed: false, owner: this };
    this.buffers.add(b);
    this.peakBytes = Math.max(this.peakBytes, this.bytesHeld());
    return b;
  }

  /** Bytes the buffers of this backend hold now: 4 per value (8 for an i32/u32 field). */
  bytesHeld(): number {
    let s = 0;
    for (const b of this.buffers) s += b.parts.length * b.length * 4;
    return s;
  }

  private check(b: GpujsBuffer, op: string): GpujsBuffer {
    if (b?.owner !== this) throw new BackendError(`gpujs.${op}: not a buffer of this backend`);
    if (b.freed) throw new BackendError(`gpujs.${op}: buffer was freed`);
    return b;
  }

  async write(buf: GpujsBuffer, data: FieldArray, offset = 0): Promise<void> {
    const b = this.check(buf, 'write');
    if (offset < 0 || offset + data.length > b.length)
      throw new BackendError(`gpujs.write: ${data.length} values at ${offset} overflow a buffer of ${b.length}`);
    if (!(data instanceof arrayFor[b.storage]))
      throw new BackendError(
        `gpujs.write: a ${b.storage} buffer takes a ${arrayFor[b.storage].name}, got ${data.constructor.name}`,
      );
    // A whole-buffer write needs nothing old; otherwise a device array reads back as a copy and a
    // host array is patched in place.
    const whole = offset === 0 && data.length === b.length;
    const fresh = whole
      ? b.parts.map(() => new Float32Array(b.length))
      : await Promise.all(b.parts.map((p) => hostArray(p)));
    if (split(b.storage)) {
      for (let j = 0; j < data.length; j++) {
        const u = data[j]! >>> 0;
        fresh[0]![offset + j] = Math.floor(u / 65536);
        fresh[1]![offset + j] = u % 65536;
      }
    } else fresh[0]!.set(data, offset);
    b.parts.forEach((p, i) => {
      if (isDeviceArray(p)) p.delete();
      b.parts[i] = fresh[i]!;
    });
    await this.upload(b);
  }

  /** webgpu: move host arrays to the device once, instead of once per kernel call that reads them. */
  private async upload(b: GpujsBuffer): Promise<void> {
    if (!arraysOnDevice(this.mode)) return;
    for (let i = 0; i < b.parts.length; i++) {
      const p = b.parts[i]!;
      if (!isDeviceArray(p) && p.length > 0) b.parts[i] = await this.gpu.upload(p);
    }
  }

  async read(buf: GpujsBuffer, offset = 0, length = buf.length - offset): Promise<FieldArray> {
    const b = this.check(buf, 'read');
    if (offset < 0 || length < 0 || offset + length > b.length)
      throw new BackendError(`gpujs.read: [${offset}, ${offset + length}) outside a buffer of ${b.length}`);
    const parts = await Promise.all(b.parts.map((p) => hostArray(p)));
    const out = new arrayFor[b.storage](length);
    if (split(b.storage))
      for (let j = 0; j < length; j++) out[j] = parts[0]![offset + j]! * 65536 + parts[1]![offset + j]!;
    else for (let j = 0; j < length; j++) out[j] = parts[0]![offset + j]!;
    return out;
  }

  async compile(kernel: Kernel): Promise<GpujsProgram> {
    // With the combine on the device, what reads a reduction stays in the kernel (REDUCTIONS_ARRAY).
    const reductionsOnDevice = arraysOnDevice(this.mode);
    const prepared = prepare(kernel, { reductionsOnDevice });
    let plan: GpujsPlan;
    try {
      plan = renderGpujs(prepared, {
        fround: this.mode === 'cpu',
        signedZeros: this.mode === 'cpu' || this.mode === 'webasm',
        share: this.opts.share ?? true,
        reductionsOnDevice,
      });
    } catch (e) {
      throw new BackendError(`gpujs.compile: kernel ${kernel.name}: ${(e as Error).message}`);
    }
    return { prepared, source: plan.source, plan, kernels: new Map() };
  }

  async run(prog: GpujsProgram, l: Launch<GpujsBuffer>): Promise<number[]> {
    return runLaunch(this.launchHost, prog, l);
  }

  /** Bytes `b` holds: gpu.js keeps every value as an f32 (an i32/u32 as two, its 16-bit halves). */
  bytes(b: GpujsBuffer): number {
    return this.check(b, 'bytes').parts.length * b.length * 4;
  }

  free(b: GpujsBuffer): void {
    if (b.freed || b.owner !== this) return;
    for (const p of b.parts) if (isDeviceArray(p)) p.delete();
    b.parts = [];
    b.freed = true;
    this.buffers.delete(b);
  }

  dispose(): void {
    this.gpu.destroy();
  }
}
