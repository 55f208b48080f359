// The device-side combine of reduction partials for gpu.js in webgpu mode (Backend.combiner;
// runtime/reductions.ts): its arrays stay on the GPU, so the partials are combined there by two
// gpu.js kernels a level, and the results stay in `values` (rows × reductions), which the next
// level's pass and the update read (compiler/render/gpujs/render.ts REDUCTIONS_ARRAY).
//
// The order of additions is a workgroup's (test/device-oracle.ts follows it; the blocks are
// blocks.ts's), as WebGPU's combine was before its kernels combined themselves. gpu.js has no
// workgroup memory, so one thread does what a workgroup would: it computes the 256 lanes' values
// in turn and adds them in the workgroup's tree, t with t + s for s = 128 … 1. That
// tree is the pairwise sum of the lanes taken in bit-reversed order (its left half holds the even
// lanes, and so on down), which a stack of 8 partial sums adds as the lanes arrive.
//
//   blocks: a thread per block and reduction of the level: lane t adds the block's groups
//           t, t + 256, … in order from +0 (−∞ for a max), groups outside the item's range
//           counting nothing; then the lanes' tree.
//   rows:   a thread per row and reduction (every reduction: the other levels' values are kept):
//           a tensor-scope value adds its row's blocks in order; a global one is the tree of 256
//           lanes, lane t adding rows t, t + 256, … in order, each row its blocks in order (every
//           row's thread computes it, rows × rows blocks of work: nothing is shared between threads).

import type { ReduceFn } from '../../../compiler/ir/ir.ts';
import type { Combine, CombinedReduction, CombinePlan, DeviceBuffer } from '../backend.ts';
import { BackendError } from '../backend.ts';
import { COMBINE_THREADS, combineBlocks } from './blocks.ts';
import type { GpujsKernel, Part } from './device.ts';
import { isDeviceArray } from './device.ts';

/** What the combine needs of a gpu.js buffer (gpujs.ts GpujsBuffer is one): its f32 array. */
export interface GpujsArrays extends DeviceBuffer {
  parts: Part[];
}

const W = COMBINE_THREADS;
/** log2 of the lanes: the depth of the lanes' tree. */
const DEPTH = Math.log2(W);
/** Groups a lane adds at most: combineBlocks' largest block (16384 groups) over 256 lanes. */
const BLOCK_LANE_STEPS = 64;
/** gpu.js has no binding limit: blocks as large as WebGPU's largest (what test/device-oracle.ts assumes). */
export const GPUJS_COMBINE_LIMITS = { maxBindingBytes: Infinity, alignBytes: 0 } as const;

/** What the backend lends the combine. */
export interface GpujsCombineHost<B extends GpujsArrays> {
  /** The backend (its submit refuses another's combine). */
  readonly owner: object;
  alloc(storage: 'f32', length: number): B;
  free(buf: B): void;
  /** A new gpu.js kernel with `length` outputs. */
  kernel(source: string, length: number): GpujsKernel;
  /** `buf`'s array on the device (uploaded if it is still a host array). */
  onDevice(buf: B): Promise<Part>;
  /** Count one kernel call. */
  called(): void;
}

// a ⊕ b with `a` the left operand, as the WGSL adds W[t] + W[t + s]; a max is fmax
// (compiler/ir/semantics.ts: a NaN operand is ignored), with the renderer's NaN test.
const op = (fn: ReduceFn, a: string, b: string) =>
  fn === 'sum' ? `${a} + ${b}` : `(!(${a} < 1 || ${a} >= 1) || ${b} > ${a}) ? ${b} : ${a}`;
// +0 and −∞ come from the params array (P[2], P[3]), where no shader compiler folds them.
const empty = (fn: ReduceFn) => (fn === 'sum' ? 'P[2]' : 'P[3]');

/** Variable names of branch z. */
const suffixed = <N extends string[]>(z: number, ...names: N): { [K in keyof N]: string } =>
  names.map((a) => `${a}_${z}`) as { [K in keyof N]: string };

/**
 * Statements that add `lane` (statements computing `v_<z>` from the lane index `t_<z>`) over the
 * 256 lanes in the tree's order into `out`: the lanes in bit-reversed order p, a stack s0…s7 of
 * the subtrees finished so far. Every name ends in `_<z>`, so branches never share one.
 */
function tree(fn: ReduceFn, out: string, lane: string[], z: number): string[] {
  const [p, t, q, h, kb, x, v] = suffixed(z, 'p', 't', 'q', 'h', 'kb', 'x', 'v');
  const lines = [`let ${out} = ${empty(fn)};`];
  for (let j = 0; j < DEPTH; j++) lines.push(`let s${j}_${z} = ${empty(fn)};`);
  lines.push(`for (let ${p} = 0; ${p} < ${W}; ${p}++) {`, `  let ${t} = 0;`, `  let ${q} = ${p};`);
  lines.push(`  for (let ${kb} = 0; ${kb} < ${DEPTH}; ${kb}++) {`, `    let ${h} = Math.floor(${q} / 2);`);
  lines.push(`    ${t} = ${t} * 2 + (${q} - ${h} * 2);`, `    ${q} = ${h};`, '  }');
  lines.push(...lane.map((l) => '  ' + l), `  let ${x} = ${v};`);
  // Carry: bit j of p set means subtree s_j (left) is complete beside x (right).
  let carry = `${out} = ${x};`;
  for (let j = DEPTH - 1; j >= 0; j--) {
    const bit = `Math.floor(${p} / ${2 ** j}) - Math.floor(${p} / ${2 ** (j + 1)}) * 2`;
    carry = `if (${bit} < 0.5) { s${j}_${z} = ${x}; } else { ${x} = ${op(fn, `s${j}_${z}`, x)}; ${carry} }`;
  }
  lines.push('  ' + carry, '}');
  return lines;
}

/** The combine of one optimizer's reductions on gpu.js's device arrays. */
export class GpujsCombine<B extends GpujsArrays> implements Combine<B> {
  readonly values: B;
  readonly reductions: readonly CombinedReduction[];
  readonly owned: B[];
  /** [first group, group count] per block, and [first block, end block] per row. */
  private readonly blocks: Float32Array;
  private readonly rowBlocks: Float32Array;
  private readonly nBlocks: number;
  /** The most blocks a row has: the rows kernel's loop bound. */
  private readonly rowMax: number;

  constructor(
    readonly host: GpujsCombineHost<B>,
    private readonly plan: CombinePlan<B>,
  ) {
    this.reductions = plan.reductions;
    const b = combineBlocks(plan.tensors, plan.rows, GPUJS_COMBINE_LIMITS.maxBindingBytes, 0);
    this.blocks = Float32Array.from(b.blocks);
    this.rowBlocks = Float32Array.from(b.rowBlocks);
    this.nBlocks = b.blocks.length / 2;
    let most = 0;
    for (let r = 0; r < plan.rows; r++) most = Math.max(most, b.rowBlocks[2 * r + 1]! - b.rowBlocks[2 * r]!);
    this.rowMax = most;
    if (b.blocks.some((n, i) => i % 2 === 1 && n > BLOCK_LANE_STEPS * W))
      throw new BackendError('gpujs.combiner: a block larger than the combine loops over');
    this.values = host.alloc('f32', Math.max(1, plan.rows * plan.reductions.length));
    this.owned = [this.values];
  }

  /** Per level: its reductions and its two kernels, made on first use. */
  private readonly levels = new Map<number, { cols: number[]; blocks: GpujsKernel; rows: GpujsKernel }>();

  private level(level: number): { cols: number[]; blocks: GpujsKernel; rows: GpujsKernel } {
    let l = this.levels.get(level);
    if (!l) {
      const cols = this.reductions.flatMap((r, i) => (r.level === level ? [i] : []));
      if (cols.length === 0) throw new BackendError(`gpujs: no reduction at level ${level}`);
      const h = this.host;
      const blocks = h.kernel(this.blocksSource(cols), Math.max(1, this.nBlocks * cols.length));
      this.levels.set(level, (l = { cols, blocks, rows: h.kernel(this.rowsSource(cols), this.values.length) }));
    }
    return l;
  }

  /** The blocks kernel of a level: a thread per block and reduction, arguments (BT, P, X0, X1, …). */
  private blocksSource(cols: readonly number[]): string {
    const n = cols.length;
    const body = ['let x0 = this.thread.x;', `let b = Math.floor(x0 / ${n});`, `let c = x0 - b * ${n};`];
    body.push('let g0 = BT[2 * b];', 'let n = BT[2 * b + 1];');
    cols.forEach((ci, j) => {
      const fn = this.reductions[ci]!.fn;
      const [v, m, k, g] = suffixed(j, 'v', 'm', 'k', 'g');
      const lane = [
        `let ${v} = ${empty(fn)};`,
        `for (let ${m} = 0; ${m} < ${BLOCK_LANE_STEPS}; ${m}++) {`,
        `  let ${k} = t_${j} + ${m} * ${W};`,
        `  let ${g} = g0 + ${k};`,
        `  if (${k} < n && ${g} >= P[0] && ${g} < P[1]) { ${v} = ${op(fn, v, `X${j}[${g}]`)}; }`,
        '}',
      ];
      const sum = `sum_${j}`;
      body.push(
        `if (c > ${j - 0.5} && c < ${j + 0.5}) {`,
        ...tree(fn, sum, lane, j).map((l) => '  ' + l),
        `  return ${sum};`,
        '}',
      );
    });
    body.push('return 0;');
    const params = ['BT', 'P', ...cols.map((_, j) => `X${j}`)].join(', ');
    return `function (${params}) {\n${body.map((l) => '  ' + l).join('\n')}\n}`;
  }

  /** The rows kernel of a level: a thread per row and reduction, arguments (RT, P, S, V). */
  private rowsSource(cols: readonly number[]): string {
    const R = this.reductions.length,
      n = cols.length,
      rows = this.plan.rows;
    const body = ['let x0 = this.thread.x;', `let r = Math.floor(x0 / ${R});`, `let c = x0 - r * ${R};`];
    // A row's value: its blocks in order (v, from the row index `row`).
    const rowValue = (fn: ReduceFn, j: number, row: string, into: string) => [
      `let ${into} = ${empty(fn)};`,
      `for (let m_${j} = 0; m_${j} < ${this.rowMax}; m_${j}++) {`,
      `  let bk_${j} = RT[2 * ${row}] + m_${j};`,
      `  if (bk_${j} < RT[2 * ${row} + 1]) { ${into} = ${op(fn, into, `S[bk_${j} * ${n} + ${j}]`)}; }`,
      '}',
    ];
    cols.forEach((ci, j) => {
      const { fn, scope } = this.reductions[ci]!;
      body.push(`if (c > ${ci - 0.5} && c < ${ci + 0.5}) {`);
      if (scope === 'tensor') body.push(...rowValue(fn, j, 'r', `v_${j}`).map((l) => '  ' + l), `  return v_${j};`);
      else {
        const [v, w, row, rv] = suffixed(j, 'v', 'w', 'row', 'rv');
        const lane = [
          `let ${v} = ${empty(fn)};`,
          `for (let ${w} = 0; ${w} < ${Math.ceil(rows / W)}; ${w}++) {`,
          `  let ${row} = t_${j} + ${w} * ${W};`,
          `  if (${row} < ${rows}) {`,
          ...rowValue(fn, j, row, rv).map((l) => '    ' + l),
          `    ${v} = ${op(fn, v, rv)};`,
          '  }',
          '}',
        ];
        body.push(...tree(fn, `all_${j}`, lane, j).map((l) => '  ' + l), `  return all_${j};`);
      }
      body.push('}');
    });
    body.push('return V[x0];');
    return `function (RT, P, S, V) {\n${body.map((l) => '  ' + l).join('\n')}\n}`;
  }

  /** Level `level` over arena groups [g0, g1): two kernel calls, `values` replaced by the rows kernel's output. */
  async run(level: number, [g0, g1]: readonly [number, number]): Promise<void> {
    const { cols, blocks, rows } = this.level(level);
    const h = this.host;
    const P = Float32Array.of(g0, g1, 0, -Infinity);
    const X = await Promise.all(cols.map((c) => h.onDevice(this.plan.partials[c]!)));
    h.called();
    const sums = await blocks.run([this.blocks.length ? this.blocks : new Float32Array(2), P, ...X]);
    try {
      const old = await h.onDevice(this.values);
      h.called();
      const fresh = await rows.run([this.rowBlocks.length ? this.rowBlocks : new Float32Array(2), P, sums, old]);
      if (old !== fresh && isDeviceArray(old)) old.delete();
      this.values.parts[0] = fresh;
    } finally {
      if (isDeviceArray(sums)) sums.delete();
    }
  }

  free(): void {
    for (const b of this.owned) this.host.free(b);
    this.owned.length = 0;
  }
}
