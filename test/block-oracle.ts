// The combine of a backend whose kernels combine (WebGPU, runtime/backends/webgpu/blocks.ts), on
// the host, for test/device-oracle.ts: written again from blocks.ts's description of its orders,
// not from its code (only the block layout is shared, which is what the orders depend on).
//   a block's sum: slot k of S adds the block's groups k, k + S, … in order from +0 (−∞); then
//     the slots pairwise, k with k + s for s = S/2, …, 1;
//   a value: lane j of 256 adds its blocks j, j + 256, … of the value's range in order, then the
//     lanes pairwise.

import { fmax } from '../compiler/ir/semantics.ts';
import type { Combine, CombinedReduction, CombinePlan } from '../runtime/backends/backend.ts';
import type { BlockLayout } from '../runtime/backends/webgpu/blocks.ts';
import { blockGroupsFor, blockLayout } from '../runtime/backends/webgpu/blocks.ts';
import type { OracleBuffer } from './oracle.ts';

const op = (fn: CombinedReduction['fn']) => (fn === 'sum' ? (a: number, b: number) => Math.fround(a + b) : fmax);
const empty = (fn: CombinedReduction['fn']) => (fn === 'sum' ? 0 : -Infinity);

/** xs added pairwise, t with t + s for s = xs.length / 2, …, 1 (xs.length a power of two). */
function pairwise(xs: number[], f: (a: number, b: number) => number): number {
  for (let s = xs.length / 2; s >= 1; s >>= 1) for (let t = 0; t < s; t++) xs[t] = f(xs[t]!, xs[t + s]!);
  return xs[0]!;
}

export interface OracleBlocks extends Combine<OracleBuffer> {
  readonly layout: BlockLayout;
  /** The blocks' sums, blocks × reductions (what `values` holds). */
  readonly sums: Float32Array;
}

/** The combine the oracle lends a step: its blocks and their sums (`values`). */
export function oracleBlocks(
  plan: CombinePlan<OracleBuffer>,
  values: (n: number) => OracleBuffer,
  blockGroups: number | undefined,
): OracleBlocks {
  const groups = Math.max(0, ...plan.tensors.map((t) => t.groups[1]));
  const layout = blockLayout(plan.tensors, plan.rows, plan.cuts, blockGroups ?? blockGroupsFor(groups));
  const nb = layout.blocks.length / 4,
    R = plan.reductions.length;
  const buf = values(Math.max(1, nb * R));
  const sums = buf.data as Float32Array;
  const value = (xs: Float32Array, i: number, row: number) => blockValueOf(layout, xs, plan.reductions, i, row);
  return {
    values: buf,
    owned: [buf],
    reductions: plan.reductions,
    layout,
    sums,
    inKernels: { count: nb, value },
    free() {},
  };
}

/** Reduction i's value for `row`, as a blocked kernel's prologue computes it. */
export function blockValueOf(
  l: BlockLayout,
  sums: Float32Array,
  reductions: readonly CombinedReduction[],
  i: number,
  row: number,
): number {
  const r = reductions[i]!,
    R = reductions.length,
    B = l.blocks,
    f = op(r.fn);
  const mine = [] as number[];
  for (let b = 0; b < B.length / 4; b++) if (r.scope === 'global' || B[4 * b + 2] === row) mine.push(b);
  const lanes = new Array<number>(256).fill(empty(r.fn));
  mine.forEach((b, k) => (lanes[k % 256] = f(lanes[k % 256]!, sums[b * R + i]!)));

  return pairwise(lanes, f);
}

/**
 * The sums of the blocks in arena groups [a, z) of reduction i from its per-group partials
 * (`partial`, indexed from arena group `base`), in S = 256/T slots.
 */
export function addBlocks(
  c: OracleBlocks,
  i: number,
  partial: Float32Array,
  base: number,
  [a, z]: readonly [number, number],
  slots: number,
): void {
  const B = c.layout.blocks,
    R = c.reductions.length,
    fn = c.reductions[i]!.fn,
    f = op(fn);
  for (let b = 0; b < B.length / 4; b++) {
    const first = B[4 * b]!,
      n = B[4 * b + 1]!;
    if (first + n <= a || first >= z) continue;
    // The oracle runs the arena in one launch: its blocks are whole (the device's may come in pieces).
    if (first < a || first + n > z) throw new RangeError(`oracle: a launch over [${a}, ${z}) cuts block ${b}`);
    const acc = Array.from({ length: slots }, (_, k) => {
      let v = empty(fn);
      for (let g = k; g < n; g += slots) v = f(v, partial[first + g - base]!);
      return v;
    });
    c.sums[b * R + i] = pairwise(acc, f);
  }
}
