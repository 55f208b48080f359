// The gpu.js backend: the same kernels through gpu.js, in the mode the user picks. Every field is
// held as f32 arrays on the gpu.js side (an i32/u32 field as two arrays of 16-bit halves, see
// compiler/render/gpujs/render.ts), so a narrow field costs 4 bytes per value on the device whatever its
// storage. In `webgpu` mode arrays stay on the GPU between launches (pipeline results), and
// reduction partials are combined there (`combiner`, gpujs/combine.ts; `submit` runs a step's
// launches and combine items in order); in the other modes they are host Float32Arrays, so the
// backend declares `hostMemory` there and the runtime combines reduction partials on the host
// (runtime/reductions.ts) as for the JS engines.
// One `run` is one launch as the runtime counts them, but several gpu.js kernel calls underneath
// (one per group maximum or sum, output array and counter).

import type { Storage } from '../../../compiler/ir/ir.ts';
import type { Kernel } from '../../../compiler/ir/kernel.ts';
import { counterValue, fields } from '../../../compiler/ir/kernel.ts';
import { prepare } from '../../../compiler/ir/pipeline.ts';
import type { GpujsPass, GpujsPlan } from '../../../compiler/render/gpujs/render.ts';
import { HEAD, REDUCTIONS_ARRAY, renderGpujs, sharedName, split } from '../../../compiler/render/gpujs/render.ts';
import type { Backend, CombinePlan, DeviceBuffer, Item, Launch, Program } from '../backend.ts';
import { BackendError } from '../backend.ts';
import type { DeviceArray, DeviceOptions, GpujsKernel, GpujsMode, GpujsModule } from './device.ts';
import { arraysOnDevice, gpujsDevice, gpujsModes, isDeviceArray } from './device.ts';
import { GpujsCombine } from './combine.ts';
import { submitItems } from './submit.ts';
import type { FieldArray } from '../../../compiler/ir/kernel.ts';
import { arrayFor } from '../../../compiler/ir/kernel.ts';

type Part = Float32Array | DeviceArray;
/** A field as gpu.js holds it: one f32 array (two for i32/u32: 16-bit halves), on the host or the GPU. */
export interface GpujsBuffer extends DeviceBuffer {
  parts: Part[];
  freed: boolean;
  readonly owner: GpujsBackend;
}
export interface GpujsProgram extends Program {
  readonly plan: GpujsPlan;
  readonly kernels: Map<string, GpujsKernel>;
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
   * copy within host memory. webgpu keeps them on the GPU and combines them there (`combiner`),
   * running each step's launches and combines in order (`submit`).
   */
  readonly hostMemory: boolean;
  readonly combiner?: (plan: CombinePlan<GpujsBuffer>) => GpujsCombine<GpujsBuffer>;
  readonly submit?: (items: readonly Item<GpujsBuffer, GpujsProgram>[]) => Promise<void>;
  private readonly buffers = new Set<GpujsBuffer>();
  private constructor(
    readonly mode: GpujsMode,
    private readonly gpu: GpujsModule,
    private readonly opts: DeviceOptions,
  ) {
    this.name = `gpujs-${mode}`;
    this.hostMemory = !arraysOnDevice(mode);
    if (arraysOnDevice(mode)) {
      this.combiner = (plan) => this.combineOf(plan);
      this.submit = (items) => submitItems(this, items);
    }
  }

  private combineOf(plan: CombinePlan<GpujsBuffer>): GpujsCombine<GpujsBuffer> {
    for (const p of plan.partials) this.check(p, 'combiner');
    return new GpujsCombine(
      {
        owner: this,
        alloc: (s, n) => this.alloc(s, n),
        free: (b) => this.free(b),
        kernel: (source, length) => this.gpu.kernel(source, length),
        onDevice: async (b) => (await this.upload(this.check(b, 'combine')), b.parts[0]!),
        called: () => {
          this.calls++;
          this.launches++;
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

  private async host(p: Part): Promise<Float32Array> {
    return isDeviceArray(p) ? await p.toArray() : p;
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
      : await Promise.all(b.parts.map((p) => this.host(p)));
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
    const parts = await Promise.all(b.parts.map((p) => this.host(p)));
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

  private kernelFor(prog: GpujsProgram, pass: GpujsPass, length: number): GpujsKernel {
    const key = `${pass.name}#${length}`;
    let k = prog.kernels.get(key);
    if (!k) {
      k = this.gpu.kernel(pass.source, length);
      prog.kernels.set(key, k);
    }
    return k;
  }

  async run(prog: GpujsProgram, l: Launch<GpujsBuffer>): Promise<number[]> {
    const { plan, prepared } = prog;
    const G = plan.groupSize,
      S = prepared.columns.length;
    const nGroups = Math.ceil(l.length / G);
    const [g0, g1] = l.groups;
    if (!(0 <= g0 && g0 <= g1 && g1 <= nGroups))
      throw new BackendError(`gpujs.run: groups [${g0}, ${g1}) outside [0, ${nGroups})`);
    const counts = new Array<number>(prepared.kernel.counters.length).fill(0);
    if (l.length === 0 || g0 === g1) {
      this.launches++;
      return counts;
    } // nothing to read or write
    const bound = new Map<string, GpujsBuffer>();
    const fieldOf = (name: string): GpujsBuffer => {
      let b = bound.get(name);
      if (!b) {
        const d = l.bindings[name];
        if (!d) throw new BackendError(`gpujs.run: field ${name} is not bound (kernel ${prepared.kernel.name})`);
        b = this.check(d, 'run');
        bound.set(name, b);
      }
      return b;
    };
    // aux: the launch scalars, constants, uniform rows, and the row of each group.
    const rows = l.rowOf ? await this.read(l.rowOf, 0, nGroups) : null;
    const nRows = Math.max(1, l.uniforms.length / Math.max(1, S));
    const rowsAt = plan.uniformBase + l.uniforms.length;
    const aux = new Float32Array(rowsAt + (rows ? nGroups : 1));
    aux.set([l.length, g0, g1, rowsAt, rows ? 1 : 0, l.reductions?.reductions.length ?? 0]);
    aux.set(plan.constants, HEAD);
    aux.set(l.uniforms, plan.uniformBase);
    if (rows) {
      // (With no uniform columns the table is empty and a row index selects nothing.)
      if (S > 0)
        for (let g = g0; g < g1; g++)
          if (rows[g]! >= nRows)
            throw new BackendError(`gpujs.run: rowOf[${g}] = ${rows[g]} but there are ${nRows} uniform rows`);
      aux.set(rows, rowsAt);
    }
    const auxArg = aux;
    for (const f of fields(prepared.kernel)) {
      const need = prepared.kernel.windowed.includes(f.field)
          ? Math.max(0, Math.min(l.length, g1 * G) - g0 * G)
          : f.axis === 'element'
            ? l.length
            : nGroups,
        have = fieldOf(f.field).length;
      if (have < need)
        throw new BackendError(
          `gpujs.run: field ${f.field} has ${have} entries, needs ${need} (kernel ${prepared.kernel.name})`,
        );
    }
    const reds = await this.reductionsOf(prog, l);
    for (const name of new Set(plan.passes.flatMap((ps) => ps.arrays))) {
      if (name !== 'aux' && name !== REDUCTIONS_ARRAY && !name.startsWith('reduction:') && !name.startsWith('shared:'))
        await this.upload(fieldOf(name.split(':')[0]!));
    }

    const reductions: Part[] = [];
    const shared = new Map<string, Part>();
    let extra = 0;
    const fresh = new Map<string, Part[]>();
    this.launches++;
    try {
      for (const pass of plan.passes) {
        const args = pass.arrays.map((a): Part => {
          if (a === 'aux') return auxArg;
          if (a === REDUCTIONS_ARRAY) return reds!;
          if (a.startsWith('reduction:')) return reductions[Number(a.slice('reduction:'.length))]!;
          if (a.startsWith('shared:')) return shared.get(a)!;
          const [field, half] = a.split(':');
          const b = fieldOf(field!);
          return b.parts[half === 'l' ? 1 : 0]!;
        });
        const t = pass.target;
        const length = t.kind === 'field' ? fieldOf(t.field).length : t.kind === 'shared' ? l.length : nGroups;
        if (length === 0) continue;
        this.calls++;
        const out = await this.kernelFor(prog, pass, length).run(args);
        extra += length * 4;
        this.peakBytes = Math.max(this.peakBytes, this.bytesHeld() + extra);
        if (t.kind === 'reduction') reductions[t.index] = out;
        else if (t.kind === 'shared') shared.set(sharedName(t.index), out);
        else if (t.kind === 'field') {
          const parts = fresh.get(t.field) ?? [];
          parts[t.half === 'l' ? 1 : 0] = out;
          fresh.set(t.field, parts);
        } else {
          const sums = await this.host(out);
          let s = 0;
          for (let g = g0; g < g1; g++) s += sums[g]!;
          counts[t.index]! += t.half === 'h' ? s * 65536 : s;
          if (isDeviceArray(out)) out.delete();
        }
      }
    } finally {
      for (const m of [...reductions, ...shared.values()]) if (m && isDeviceArray(m)) m.delete();
    }
    // Every pass has read the old fields: now the new arrays replace them.
    for (const [field, parts] of fresh) {
      const b = fieldOf(field);
      parts.forEach((p, i) => {
        const old = b.parts[i];
        if (old && isDeviceArray(old)) old.delete();
        b.parts[i] = p;
      });
    }
    // Counters wrap modulo 2^32 as their type, as on every backend (compiler/ir/kernel.ts).
    return prepared.kernel.counters.map((c, i) => counterValue(c, counts[i]!));
  }

  /** The combine's results where the kernel reads `$red` columns on the device (uploaded), else null. */
  private async reductionsOf(prog: GpujsProgram, l: Launch<GpujsBuffer>): Promise<Part | null> {
    if (!prog.plan.passes.some((ps) => ps.arrays.includes(REDUCTIONS_ARRAY))) return null;
    const c = l.reductions;
    if (!c)
      throw new BackendError(
        `gpujs.run: kernel ${prog.prepared.kernel.name} reads reduction results ($red columns), but the launch names no reductions`,
      );
    const v = this.check(c.values, 'run');
    await this.upload(v);
    return v.parts[0]!;
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
