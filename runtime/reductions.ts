// A step with reductions (compiler/ir/phases.ts): per level, one launch of the reduction pass
// (per-group partials into f32 scratch buffers), then the combine of those partials into one
// scalar per tensor row (a tensor's groups in group order; a global one adds the tensors in
// layout order, f32 throughout), which the next level and the update read as uniform columns.
//
// The combine runs where the backend's buffers are host memory (`Backend.hostMemory`: the JS
// engines and threads), so reading the partials is a copy within one memory, not a transfer.
// A backend without host memory (WebGPU, gpu.js) would need the combine on the device; until it
// has one, it refuses such a kernel (refuseReductions) rather than compute anything else.

import type { Phases } from '../compiler/ir/phases.ts';
import { splitPhases } from '../compiler/ir/phases.ts';
import { uniformTable } from '../compiler/ir/pipeline.ts';
import type { Kernel } from '../compiler/ir/kernel.ts';
import { fmax } from '../compiler/ir/semantics.ts';
import type { Layout, TensorSlot } from './arena.ts';
import type { Backend, DeviceBuffer, Item, Program } from './backends/backend.ts';
import { BackendError } from './backends/backend.ts';
import type { Chunk } from './chunks.ts';
import type { Work } from './io.ts';
import { compile, read, run } from './io.ts';

export interface Reductions {
  readonly phases: Phases;
  /** The reduction pass of each level, compiled. */
  readonly passes: readonly Program[];
  /** Per chunk, one f32 buffer of per-group partials per reduction (bound as the pass's group outputs). */
  readonly scratch: ReadonlyMap<Chunk, Readonly<Record<string, DeviceBuffer>>>;
  /** The index of the clip's squared global gradient norm in `phases.reductions`, or −1. */
  readonly gradNorm: number;
  /** Each reduction's value per tensor row after the last step that ran them (rows × reductions). */
  last: Float32Array | null;
}

/** A backend that cannot run reduction steps says so, naming what it lacks. */
export function refuseReductions(b: Backend, what: string): void {
  if (!b.hostMemory)
    throw new BackendError(
      `backend ${b.name}: ${what} needs reductions (a per-tensor or global sum or max), which this backend cannot run yet: it has no device-side combine of the per-group partials (docs/compiler.md, "Reductions"); use the js backend or JsThreadsBackend`,
    );
}

/** Compile the passes and allocate their scratch; every buffer it allocated is in `owned`. */
export function* prepareReductions(
  b: Backend,
  step: Kernel,
  chunks: readonly Chunk[],
  gradNormNode: unknown,
  owned: DeviceBuffer[],
): Work<Reductions | null> {
  const phases = splitPhases(step);
  if (phases.passes.length === 0) return null;
  const passes: Program[] = [];
  for (const k of phases.passes) passes.push((yield compile(k)) as Program);
  const scratch = new Map<Chunk, Record<string, DeviceBuffer>>();
  for (const c of chunks) {
    const bufs: Record<string, DeviceBuffer> = {};
    for (const r of phases.reductions) {
      bufs[r.name] = b.alloc('f32', c.groups[1] - c.groups[0]);
      owned.push(bufs[r.name]!);
    }
    scratch.set(c, bufs);
  }
  const gradNorm = phases.reductions.findIndex((r) => r.node === gradNormNode);
  return { phases, passes, scratch, gradNorm, last: null };
}

/** What reduceRows needs of the held optimizer (runtime/held.ts, which imports this file). */
export interface ReductionHost {
  readonly layout: Layout;
  readonly chunks: readonly Chunk[];
  /** A launch of `program` per chunk over its share of groups [g0, g1), counting into `counters`. */
  launches(
    program: Program,
    uniforms: Float32Array,
    groups: readonly [number, number],
    extra?: (c: Chunk) => Readonly<Record<string, DeviceBuffer>>,
  ): Item[];
}

/**
 * Run every level over groups [g0, g1) and return the rows with each reduction's value added
 * (`$red<i>`): a tensor's own value, or the global one in every row. Tensors outside the range or
 * without a gradient count nothing (their masked partials are 0, or −∞ for a max).
 */
export function* reduceRows(
  s: ReductionHost,
  red: Reductions,
  rows: readonly Record<string, number>[],
  active: (t: TensorSlot) => boolean,
  [g0, g1]: readonly [number, number],
): Work<Record<string, number>[]> {
  const tensors = s.layout.tensors;
  const rs = red.phases.reductions;
  const values = new Float32Array(tensors.length * rs.length);
  let cur = rows.map((r) => ({ ...r }));
  for (let level = 1; level <= red.passes.length; level++) {
    const program = red.passes[level - 1]!;
    const uniforms = uniformTable(program.prepared, cur);
    for (const it of s.launches(program, uniforms, [g0, g1], (c) => red.scratch.get(c)!))
      if ('program' in it) yield run(it.program, { ...it.launch, counters: null });
    const here = rs.map((r, i) => [r, i] as const).filter(([r]) => r.level === level);
    // The partials of this level, chunk by chunk (a copy within host memory).
    const partials = new Map<string, Float32Array>();
    for (const [r] of here) {
      const all = new Float32Array(s.layout.groups);
      for (const c of s.chunks)
        all.set((yield read(red.scratch.get(c)![r.name]!, 0, c.groups[1] - c.groups[0])) as Float32Array, c.groups[0]);
      partials.set(r.name, all);
    }
    for (const [r, i] of here) {
      const part = partials.get(r.name)!;
      const sum = r.fn === 'sum';
      const combine = (a: number, b: number) => (sum ? Math.fround(a + b) : fmax(a, b));
      const empty = sum ? 0 : -Infinity;
      let global = empty;
      for (const t of tensors) {
        let v = empty;
        const a = Math.max(g0, t.groups[0]),
          z = Math.min(g1, t.groups[1]);
        if (a < z && active(t)) for (let g = a; g < z; g++) v = combine(v, part[g]!);
        values[t.row * rs.length + i] = v;
        global = combine(global, v);
      }
      cur = cur.map((row, ti) => ({
        ...row,
        [r.name]: r.scope === 'global' ? global : values[tensors[ti]!.row * rs.length + i]!,
      }));
      if (r.scope === 'global') for (const t of tensors) values[t.row * rs.length + i] = global;
    }
  }
  red.last = values;
  return cur;
}

/** The pre-clip global gradient norm of the last step, as the kernel computed it (f32 √ of the f32 sum). */
export function lastGradNorm(red: Reductions | null): number {
  if (!red || red.gradNorm < 0) throw new RangeError('gradNorm: this optimizer was created without clipGradNorm');
  if (!red.last) return NaN;
  return Math.fround(Math.sqrt(red.last[red.gradNorm]!));
}
