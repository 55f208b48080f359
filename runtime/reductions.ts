// A step with reductions (compiler/ir/phases.ts): per level, one launch of the reduction pass
// (per-group partials), then the combine of those partials into one scalar per tensor row, which
// the next level and the update read as columns `$red<i>`.
//
// Three places combine:
// - the host, where the backend's buffers are host memory (`Backend.hostMemory`: the JS engines
//   and threads, gpu.js in cpu and webasm modes), so reading the partials is a copy within one
//   memory, not a transfer: a tensor's groups in group order, a global one the tensors in layout
//   order, f32 throughout; the results become uniform columns;
// - the device, in the kernels (`Backend.combinesInKernels`: WebGPU): a pass adds its blocks'
//   sums, the next level's kernels and the update add the blocks themselves;
// - the device, in the passes' launches (`Backend.combinesInLaunches`: gpu.js in webgpu mode):
//   each launch of a level's pass adds its groups into the combine's buffers, and the level's last
//   launch (the runtime marks it, `Launch.pass`: only here is it known which one that is) ends with
//   the combine, whose results the next level and the update read on the device.
// On the device a step is one submission of a launch per level and chunk plus the update's that
// reads nothing back; `gradNorm()` reads its value when asked. A backend with none of these
// refuses such a kernel (refuseReductions) rather than compute anything else.

import type { Phases } from '../compiler/ir/phases.ts';
import { splitPhases } from '../compiler/ir/phases.ts';
import { uniformTable } from '../compiler/ir/pipeline.ts';
import type { Kernel } from '../compiler/ir/kernel.ts';
import { fmax } from '../compiler/ir/semantics.ts';
import type { Layout, TensorSlot } from './arena.ts';
import type { Backend, Combine, DeviceBuffer, Item, Program } from './backends/backend.ts';
import { BackendError } from './backends/backend.ts';
import type { Chunk } from './chunks.ts';
import type { Work } from './io.ts';
import { compile, read, run } from './io.ts';

export interface Reductions {
  readonly phases: Phases;
  /** The reduction pass of each level, compiled. */
  readonly passes: readonly Program[];
  /**
   * Per chunk, one f32 buffer of per-group partials per reduction (bound as the pass's group
   * outputs) where the host combines; none (an empty record) with a device combine.
   */
  readonly scratch: ReadonlyMap<Chunk, Readonly<Record<string, DeviceBuffer>>>;
  /** What it allocated: freed with the optimizer (with `device`). */
  readonly owned: readonly DeviceBuffer[];
  /** The backend's device combine, or null where the host combines. */
  readonly device: Combine | null;
  /** The index of the clip's squared global gradient norm in `phases.reductions`, or −1. */
  readonly gradNorm: number;
  /** Each reduction's value per tensor row after the last step that ran them (rows × reductions; host combine). */
  last: Float32Array | null;
  /** A step has run the reductions (with a device combine, their values are on the device). */
  ran: boolean;
}

/** A backend that cannot run reduction steps says so, naming what it lacks. */
export function refuseReductions(b: Backend, what: string): void {
  if (!b.hostMemory && !b.combiner)
    throw new BackendError(
      `backend ${b.name}: ${what} needs reductions (a per-tensor or global sum or max), which this backend cannot run yet: it has no device-side combine of the per-group partials (docs/compiler.md, "Reductions"); use the js backend, JsThreadsBackend, WebGpuBackend or GpujsBackend`,
    );
}

/**
 * Compile the passes, allocate their scratch and, on a backend with `combiner`, make the device
 * combine; every buffer it allocated is in `owned` too (freed by the caller if a later step fails).
 */
export function* prepareReductions(
  b: Backend,
  step: Kernel,
  layout: Layout,
  chunks: readonly Chunk[],
  gradNormNode: unknown,
  owned: DeviceBuffer[],
): Work<Reductions | null> {
  const phases = splitPhases(step);
  if (phases.passes.length === 0) return null;
  const passes: Program[] = [];
  for (const k of phases.passes) passes.push((yield compile(k)) as Program);
  const mine: DeviceBuffer[] = [];
  const alloc = (n: number) => {
    const x = b.alloc('f32', n);
    mine.push(x);
    owned.push(x);
    return x;
  };
  const scratch = new Map<Chunk, Record<string, DeviceBuffer>>();
  let device: Combine | null = null;
  const cuts = chunks.map((c) => c.groups[0]);
  const plan = {
    reductions: phases.reductions.map(({ fn, scope, level }) => ({ fn, scope, level })),
    rows: layout.tensors.length,
    tensors: layout.tensors.map((t) => ({ row: t.row, groups: t.groups })),
    cuts,
  };
  if (b.combiner && !b.hostMemory) {
    // The kernels or the passes' launches combine: no partial is stored anywhere.
    if (!b.combinesInKernels && !b.combinesInLaunches)
      throw new BackendError(`backend ${b.name}: a combiner must combine in its kernels or in its launches`);
    for (const c of chunks) scratch.set(c, {});
    device = b.combiner({ ...plan, partials: [] });
  } else
    for (const c of chunks)
      scratch.set(c, Object.fromEntries(phases.reductions.map((r) => [r.name, alloc(c.groups[1] - c.groups[0])])));
  const gradNorm = phases.reductions.findIndex((r) => r.node === gradNormNode);
  return { phases, passes, scratch, owned: mine, device, gradNorm, last: null, ran: false };
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

/** The rows for the update and the items that must precede its launches in its submission. */
export interface Reduced {
  readonly rows: Record<string, number>[];
  readonly items: Item[];
}

/**
 * Every level over groups [g0, g1): the rows with each reduction's value added (`$red<i>`: a
 * tensor's own value, or the global one in every row), the passes already run; or, with a device
 * combine, the passes and combines as items to submit before the update, and the rows with
 * placeholders (the kernels read the values on the device). Tensors outside the range or without
 * a gradient count nothing (their masked partials are 0, or −∞ for a max).
 */
export function* reduceRows(
  s: ReductionHost,
  red: Reductions,
  rows: readonly Record<string, number>[],
  active: (t: TensorSlot) => boolean,
  range: readonly [number, number],
): Work<Reduced> {
  if (red.device) return onDevice(s, red, red.device, rows, range);
  return { rows: yield* onHost(s, red, rows, active, range), items: [] };
}

function onDevice(
  s: ReductionHost,
  red: Reductions,
  combine: Combine,
  rows: readonly Record<string, number>[],
  range: readonly [number, number],
): Reduced {
  // Placeholders for the table's `$red` columns, which these kernels never read: one object per
  // row object, so rows that share one still share it (uniformTable fills a shared row once).
  const placeholders = Object.fromEntries(red.phases.reductions.map((r) => [r.name, 0]));
  const withRed = new Map<object, Record<string, number>>();
  const cur = rows.map((r) => {
    let x = withRed.get(r);
    if (!x) withRed.set(r, (x = { ...r, ...placeholders }));
    return x;
  });
  const items: Item[] = [];
  red.passes.forEach((program, i) => {
    const launches = s.launches(program, uniformTable(program.prepared, cur), range, (c) => red.scratch.get(c)!);
    // A combine in the kernels needs nothing more: the next level's kernels add the blocks' sums.
    items.push(...(combine.inKernels ? launches : passOf(launches, i + 1, range)));
  });
  red.ran = true;
  return { rows: cur, items };
}

/**
 * A level's launches (a chunk's share each, in arena order) marked as its pass over the step's
 * groups, the last one as the one that ends with the combine (`Backend.combinesInLaunches`).
 */
export function passOf(launches: readonly Item[], level: number, groups: readonly [number, number]): Item[] {
  const last = launches.findLastIndex((it) => 'program' in it);
  return launches.map((it, j) =>
    'program' in it ? { program: it.program, launch: { ...it.launch, pass: { level, groups, last: j === last } } } : it,
  );
}

function* onHost(
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
  red.ran = true;
  return cur;
}

/**
 * The pre-clip global gradient norm of the last step, as the kernel computed it (f32 √ of the f32
 * sum); NaN before the first. With a device combine this reads its one value back (waiting for
 * the steps already submitted), which a step never does.
 */
export function* lastGradNorm(red: Reductions | null): Work<number> {
  if (!red || red.gradNorm < 0) throw new RangeError('gradNorm: this optimizer was created without clipGradNorm');
  if (!red.ran) return NaN;
  // A global reduction's value is in every row: row 0's. Where the kernels combine, no kernel
  // stores it: the blocks' sums come back and are added here in the kernels' order.
  const d = red.device;
  const squared = !d
    ? red.last![red.gradNorm]!
    : d.inKernels
      ? d.inKernels.value(
          (yield read(d.values, 0, d.inKernels.count * d.reductions.length)) as Float32Array,
          red.gradNorm,
          0,
        )
      : ((yield read(d.values, red.gradNorm, 1)) as Float32Array)[0]!;
  return Math.fround(Math.sqrt(squared));
}
