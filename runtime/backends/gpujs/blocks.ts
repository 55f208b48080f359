// The blocks of gpu.js's combine (combine.ts, which documents its order; test/device-oracle.ts
// follows it), of up to 256 × 64 groups from each tensor's start: a block is what a lane pass's
// 256 lanes share (compiler/render/gpujs/pass.ts, LANES and LANE_STEPS), and what the rows kernel
// adds as one value. WebGPU's kernels combine themselves instead (runtime/backends/webgpu/blocks.ts),
// with workgroup memory gpu.js does not have.

import { LANES, LANE_STEPS } from '../../../compiler/render/gpujs/plan.ts';
import type { CombinePlan } from '../backend.ts';

/** Threads of a combine workgroup: the lanes a block is added in. */
export const COMBINE_THREADS = LANES;
/** Groups a block holds at most: LANE_STEPS a lane (bounded further by the binding size). */
export const MAX_BLOCK = LANE_STEPS * LANES;

/** The blocks of a combine: what its arithmetic's order depends on (test/device-oracle.ts follows it). */
export interface Blocks {
  /** First arena group and group count of each block, in arena order. */
  readonly blocks: Uint32Array;
  /** Per row, its tensor's blocks [first, end). */
  readonly rowBlocks: Uint32Array;
}

/**
 * Blocks of at most `block` groups from each tensor's first group, where `block` is the largest
 * power of two ≤ MAX_BLOCK that fits one binding with `alignBytes` of slack.
 */
export function combineBlocks(
  tensors: CombinePlan['tensors'],
  rows: number,
  maxBindingBytes: number,
  alignBytes: number,
): Blocks {
  let block = MAX_BLOCK;
  while (block > 1 && block * 4 + alignBytes > maxBindingBytes) block /= 2;
  const blocks: number[] = [];
  const rowBlocks = new Uint32Array(2 * rows);
  for (const t of [...tensors].sort((a, b) => a.groups[0] - b.groups[0])) {
    rowBlocks[2 * t.row] = blocks.length / 2;
    for (let g = t.groups[0]; g < t.groups[1]; g += block) blocks.push(g, Math.min(block, t.groups[1] - g));
    rowBlocks[2 * t.row + 1] = blocks.length / 2;
  }
  return { blocks: Uint32Array.from(blocks), rowBlocks };
}
