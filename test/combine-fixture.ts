// The fixture gpu.js's device combine is checked with against the device-order oracle
// (runtime/backends/gpujs/reductions.test.ts): 300 rows, a tensor of several blocks, reductions
// over two levels, and pass kernels whose group partials are given data.

import { groupMax, groupSum, load } from '../compiler/ir/ir.ts';
import type { Kernel } from '../compiler/ir/kernel.ts';
import { kernel } from '../compiler/ir/kernel.ts';
import { REDUCTION_PREFIX } from '../compiler/ir/phases.ts';
import type { CombinedReduction } from '../runtime/backends/backend.ts';

/**
 * A combine fixture of 300 rows (some empty) with one tensor of `bigGroups` groups at row 5, and
 * four reductions over two levels (tensor and global, sum and max).
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

/**
 * The reduction pass of each level as compiler/ir/phases.ts makes them (outputs `$red<i>`), with a
 * group of one element, field `x<i>`: each group's partial is its element (a sum adds it to +0, a
 * max takes it), so a step's combine adds the data written to the fields.
 */
export function fixturePasses(reductions: readonly CombinedReduction[]): Kernel[] {
  const levels = Math.max(...reductions.map((r) => r.level));
  return Array.from({ length: levels }, (_, l) =>
    kernel({
      name: `fixture/reduce${l + 1}`,
      groupSize: 1,
      outputs: reductions.flatMap((r, i) => {
        if (r.level !== l + 1) return [];
        const x = load(`x${i}`, 'f32');
        const value = r.fn === 'sum' ? groupSum(x) : groupMax(x);
        return [{ field: `${REDUCTION_PREFIX}${i}`, storage: 'f32' as const, axis: 'group' as const, value }];
      }),
    }),
  );
}

/** Each array of `data` written into a new f32 buffer of `on`. */
export const uploadArrays = <B extends { readonly length: number }>(
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
