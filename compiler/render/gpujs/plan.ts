// A gpu.js plan: its passes and the arrays they take. Every scalar a pass needs is in one f32 array, `aux`:
//   [n, g0, g1, rowsAt, hasRows, R, ...constants, ...uniform rows (S columns each), ...row of each group]
// With `reductionsOnDevice` the reduction columns `$red<i>` are not read from the uniform rows but
// from the device array the backend's combine wrote (REDUCTIONS_ARRAY): row r's value i at r·R + i,
// and a reduction pass's `$red<i>` outputs become lane passes (LANES): a thread per lane of a block
// of the combine, adding its groups' sums (or maxima) in order; the combine's rows kernel
// (runtime/backends/gpujs/combine.ts) adds the lanes. The arrays a lane pass reads:
//   BLOCKS_ARRAY  per block of the combine: first arena group, group count;
//   lanesName(i)  reduction i's lanes so far (blocks × LANES): carried from the step's earlier launches;
//   STEP_ARRAY    [origin, s0, s1]: the arena group of the launch's group 0, the step's arena groups [s0, s1).

import type { Storage } from '../../ir/ir.ts';

/** What one pass writes: a field's array (or one half of an i32/u32 field), a group reduction, a counter. */
export type PassTarget =
  | { readonly kind: 'field'; readonly field: string; readonly half?: 'h' | 'l' }
  /** A group maximum or sum: one value per group, which later passes read. */
  | { readonly kind: 'reduction'; readonly index: number }
  /** The lanes of the combine's reduction `reduction` (the output `$red<reduction>`): blocks × LANES values. */
  | { readonly kind: 'lanes'; readonly reduction: number; readonly field: string }
  | { readonly kind: 'counter'; readonly index: number; readonly half?: 'h' | 'l' }
  /** An element value several output passes read (gpujs/share.ts), one array per launch. */
  | { readonly kind: 'shared'; readonly index: number };

export interface GpujsPass {
  readonly name: string;
  /** A thread per element (output length: the field's length), per group, or per lane of a combine's block. */
  readonly over: 'element' | 'group' | 'lane';
  readonly target: PassTarget;
  /** The arrays passed in, in argument order: device array names (see `arrayName`) and 'aux'. */
  readonly arrays: readonly string[];
  /** `function (a0, a1, …) { … }` in the gpu.js subset. */
  readonly source: string;
}

export interface GpujsPlan {
  readonly passes: readonly GpujsPass[];
  /** The constant table: aux[HEAD + i]. */
  readonly constants: readonly number[];
  /** Uniform columns start at aux[HEAD + constants.length]. */
  readonly uniformBase: number;
  readonly groupSize: number;
  /** All passes, for users to read. */
  readonly source: string;
}

export const HEAD = 6;
/** Is a field held as two arrays of 16-bit halves? */
export const split = (s: Storage): boolean => s === 'i32' || s === 'u32';
/** The device array holding a field (or one half of it). */
export const arrayName = (field: string, half?: 'h' | 'l'): string => (half ? `${field}:${half}` : field);
/** The device array holding a group reduction's value per group. */
export const reductionName = (index: number): string => `reduction:${index}`;
export const sharedName = (index: number): string => `shared:${index}`;
/** The device array of combined reduction values (rows × R) that `$red` columns read on the device. */
export const REDUCTIONS_ARRAY = 'combine:values';
/** A lane pass's block table, step range, and reduction i's lanes (see the header). */
export const BLOCKS_ARRAY = 'combine:blocks';
export const STEP_ARRAY = 'combine:step';
export const lanesName = (reduction: number): string => `combine:lanes:${reduction}`;
/** Lanes a block is added in: a WebGPU workgroup's threads, whose order the combine keeps. */
export const LANES = 256;
/** Groups a lane adds at most, so a block holds at most LANES · LANE_STEPS groups. */
export const LANE_STEPS = 64;

export interface RenderOptions {
  /** Round every f32 operation with Math.fround (the cpu mode computes in f64). */
  readonly fround: boolean;
  /** Tell −0 from +0 in bitcasts (needs IEEE 1/±0 = ±∞; false for webgpu: see gpujs/bits.ts). */
  readonly signedZeros?: boolean;
  /** Compute values several outputs share once, in passes of their own (default true). */
  readonly share?: boolean;
  /**
   * Read `$red<i>` columns from REDUCTIONS_ARRAY (a device combine's results), not the uniform rows,
   * and render a `$red<i>` group output (a reduction pass's) as a lane pass.
   */
  readonly reductionsOnDevice?: boolean;
}
