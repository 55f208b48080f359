// The oracle of a backend that combines reductions on the device: the IR's semantics as the oracle
// backend (test/oracle.ts) computes them, but every sum in the order that backend adds it. A
// groupSum over the lanes its renderer splits a group into (compiler/ir/interpret.ts `sumLanes`),
// then the combine, written here again from its description:
// - WebGPU combines in its kernels (runtime/backends/webgpu/blocks.ts): over the same blocks, a
//   block's groups strided over S = 256/T slots and the slots added pairwise; a value's blocks
//   strided over 256 lanes (those outside the step's groups left out) and the lanes pairwise;
// - gpu.js in webgpu mode combines in its passes' launches (runtime/backends/gpujs/combine.ts): the
//   blocks of gpujs/blocks.ts, each block's groups strided over 256 lanes and the lanes added
//   pairwise, each row's blocks in order, the rows strided over 256 lanes and added pairwise for
//   a global one. Here each launch of a pass stores its groups' partials, and the level's last
//   launch adds them in that order (gpu.js adds as its lanes go, carrying them across chunks).
// A backend that combines on the device must store exactly what this stores
// (test/conformance-optimizers.test.ts); the JS engines' order (runtime/reductions.ts) differs in
// the last bits of each reduction.

import type { FieldArray, Kernel } from '../compiler/ir/kernel.ts';
import { interpret } from '../compiler/ir/interpret.ts';
import type { Uniforms } from '../compiler/ir/pipeline.ts';
import { prepare } from '../compiler/ir/pipeline.ts';
import { REDUCTION_PREFIX } from '../compiler/ir/phases.ts';
import { fmax } from '../compiler/ir/semantics.ts';
import { threadShape } from '../compiler/render/wgsl/layout.ts';
import type { Combine, CombinedReduction, CombinePlan, Item, Launch, Program } from '../runtime/backends/backend.ts';
import { BackendError } from '../runtime/backends/backend.ts';
import type { Blocks } from '../runtime/backends/gpujs/blocks.ts';
import { COMBINE_THREADS, combineBlocks } from '../runtime/backends/gpujs/blocks.ts';
import type { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import { GPUJS_COMBINE_LIMITS } from '../runtime/backends/gpujs/combine.ts';
import type { OracleBlocks } from './block-oracle.ts';
import { addBlocks, oracleBlocks } from './block-oracle.ts';
import type { OracleBuffer } from './oracle.ts';
import { OracleBackend } from './oracle.ts';

export interface DeviceOrder {
  /** Threads the backend's renderer splits a group's sum over. */
  sumLanes(k: Kernel): number;
  /** The kernels combine (WebGPU): blocked kernels of at most this many groups, no partials, no combine items. */
  readonly inKernels?: { readonly blockGroups: number | undefined };
  /** The passes' launches combine (gpu.js in webgpu mode): the level's last launch ends with the combine. */
  readonly inLaunches?: boolean;

  /** What the combine's blocks depend on (the backend's binding size and offset alignment). */
  readonly maxBindingBytes: number;
  readonly alignBytes: number;
}

/** The order a WebGPU backend adds in (its subgroups and limits). */
export const webgpuOrder = (b: WebGpuBackend): DeviceOrder => ({
  sumLanes: (k) => threadShape(k, { subgroupMinSize: b.subgroupMinSize }).threadsPerGroup,
  inKernels: { blockGroups: b.blockGroups },
  maxBindingBytes: b.limits.maxBindingBytes,
  alignBytes: b.device.limits.minStorageBufferOffsetAlignment,
});

/**
 * The order gpu.js adds in, in webgpu mode: a group's elements in element order (one lane), and
 * the combine in WebGPU's order (runtime/backends/gpujs/combine.ts) with blocks of the largest size,
 * gpu.js having no binding limit.
 */
export const gpujsOrder: DeviceOrder = { sumLanes: () => 1, inLaunches: true, ...GPUJS_COMBINE_LIMITS };

interface OracleCombine extends Combine<OracleBuffer> {
  readonly plan: CombinePlan<OracleBuffer>;
  readonly layout: Blocks;
  /** Per block, per reduction (blocks × reductions). */
  readonly sums: Float32Array;
  /** Per reduction, each arena group's partial, as the step's pass launches computed them. */
  readonly partials: readonly Float32Array[];
}

const add = (fn: CombinedReduction['fn']) => (fn === 'sum' ? (a: number, b: number) => Math.fround(a + b) : fmax);
const empty = (fn: CombinedReduction['fn']) => (fn === 'sum' ? 0 : -Infinity);

/** The 256 threads' values added pairwise: t with t + s, s = 128, …, 1. */
function pairwise(xs: number[], op: (a: number, b: number) => number): number {
  for (let s = COMBINE_THREADS / 2; s > 0; s >>= 1) for (let t = 0; t < s; t++) xs[t] = op(xs[t]!, xs[t + s]!);
  return xs[0]!;
}

export class DeviceOrderOracle extends OracleBackend {
  override readonly name = 'oracle (semantics.ts, device order)';
  override readonly hostMemory = false;

  readonly combinesInKernels: boolean;
  readonly combinesInLaunches: boolean;

  constructor(private readonly order: DeviceOrder) {
    super();
    this.combinesInKernels = order.inKernels !== undefined;
    this.combinesInLaunches = order.inLaunches === true;
  }

  override async compile(kernel: Kernel): Promise<Program> {
    // As a device-combining backend prepares: what reads a reduction stays in the kernel.
    const prepared = prepare(kernel, { reductionsOnDevice: true });
    return { prepared, source: `// kernel ${kernel.name}: interpreted, device order` };
  }

  override async run(p: Program, l: Launch<OracleBuffer>): Promise<number[]> {
    if (this.combinesInKernels && l.reductions) return this.blocked(p, l, l.reductions as OracleBlocks);
    this.launches++;
    const cols = p.prepared.columns,
      S = cols.length;
    const values = l.reductions ? this.own(l.reductions.values, 'reductions').data : null;
    const R = l.reductions?.reductions.length ?? 0;
    const rows: Uniforms[] = [];
    for (let r = 0; r * Math.max(S, 1) < Math.max(l.uniforms.length, 1); r++)
      rows.push(
        Object.fromEntries(
          cols.map((c, j) => {
            // A reduction's result comes from the combine, as the device's kernels read it.
            if (!c.startsWith(REDUCTION_PREFIX)) return [c, l.uniforms[r * S + j]!];
            if (!values)
              throw new BackendError(`oracle: kernel ${p.prepared.kernel.name} reads ${c} without reductions`);
            return [c, values[r * R + Number(c.slice(REDUCTION_PREFIX.length))]!];
          }),
        ),
      );
    const fields: Record<string, FieldArray> = Object.fromEntries(
      Object.entries(l.bindings).map(([f, b]) => [f, this.own(b, `field ${f}`).data]),
    );
    if (!l.pass) return this.interpreted(p, l, rows, fields, l.rowOf ? this.own(l.rowOf, 'rowOf').data : null);
    // A pass's launch where the launches combine: its partials into the combine's, at their arena
    // groups; the level's last launch combines them over the step's groups.
    if (!this.combinesInLaunches) throw new BackendError('oracle: a pass launch (Launch.pass) here');
    const c = l.reductions as OracleCombine,
      origin = l.origin ?? 0;
    const n = Math.ceil(l.length / p.prepared.kernel.groupSize);
    const outs = p.prepared.kernel.outputs.filter((o) => o.field.startsWith(REDUCTION_PREFIX));
    for (const o of outs) fields[o.field] = new Float32Array(n);
    const counts = this.interpreted(p, l, rows, fields, l.rowOf ? this.own(l.rowOf, 'rowOf').data : null);
    for (const o of outs) {
      const to = c.partials[Number(o.field.slice(REDUCTION_PREFIX.length))]!;
      for (let g = l.groups[0]; g < l.groups[1]; g++) to[origin + g] = fields[o.field]![g]!;
    }
    if (l.pass.last) this.combine(c, l.pass.level, l.pass.groups);
    return counts;
  }

  /** The kernel run by `interpret` in this order, its counts added into the launch's counters. */
  private interpreted(
    p: Program,
    l: Launch<OracleBuffer>,
    uniforms: Uniforms[],
    fields: Record<string, FieldArray>,
    rowOf: FieldArray | null,
  ): number[] {
    const counts = interpret(p.prepared.kernel, {
      fields,
      uniforms,
      rowOf,
      groups: l.groups,
      length: l.length,
      sumLanes: this.order.sumLanes(p.prepared.kernel),
    });
    if (!l.counters) return counts;
    const c = this.own(l.counters, 'counters').data;
    counts.forEach((n, i) => (c[i] = (c[i]! + n) >>> 0));
    return [];
  }

  /**
   * A blocked kernel (WebGPU's, compiler/render/wgsl/blocked.ts): its reduction columns from the
   * blocks' sums, one uniform row per tensor row; a pass's partials into its blocks' sums.
   */
  private blocked(p: Program, l: Launch<OracleBuffer>, c: OracleBlocks): number[] {
    this.launches++;
    const k = p.prepared.kernel,
      cols = p.prepared.columns,
      S = cols.length;
    const [g0, g1] = l.groups,
      origin = l.origin ?? 0;
    const red = (name: string) =>
      name.startsWith(REDUCTION_PREFIX) ? Number(name.slice(REDUCTION_PREFIX.length)) : -1;
    const given = l.rowOf ? this.own(l.rowOf, 'rowOf').data : null;
    // Each group's tensor row, from the blocks (a blocked kernel reads its block's row).
    const n = Math.ceil(l.length / k.groupSize);
    const rowOf = new Uint32Array(n);
    const B = c.layout.blocks;
    for (let b = 0; b < B.length / 4; b++)
      for (let g = B[4 * b]!; g < B[4 * b]! + B[4 * b + 1]!; g++)
        if (g - origin >= 0 && g - origin < n) rowOf[g - origin] = B[4 * b + 2]!;
    const rows: Uniforms[] = Array.from({ length: c.layout.rowBlocks.length / 2 }, (_, r) => {
      const at = given ? r : 0;
      return Object.fromEntries(
        cols.map((name, j) =>
          red(name) >= 0 ? [name, c.inKernels!.value(c.sums, red(name), r)] : [name, l.uniforms[at * S + j]!],
        ),
      );
    });
    const fields: Record<string, FieldArray> = Object.fromEntries(
      Object.entries(l.bindings).map(([f, b]) => [f, this.own(b, `field ${f}`).data]),
    );
    const outs = k.outputs.filter((o) => red(o.field) >= 0);
    for (const o of outs) fields[o.field] = new Float32Array(n);
    const counts = this.interpreted(p, l, rows, fields, rowOf);
    const slots = 256 / this.order.sumLanes(k);
    for (const o of outs)
      addBlocks(c, red(o.field), fields[o.field] as Float32Array, origin, [origin + g0, origin + g1], slots);
    return counts;
  }

  combiner(plan: CombinePlan<OracleBuffer>): OracleCombine | OracleBlocks {
    if (this.order.inKernels) return oracleBlocks(plan, (n) => this.alloc('f32', n), this.order.inKernels.blockGroups);
    const R = plan.reductions.length;
    const layout = combineBlocks(plan.tensors, plan.rows, this.order.maxBindingBytes, this.order.alignBytes);
    const values = this.alloc('f32', plan.rows * R);
    const groups = Math.max(0, ...plan.tensors.map((t) => t.groups[1]));
    return {
      values,
      owned: [values],
      reductions: plan.reductions,
      plan,
      layout,
      sums: new Float32Array((layout.blocks.length / 2) * R),
      partials: plan.reductions.map(() => new Float32Array(groups)),
      free() {},
    };
  }

  async submit(items: readonly Item<OracleBuffer, Program>[]): Promise<void> {
    for (const it of items) {
      if ('combine' in it) throw new BackendError('oracle: a combine item (the kernels or the launches combine)');
      else if ('copy' in it) {
        const { from, fromAt, to, toAt } = it.copy;
        this.own(to, 'copy target').data.set(
          this.own(from, 'copy source').data.subarray(fromAt, fromAt + it.length) as never,
          toAt,
        );
      } else await this.run(it.program, it.launch);
    }
  }

  /** gpu.js's combine (runtime/backends/gpujs/combine.ts): a block's lanes, then the rows, one thread at a time. */
  private combine(c: OracleCombine, level: number, [g0, g1]: readonly [number, number]): void {
    const { blocks, rowBlocks } = c.layout,
      R = c.reductions.length,
      W = COMBINE_THREADS;
    const V = this.own(c.values, 'reductions').data;
    c.reductions.forEach((r, i) => {
      if (r.level !== level) return;
      const op = add(r.fn),
        none = empty(r.fn);
      const X = c.partials[i]!;
      for (let b = 0; b < blocks.length / 2; b++) {
        const first = blocks[2 * b]!,
          n = blocks[2 * b + 1]!;
        const t = Array.from({ length: W }, (_, k) => {
          let v = none;
          for (let j = k; j < n; j += W) if (first + j >= g0 && first + j < g1) v = op(v, X[first + j]!);
          return v;
        });
        c.sums[b * R + i] = pairwise(t, op);
      }
      const acc = new Array<number>(W).fill(none);
      for (let row = 0; row < c.plan.rows; row++) {
        let v = none;
        for (let b = rowBlocks[2 * row]!; b < rowBlocks[2 * row + 1]!; b++) v = op(v, c.sums[b * R + i]!);
        if (r.scope === 'tensor') V[row * R + i] = v;
        else acc[row % W] = op(acc[row % W]!, v);
      }
      if (r.scope === 'global') {
        const all = pairwise(acc, op);
        for (let row = 0; row < c.plan.rows; row++) V[row * R + i] = all;
      }
    });
  }
}
