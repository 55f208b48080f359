// The oracle of a backend that combines reductions on the device: the IR's semantics as the oracle
// backend (test/oracle.ts) computes them, but every sum in the order that backend adds it. A
// groupSum over the lanes its renderer splits a group into (compiler/ir/interpret.ts `sumLanes`),
// then the combine, written here again from its description:
// - WebGPU combines in its kernels (runtime/backends/webgpu/blocks.ts): over the same blocks, a
//   block's groups strided over S = 256/T slots and the slots added pairwise; a value's blocks
//   strided over 256 lanes (those outside the step's groups left out) and the lanes pairwise;
// - gpu.js in webgpu mode combines in two kernels a level (runtime/backends/gpujs/combine.ts): the
//   blocks of gpujs/blocks.ts, each block's groups strided over 256 threads and the threads added
//   pairwise, each row's blocks in order, the rows strided over 256 threads and added pairwise for
//   a global one.
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
export const gpujsOrder: DeviceOrder = { sumLanes: () => 1, ...GPUJS_COMBINE_LIMITS };

interface OracleCombine extends Combine<OracleBuffer> {
  readonly plan: CombinePlan<OracleBuffer>;
  readonly layout: Blocks;
  /** Per block, per reduction (blocks × reductions). */
  readonly sums: Float32Array;
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

  constructor(private readonly order: DeviceOrder) {
    super();
    this.combinesInKernels = order.inKernels !== undefined;
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
    return this.interpreted(
      p,
      l,
      rows,
      Object.fromEntries(Object.entries(l.bindings).map(([f, b]) => [f, this.own(b, `field ${f}`).data])),
      l.rowOf ? this.own(l.rowOf, 'rowOf').data : null,
    );
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
    return {
      values,
      owned: [values],
      reductions: plan.reductions,
      plan,
      layout,
      sums: new Float32Array((layout.blocks.length / 2) * R),
      free() {},
    };
  }

  async submit(items: readonly Item<OracleBuffer, Program>[]): Promise<void> {
    for (const it of items) {
      if ('combine' in it) {
        if (this.combinesInKernels) throw new BackendError('oracle: a combine item where the kernels combine');
        this.combine(it.combine as OracleCombine, it.level, it.groups);
      } else if ('copy' in it) {
        const { from, fromAt, to, toAt } = it.copy;
        this.own(to, 'copy target').data.set(
          this.own(from, 'copy source').data.subarray(fromAt, fromAt + it.length) as never,
          toAt,
        );
      } else await this.run(it.program, it.launch);
    }
  }

  /** combine.ts's blocks and rows dispatches, one thread at a time. */
  private combine(c: OracleCombine, level: number, [g0, g1]: readonly [number, number]): void {
    const { blocks, rowBlocks } = c.layout,
      R = c.reductions.length,
      W = COMBINE_THREADS;
    const V = this.own(c.values, 'reductions').data;
    c.reductions.forEach((r, i) => {
      if (r.level !== level) return;
      const op = add(r.fn),
        none = empty(r.fn);
      const X = this.own(c.plan.partials[i], 'partials').data;
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

/**
 * A combine fixture of 300 rows (some empty) with one tensor of `bigGroups` groups at row 5, and
 * four reductions over two levels (tensor and global, sum and max): the layout both device
 * combines' tests check against this oracle.
 */
export function combineFixture(bigGroups: number): {
  readonly tensors: readonly { readonly row: number; readonly groups: readonly [number, number] }[];
  readonly groups: number;
  readonly reductions: readonly CombinedReduction[];
} {
  const sizes = Array.from({ length: 300 }, (_, i) => ((i * 37) % 11 === 0 ? 0 : (i * 7919) % 61));
  sizes[5] = bigGroups;
  let g0 = 0;
  const tensors = sizes.map((n, row) => {
    const groups = [g0, g0 + n] as const;
    g0 += n;
    return { row, groups };
  });
  const reductions: CombinedReduction[] = [
    { fn: 'sum', scope: 'tensor', level: 1 },
    { fn: 'max', scope: 'global', level: 1 },
    { fn: 'sum', scope: 'global', level: 1 },
    { fn: 'max', scope: 'tensor', level: 2 },
  ];
  return { tensors, groups: g0, reductions };
}

/** Each array of `data` written into a new f32 buffer of `on` (a combine's partials). */
export const uploadPartials = <B extends { readonly length: number }>(
  on: { alloc(s: 'f32', n: number): B; write(x: B, d: Float32Array): Promise<void> },
  data: readonly Float32Array[],
): Promise<B[]> =>
  Promise.all(
    data.map(async (x) => {
      const buf = on.alloc('f32', x.length);
      await on.write(buf, x);
      return buf;
    }),
  );
