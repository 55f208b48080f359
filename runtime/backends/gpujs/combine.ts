// The device-side combine of a step's reductions for gpu.js in webgpu mode (Backend.combiner,
// combinesInLaunches; runtime/reductions.ts): its arrays stay on the GPU, so the reductions are
// combined there, inside each level's pass launch, and the results stay in `values`
// (rows × reductions), which the next level's pass and the update read
// (compiler/render/gpujs/render.ts REDUCTIONS_ARRAY). No per-group partial is ever stored.
//
// The order of additions is a workgroup's (test/device-oracle.ts follows it; the blocks are
// blocks.ts's), as WebGPU's combine was before its kernels combined themselves. gpu.js has no
// workgroup memory, so one thread does what a workgroup would: it computes the 256 lanes' values
// in turn and adds them in the workgroup's tree, t with t + s for s = 128 … 1. That
// tree is the pairwise sum of the lanes taken in bit-reversed order (its left half holds the even
// lanes, and so on down), which a stack of 8 partial sums adds as the lanes arrive.
//
//   lanes: the pass itself (compiler/render/gpujs/pass.ts, a lane pass per reduction): a thread
//          per block and lane t, adding the block's groups t, t + 256, … in order from +0 (−∞ for a
//          max), each group's sum computed from its elements in element order, groups outside the
//          step counting nothing; a block cut by a chunk carries its lanes to the next chunk's
//          launch, so the lanes never depend on chunking. They live in `lanes` (blocks × 256 per
//          reduction), here.
//   rows:  at the end of the level's last launch (`run`), a thread per row and reduction (every
//          reduction: the other levels' values are kept): a block's value is its 256 lanes' tree;
//          a tensor-scope value adds its row's blocks in order; a global one is the tree of 256
//          lanes, lane t adding rows t, t + 256, … in order, each row its blocks in order (every
//          row's thread computes it: nothing is shared between threads).

import type { ReduceFn } from '../../../compiler/ir/ir.ts';
import type { Combine, CombinedReduction, CombinePlan, DeviceBuffer } from '../backend.ts';
import { BackendError } from '../backend.ts';
import { COMBINE_THREADS, MAX_BLOCK, combineBlocks } from './blocks.ts';
import type { GpujsKernel, Part } from './device.ts';
import { isDeviceArray } from './device.ts';

/** What the combine needs of a gpu.js buffer (gpujs.ts GpujsBuffer is one): its f32 array. */
export interface GpujsArrays extends DeviceBuffer {
  parts: Part[];
}

const W = COMBINE_THREADS;
/** log2 of the lanes: the depth of the lanes' tree. */
const DEPTH = Math.log2(W);
/** gpu.js has no binding limit: blocks as large as WebGPU's largest (what test/device-oracle.ts assumes). */
export const GPUJS_COMBINE_LIMITS = { maxBindingBytes: Infinity, alignBytes: 0 } as const;

/** What the backend lends the combine. */
export interface GpujsCombineHost<B extends GpujsArrays> {
  /** The backend (its launches refuse another's combine). */
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
// +0 and −∞ come from the params array (P[0], P[1]), where no shader compiler folds them.
const empty = (fn: ReduceFn) => (fn === 'sum' ? 'P[0]' : 'P[1]');

/** Variable names of branch z. */
const suffixed = <N extends string[]>(z: string, ...names: N): { [K in keyof N]: string } =>
  names.map((a) => `${a}_${z}`) as { [K in keyof N]: string };

/**
 * Statements that add `lane` (statements computing `v_<z>` from the lane index `t_<z>`) over the
 * 256 lanes in the tree's order into `out`: the lanes in bit-reversed order p, a stack s0…s7 of
 * the subtrees finished so far. Every name ends in `_<z>`, so branches (and trees nested in a
 * lane) never share one.
 */
function tree(fn: ReduceFn, out: string, lane: string[], z: string): string[] {
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
  /** [first arena group, group count] per block: the lane passes' BLOCKS_ARRAY. */
  readonly blocks: B;
  /** [first block, end block] per row. */
  private readonly rowBlocks: B;
  /** Per reduction, its lanes (blocks × 256), which its lane passes replace launch by launch. */
  readonly lanes: readonly B[];
  /** Lanes of one reduction: blocks × 256, a lane pass's output length. */
  readonly laneCount: number;
  /** The most blocks a row has: the rows kernel's loop bound. */
  private readonly rowMax: number;

  constructor(
    readonly host: GpujsCombineHost<B>,
    private readonly plan: CombinePlan<B>,
  ) {
    if (plan.partials.length)
      throw new BackendError('gpujs.combiner: the passes combine in their launches, so a plan has no partials buffers');
    this.reductions = plan.reductions;
    const b = combineBlocks(plan.tensors, plan.rows, GPUJS_COMBINE_LIMITS.maxBindingBytes, 0);
    const nBlocks = b.blocks.length / 2;
    let most = 0;
    for (let r = 0; r < plan.rows; r++) most = Math.max(most, b.rowBlocks[2 * r + 1]! - b.rowBlocks[2 * r]!);
    this.rowMax = most;
    if (b.blocks.some((n, i) => i % 2 === 1 && n > MAX_BLOCK))
      throw new BackendError('gpujs.combiner: a block larger than a lane pass loops over');
    const table = (xs: Uint32Array) => {
      const t = host.alloc('f32', Math.max(2, xs.length));
      (t.parts[0] as Float32Array).set(xs); // a new buffer's array is on the host until its first upload
      return t;
    };
    this.blocks = table(b.blocks);
    this.rowBlocks = table(b.rowBlocks);
    this.laneCount = nBlocks * W;
    this.lanes = plan.reductions.map(() => host.alloc('f32', Math.max(1, this.laneCount)));
    this.values = host.alloc('f32', Math.max(1, plan.rows * plan.reductions.length));
    this.owned = [this.values, this.blocks, this.rowBlocks, ...this.lanes];
  }

  /** Reduction i's lanes, replaced by a lane pass's output (the old array is freed). */
  setLanes(i: number, fresh: Part): void {
    const old = this.lanes[i]!.parts[0]!;
    if (old !== fresh && isDeviceArray(old)) old.delete();
    this.lanes[i]!.parts[0] = fresh;
  }

  /** Per level: its reductions and its rows kernel, made on first use. */
  private readonly levels = new Map<number, { cols: number[]; rows: GpujsKernel }>();

  private level(level: number): { cols: number[]; rows: GpujsKernel } {
    let l = this.levels.get(level);
    if (!l) {
      const cols = this.reductions.flatMap((r, i) => (r.level === level ? [i] : []));
      if (cols.length === 0) throw new BackendError(`gpujs: no reduction at level ${level}`);
      this.levels.set(level, (l = { cols, rows: this.host.kernel(this.rowsSource(cols), this.values.length) }));
    }
    return l;
  }

  /** The rows kernel of a level: a thread per row and reduction, arguments (RT, P, L0, L1, …, V). */
  private rowsSource(cols: readonly number[]): string {
    const R = this.reductions.length,
      rows = this.plan.rows;
    const body = ['let x0 = this.thread.x;', `let r = Math.floor(x0 / ${R});`, `let c = x0 - r * ${R};`];
    // A row's value: its blocks in order, each block its lanes' tree (into `into`, from `row`).
    const rowValue = (fn: ReduceFn, j: number, row: string, into: string) => [
      `let ${into} = ${empty(fn)};`,
      `for (let m_${j} = 0; m_${j} < ${this.rowMax}; m_${j}++) {`,
      `  let bk_${j} = RT[2 * ${row}] + m_${j};`,
      `  if (bk_${j} < RT[2 * ${row} + 1]) {`,
      ...tree(fn, `bv_${j}`, [`let v_b${j} = L${j}[bk_${j} * ${W} + t_b${j}];`], `b${j}`).map((l) => '    ' + l),
      `    ${into} = ${op(fn, into, `bv_${j}`)};`,
      '  }',
      '}',
    ];
    cols.forEach((ci, j) => {
      const { fn, scope } = this.reductions[ci]!;
      body.push(`if (c > ${ci - 0.5} && c < ${ci + 0.5}) {`);
      if (scope === 'tensor') body.push(...rowValue(fn, j, 'r', `v_${j}`).map((l) => '  ' + l), `  return v_${j};`);
      else {
        const [v, w, row, rv] = suffixed(String(j), 'v', 'w', 'row', 'rv');
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
        body.push(...tree(fn, `all_${j}`, lane, String(j)).map((l) => '  ' + l), `  return all_${j};`);
      }
      body.push('}');
    });
    body.push('return V[x0];');
    const params = ['RT', 'P', ...cols.map((_, j) => `L${j}`), 'V'].join(', ');
    return `function (${params}) {\n${body.map((l) => '  ' + l).join('\n')}\n}`;
  }

  /**
   * The combine of level `level` from its reductions' lanes (at the end of the level's last pass
   * launch): one kernel call, `values` replaced by its output.
   */
  async run(level: number): Promise<void> {
    const { cols, rows } = this.level(level);
    const h = this.host;
    const L = await Promise.all(cols.map((c) => h.onDevice(this.lanes[c]!)));
    const old = await h.onDevice(this.values);
    h.called();
    const P = Float32Array.of(0, -Infinity);
    const fresh = await rows.run([await h.onDevice(this.rowBlocks), P, ...L, old]);
    if (old !== fresh && isDeviceArray(old)) old.delete();
    this.values.parts[0] = fresh;
  }

  free(): void {
    for (const b of this.owned) this.host.free(b);
    this.owned.length = 0;
  }
}
