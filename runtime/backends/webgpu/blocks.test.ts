// The blocks WebGPU's kernels combine over (blocks.ts): they cover every group once, never cross a
// tensor, do not depend on chunking, and the host's value of a reduction (gradNorm) is the
// oracle's, written apart.
import { describe, expect, test } from 'vitest';
import { uniformF32 } from '../../../props/prng.ts';
import { blockValueOf } from '../../../test/block-oracle.ts';
import type { CombinedReduction } from '../backend.ts';
import { BLOCK_GROUPS, blockGroupsFor, blockLayout, blocksIn, blockValue, redLayout, UNCUT } from './blocks.ts';

const sizes = [0, 1, 5000, 31, 9000, 12, 4096, 4097];
let at = 0;
const tensors = sizes.map((n, row) => {
  const groups = [at, at + n] as const;
  at += n;
  return { row, groups };
});
const cuts = [0, 3000, 6000, 9000, 12000, 15000, 18000];

describe('WebGPU reduction blocks', () => {
  test('every group in one block of one tensor, at most the block size, counted from the tensor’s start; a block a chunk begins inside has a slot store place', () => {
    const B = 4096;
    const l = blockLayout(tensors, sizes.length, cuts, B);
    const seen = new Uint8Array(at);
    const places = new Set<number>();
    for (let b = 0; b < l.blocks.length / 4; b++) {
      const [first, n, row, place] = l.blocks.subarray(4 * b, 4 * b + 4);
      const t = tensors[row!]!;
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThanOrEqual(B);
      expect(first! >= t.groups[0] && first! + n! <= t.groups[1]).toBe(true);
      expect((first! - t.groups[0]) % B).toBe(0);
      const cut = cuts.some((c) => c > first! && c < first! + n!);
      expect(place !== UNCUT, `block ${b}`).toBe(cut);
      if (cut) places.add(place!);
      for (let g = first!; g < first! + n!; g++) seen[g]!++;
      expect(
        b >= l.rowBlocks[2 * row!]! &&
          b < l.rowBlocks[2 * row!]! + (l.rowBlocks[2 * row! + 1]! - l.rowBlocks[2 * row!]!),
      ).toBe(true);
    }
    expect(seen.every((x) => x === 1)).toBe(true);
    expect(places.size).toBe(l.cut);
    expect([...places].sort((x, y) => x - y)).toEqual([...Array(l.cut).keys()]);
    expect(l.cut).toBeGreaterThan(0);
    // The same blocks however the arena is chunked; only the slot store places differ.
    const whole = blockLayout(tensors, sizes.length, [0], B);
    expect(whole.cut).toBe(0);
    expect(whole.blocks.filter((_, i) => i % 4 !== 3)).toEqual(l.blocks.filter((_, i) => i % 4 !== 3));
    // A launch's blocks: those with a group in its range.
    expect(blocksIn(l, 1, 5001)).toEqual([1, 2]);
    expect(blocksIn(l, 3000, 6000)).toEqual([1, 4]);
    expect(blocksIn(l, 5001, 5001)[1]).toBe(0);
  });

  test('the default block size: 1024 groups, doubled until the arena has at most 4096 blocks', () => {
    expect(blockGroupsFor(1)).toBe(BLOCK_GROUPS);
    expect(blockGroupsFor(3_888_744)).toBe(1024); // GPT-2 small: 124 439 808 params
    expect(blockGroupsFor(2 ** 23)).toBe(2048); // 2^28 params
    expect(blockGroupsFor(47_000_000)).toBe(16384); // 1.5 B params
    for (const g of [1, 5000, 2 ** 22 + 1, 2 ** 28]) expect(g / blockGroupsFor(g)).toBeLessThanOrEqual(4096);
    expect(blockGroupsFor(2 ** 31)).toBe(65536); // the largest: more blocks beyond 2^28 groups
  });

  test('a reduction’s value on the host (gradNorm) is the oracle’s, bit for bit, and the sum within rounding', () => {
    const l = blockLayout(tensors, sizes.length, cuts, 64); // small blocks: more than the 256 lanes
    const reductions: CombinedReduction[] = [
      { fn: 'sum', scope: 'global', level: 1 },
      { fn: 'max', scope: 'tensor', level: 1 },
      { fn: 'sum', scope: 'tensor', level: 2 },
    ];
    const nb = l.blocks.length / 4;
    expect(nb).toBeGreaterThan(256); // the lanes wrap
    const sums = uniformF32(nb * reductions.length, 9, 1);
    for (let j = 0; j < sums.length; j += 7) sums[j] = Math.fround(sums[j]! * 1e7);
    for (let i = 0; i < reductions.length; i++)
      for (let row = 0; row < sizes.length; row++)
        expect(blockValue(l, sums, reductions, i, row), `reduction ${i} row ${row}`).toBe(
          blockValueOf(l, sums, reductions, i, row),
        );
    let exact = 0,
      abs = 0;
    for (let b = 0; b < nb; b++) ((exact += sums[b * 3]!), (abs += Math.abs(sums[b * 3]!)));
    expect(Math.abs(blockValue(l, sums, reductions, 0, 0) - exact)).toBeLessThanOrEqual(nb * 2 ** -24 * abs);
    // The tables the kernels read: each row's range, a global one every block.
    const w = redLayout(l, reductions, sizes.length);
    expect(w.bs % 64).toBe(0);
    expect([...w.tables.subarray(w.rb, w.rb + 2)]).toEqual([0, nb]);
    const e = w.rb + 2 * (4 * reductions.length + 1); // row 4, reduction 1 (tensor scope)
    expect([...w.tables.subarray(e, e + 2)]).toEqual([l.rowBlocks[8]!, l.rowBlocks[9]!]);
  });
});
