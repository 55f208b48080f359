// Where a step's reductions are combined on WebGPU: in the kernels themselves, so a step is one
// dispatch per reduction level plus the update, and no per-group partial is ever stored.
//
// Every kernel of a step with reductions runs over blocks (compiler/render/wgsl/blocked.ts): a
// workgroup per block of at most BLOCK_GROUPS consecutive groups of one tensor, counted from the
// tensor's first group, so blocks depend on the layout alone. A block larger than a chunk runs a
// piece per launch, in order, carrying its slots' sums from piece to piece in the slot store, so
// its sum is the same however the arena is chunked. The RED buffer (one u32 storage binding)
// holds, in words:
//
//   [0, 4·blocks)   per block: first arena group, group count, row, its place in the slot store
//                   (0xffffffff where no chunk begins inside it);
//   [rb, …)         per row and reduction: the blocks the value spans, [first, end): the row's
//                   own for a tensor-scope reduction, every block for a global one;
//   [fn, …)         per reduction: 0 for a sum, 1 for a max;
//   [sl, …)         the slot store: per block cut by a chunk, per reduction, 256 slots' f32 sums;
//   [bs, …)         per block and reduction: the block's f32 sum (max), written by its level's pass.
//
// Orders (fixed, so a step stores the same bits on every run; test/device-oracle.ts follows them):
//   a pass's block: each group's partial as the kernel's groupSum computes it; slot k of the
//     workgroup's S = 256/T slots adds groups k, k + S, … in order from +0 (−∞ for a max); then
//     the slots pairwise, k with k + s for s = S/2, …, 1;
//   a value: lane j of 256 adds its blocks j, j + 256, … of the value's range in order from +0
//     (−∞); then the lanes pairwise, s = 128, …, 1. (A step of one tensor, stepTensor, reads its
//     own blocks alone: a global reduction refuses it.)
// `blockValue` is that second order on the host, for gradNorm(), which reads the sums lazily.

import type { CombinedReduction, CombinePlan } from '../backend.ts';
import { fmax } from '../../../compiler/ir/semantics.ts';

/** Groups a block holds at least, by default: 16 tiles of a workgroup of 64 groups (4 threads a group). */
export const BLOCK_GROUPS = 1024;
/** Blocks an arena has at most, by default: a global value's prologue reads every block once a workgroup. */
export const MAX_BLOCKS = 4096;

/**
 * The default block size for an arena of `groups` groups: BLOCK_GROUPS, doubled until the arena
 * holds at most MAX_BLOCKS full blocks. Small blocks balance the GPU's load across many
 * workgroups; few blocks keep the prologues' reads (blocks × blocks a step) small. On the H200
 * (bench/out/h200-blocks.txt) blocks of 1024 beat 4096 by 4–10% on GPT-2's shapes, and at 2^28
 * LAMB with clipping took 8.15 ms with 8192 blocks of 1024 against 7.65 with 2048 of 4096.
 */
export function blockGroupsFor(groups: number): number {
  let b = BLOCK_GROUPS;
  while (b < 65536 && groups / b > MAX_BLOCKS) b *= 2;
  return b;
}
/** Lanes of a value's tree: a workgroup. */
export const BLOCK_LANES = 256;

export interface BlockLayout {
  /** Per block: first arena group, group count, row, slot store place (4 words each), in arena order. */
  readonly blocks: Uint32Array;
  /** Per row: its tensor's blocks [first, end). */
  readonly rowBlocks: Uint32Array;
  /** Blocks a chunk begins inside (each has a place in the slot store). */
  readonly cut: number;
}

/** No place in the slot store: no chunk begins inside the block. */
export const UNCUT = 0xffffffff;

/** Blocks of at most `size` groups from each tensor's first group; those a chunk in `cuts` begins inside get a slot store place. */
export function blockLayout(
  tensors: CombinePlan['tensors'],
  rows: number,
  cuts: readonly number[],
  size = BLOCK_GROUPS,
): BlockLayout {
  const blocks: number[] = [];
  const rowBlocks = new Uint32Array(2 * rows);
  let cut = 0;
  for (const t of [...tensors].sort((a, b) => a.groups[0] - b.groups[0])) {
    rowBlocks[2 * t.row] = blocks.length / 4;
    for (let g = t.groups[0]; g < t.groups[1]; g += size) {
      const n = Math.min(size, t.groups[1] - g);
      blocks.push(g, n, t.row, cuts.some((c) => c > g && c < g + n) ? cut++ : UNCUT);
    }
    rowBlocks[2 * t.row + 1] = blocks.length / 4;
  }
  return { blocks: Uint32Array.from(blocks), rowBlocks, cut };
}

/** Word offsets of the RED buffer's parts (its tables, before `sl`, never change). */
export interface RedLayout {
  readonly rb: number;
  readonly fn: number;
  readonly sl: number;
  /** A multiple of 64 words: the sums can be read through a 256-byte aligned view. */
  readonly bs: number;
  readonly words: number;
  /** Every word before `sl`. */
  readonly tables: Uint32Array;
}

export function redLayout(l: BlockLayout, reductions: readonly CombinedReduction[], rows: number): RedLayout {
  const nb = l.blocks.length / 4,
    R = reductions.length;
  const rb = 4 * nb,
    fn = rb + 2 * rows * R,
    sl = fn + R,
    bs = Math.ceil((sl + l.cut * R * BLOCK_LANES) / 64) * 64;
  const tables = new Uint32Array(sl);
  tables.set(l.blocks, 0);
  for (let r = 0; r < rows; r++)
    reductions.forEach((x, i) => {
      const global = x.scope === 'global';
      tables[rb + 2 * (r * R + i)] = global ? 0 : l.rowBlocks[2 * r]!;
      tables[rb + 2 * (r * R + i) + 1] = global ? nb : l.rowBlocks[2 * r + 1]!;
    });
  reductions.forEach((x, i) => (tables[fn + i] = x.fn === 'sum' ? 0 : 1));
  return { rb, fn, sl, bs, words: bs + nb * R, tables };
}

/** The blocks of `l` with groups in arena groups [a, z): [first block, count]. */
export function blocksIn(l: BlockLayout, a: number, z: number): [number, number] {
  const B = l.blocks,
    nb = B.length / 4;
  let lo = 0,
    hi = nb;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (B[4 * m]! + B[4 * m + 1]! <= a) lo = m + 1;
    else hi = m;
  }
  let e = lo;
  while (e < nb && B[4 * e]! < z) e++;
  return [lo, e - lo];
}

/** Reduction `i`'s value for `row` from the blocks' sums (blocks × reductions), as the kernels' prologue computes it. */
export function blockValue(
  l: BlockLayout,
  sums: Float32Array,
  reductions: readonly CombinedReduction[],
  i: number,
  row: number,
): number {
  const r = reductions[i]!,
    R = reductions.length;
  const op = r.fn === 'sum' ? (a: number, b: number) => Math.fround(a + b) : fmax;
  const empty = r.fn === 'sum' ? 0 : -Infinity;
  const [b0, b1] = r.scope === 'global' ? [0, l.blocks.length / 4] : [l.rowBlocks[2 * row]!, l.rowBlocks[2 * row + 1]!];
  const lanes = Array.from({ length: BLOCK_LANES }, (_, j) => {
    let v = empty;
    for (let b = b0 + j; b < b1; b += BLOCK_LANES) v = op(v, sums[b * R + i]!);
    return v;
  });
  for (let s = BLOCK_LANES / 2; s > 0; s >>= 1) for (let j = 0; j < s; j++) lanes[j] = op(lanes[j]!, lanes[j + s]!);
  return lanes[0]!;
}
