/// <reference types="@webgpu/types" />
// The device-side combine of reduction partials (Backend.combiner; runtime/reductions.ts). After a
// level's reduction passes wrote one f32 partial per group, two dispatches turn them into each
// tensor's value and the global ones, written to `values` (rows × reductions) where the next
// level's pass and the update read them; the host never sees them.
//
//   blocks: a workgroup per block: up to 16384 consecutive groups of one tensor (fewer where a
//           binding is small), counted from the tensor's first group, so blocks depend on the
//           layout alone, never on how the arena is chunked. Thread t adds (maxes) the block's
//           groups t, t + 256, … in order from +0 (−∞), then the threads' values go pairwise
//           through workgroup memory: t with t + s for s = 128, 64, …, 1. Groups outside the
//           item's range count nothing.
//   rows:   one workgroup. Thread t takes rows t, t + 256, …, each its blocks in order: a
//           tensor-scope reduction stores that; a global one adds the thread's rows in order,
//           then the threads pairwise as above, and stores the result in every row.
//
// Every order is fixed, so a step stores the same bits on every run, chunked or not. They are not
// the JS engines' order (each group's partial in turn), so results agree within f32 rounding. A
// partial buffer larger than one binding is read through windows of whole blocks, one blocks
// dispatch each: a level is (windows) + 1 dispatches, 2 unless the partials exceed a binding.

import type { Combine, CombinedReduction, CombinePlan } from '../backend.ts';
import { BackendError } from '../backend.ts';
import { blocksShader, combineBlocks, rowsShader } from './combine-wgsl.ts';
import type { GpuBuffer } from './memory.ts';
import { USAGE } from './memory.ts';

/** One compute dispatch of a combine. */
export interface CombineDispatch {
  readonly pipeline: GPUComputePipeline;
  readonly bindGroup: GPUBindGroup;
  readonly x: number;
}

/** What the backend lends the combine (WebGpuBackend has all of it). */
export interface CombineHost {
  readonly device: GPUDevice;
  /** What one storage binding may hold (the backend's, its maxBindingSize option included). */
  readonly limits: { readonly maxBindingBytes: number };
  alloc(storage: 'f32' | 'u32', length: number): GpuBuffer;
  free(buf: GpuBuffer): void;
}

export interface Window {
  readonly first: number;
  readonly count: number;
  /** The group at the binding's start, and the binding's bytes. */
  readonly base: number;
  readonly bytes: number;
}

/** The combine of one optimizer's reductions (made by WebGpuBackend.combiner). */
export class DeviceCombine implements Combine<GpuBuffer> {
  readonly values: GpuBuffer;
  readonly reductions: readonly CombinedReduction[];
  /** Dispatches per level and range, made once (stepTensor gives each tensor's range its own). */
  private readonly planned = new Map<string, CombineDispatch[]>();
  readonly owned: GpuBuffer[] = [];
  private readonly uniforms: GPUBuffer[] = [];
  private readonly blockTable: GpuBuffer;
  private readonly rowTable: GpuBuffer;
  private readonly sums: GpuBuffer;
  /** Runs of blocks whose partials fit one binding: one blocks dispatch each. */
  readonly windows: Window[] = [];
  private readonly rows: number;
  private readonly pipelines = new Map<string, GPUComputePipeline>();

  constructor(
    /** The backend that made it (its items are refused elsewhere). */
    readonly host: CombineHost,
    private readonly plan: CombinePlan<GpuBuffer>,
  ) {
    const { device } = host;
    const L = device.limits;
    this.reductions = plan.reductions;
    this.rows = plan.rows;
    const R = plan.reductions.length;
    const align = L.minStorageBufferOffsetAlignment / 4; // groups
    // A block and its alignment slack fit one binding: a window always holds a whole block.
    const maxBytes = host.limits.maxBindingBytes;
    const { blocks, rowBlocks } = combineBlocks(plan.tensors, plan.rows, maxBytes, align * 4);
    const nBlocks = blocks.length / 2;
    for (let b = 0; b < nBlocks;) {
      const base = blocks[2 * b]! - (blocks[2 * b]! % align);
      let e = b + 1;
      const end = (i: number) => blocks[2 * i]! + blocks[2 * i + 1]!;
      while (e < nBlocks && e - b < 65535 && (end(e) - base) * 4 <= maxBytes) e++;
      this.windows.push({ first: b, count: e - b, base, bytes: Math.max(4, (end(e - 1) - base) * 4) });
      b = e;
    }
    const table = (xs: Uint32Array) => {
      const buf = this.own(host.alloc('u32', Math.max(1, xs.length)));
      if (xs.length) device.queue.writeBuffer(buf.buffer, buf.offset, xs);
      return buf;
    };
    this.blockTable = table(blocks);
    this.rowTable = table(rowBlocks);
    this.sums = this.own(host.alloc('f32', Math.max(1, nBlocks * R)));
    this.values = this.own(host.alloc('f32', plan.rows * R));
    const groups = Math.max(0, ...plan.tensors.map((t) => t.groups[1]));
    for (const p of plan.partials)
      if (p.storage !== 'f32' || p.offset !== 0 || p.length < groups)
        throw new BackendError(
          `webgpu.combiner: a partials buffer must be an f32 buffer of its own with one value per arena group`,
        );
    // Every pipeline now, where the caller's error scopes see shader errors.
    const levels = [...new Set(plan.reductions.map((r) => r.level))];
    for (const l of levels) {
      const { blocks, rows } = this.shaders(l);
      for (const b of blocks) this.pipeline(b.key, b.code);
      this.pipeline(rows.key, rows.code);
    }
  }

  /** The shaders of level `level`: blocks (a batch of reductions' partials each), then rows. */
  private shaders(level: number) {
    const rs = this.reductions;
    const cols = rs.flatMap((r, i) => (r.level === level ? [i] : []));
    if (cols.length === 0) throw new BackendError(`webgpu: no reduction at level ${level}`);
    // Partials a blocks dispatch binds at most: the device's storage bindings less table and sums.
    const per = Math.max(1, this.host.device.limits.maxStorageBuffersPerShaderStage - 2);
    const blocks: { cols: number[]; key: string; code: string }[] = [];
    for (let i = 0; i < cols.length; i += per) {
      const batch = cols.slice(i, i + per);
      blocks.push({ cols: batch, key: `blocks ${batch.join(',')}`, code: blocksShader(rs, batch) });
    }
    return { blocks, rows: { key: `rows ${cols.join(',')}`, code: rowsShader(rs, cols, this.rows) } };
  }

  private own(b: GpuBuffer): GpuBuffer {
    this.owned.push(b);
    return b;
  }

  private pipeline(key: string, code: string): GPUComputePipeline {
    let p = this.pipelines.get(key);
    if (!p) {
      const d = this.host.device;
      const module = d.createShaderModule({ code, label: `combine ${key}` });
      p = d.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: `combine ${key}` });
      this.pipelines.set(key, p);
    }
    return p;
  }

  private params(g0: number, g1: number, first: number, base: number): GPUBuffer {
    const d = this.host.device;
    const b = d.createBuffer({ size: 32, usage: USAGE.UNIFORM | USAGE.COPY_DST });
    d.queue.writeBuffer(b, 0, Uint32Array.of(g0, g1, first, base, 0, 0, 0, 0));
    this.uniforms.push(b);
    return b;
  }

  /** The dispatches of level `level` over arena groups [g0, g1), made on first use. */
  dispatches(level: number, [g0, g1]: readonly [number, number]): CombineDispatch[] {
    const at = `${level} ${g0} ${g1}`;
    const hit = this.planned.get(at);
    if (hit) return hit;
    const d = this.host.device;
    const whole = (b: GpuBuffer) => ({ buffer: b.buffer, offset: b.offset, size: b.buffer.size - b.offset });
    const out: CombineDispatch[] = [];
    const { blocks, rows } = this.shaders(level);
    for (const { cols, key, code } of blocks) {
      const pipeline = this.pipeline(key, code);
      for (const w of this.windows) {
        const entries: GPUBindGroupEntry[] = [
          { binding: 0, resource: { buffer: this.params(g0, g1, w.first, w.base) } },
          { binding: 1, resource: whole(this.blockTable) },
          { binding: 2, resource: whole(this.sums) },
          ...cols.map((c, j) => {
            const p = this.plan.partials[c]!;
            return { binding: 3 + j, resource: { buffer: p.buffer, offset: p.offset + w.base * 4, size: w.bytes } };
          }),
        ];
        const bindGroup = d.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries,
          label: 'combine blocks',
        });
        out.push({ pipeline, bindGroup, x: w.count });
      }
    }
    const pipeline = this.pipeline(rows.key, rows.code);
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: this.params(g0, g1, 0, 0) } },
      { binding: 1, resource: whole(this.rowTable) },
      { binding: 2, resource: whole(this.sums) },
      { binding: 3, resource: whole(this.values) },
    ];
    out.push({
      pipeline,
      bindGroup: d.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label: 'combine rows' }),
      x: 1,
    });
    this.planned.set(at, out);
    return out;
  }

  free(): void {
    for (const b of this.owned) this.host.free(b);
    for (const u of this.uniforms) u.destroy();
    this.owned.length = 0;
    this.uniforms.length = 0;
    this.planned.clear();
  }
}
