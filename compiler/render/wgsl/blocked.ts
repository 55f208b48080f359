// The blocked form of a kernel in a step with reductions (runtime/backends/webgpu/blocks.ts has
// the buffer and the orders): a workgroup per block of one tensor's groups, looping over the block
// in tiles of S = 256/T groups. Before the loop it computes the reductions it reads (`$red<i>`
// columns) from the blocks' sums, the same value in every invocation; a reduction pass adds its
// groups' partials per slot over the tiles and, after the loop, the slots pairwise into its
// block's sum. So the combine costs no dispatch of its own: a step is a dispatch per level plus
// the update, and no per-group partial is stored.
//
// Every loop bound and branch around a barrier is uniform: block headers and table entries reach
// the invocations through workgroupUniformLoad, which the uniformity analysis accepts.

import type { Expr } from '../../ir/ir.ts';

/** Lanes of a value's tree, and the workgroup size a blocked kernel must have. */
export const BLOCKED_WORKGROUP = 256;

/** The Params fields a blocked launch adds after `reds` (runtime/backends/webgpu/encode.ts fills them). */
export const BLOCKED_PARAMS =
  'fb: u32, nb: u32, origin: u32, bs: u32, rb: u32, fnk: u32, sl: u32, pad0: u32, pad1: u32';
/** u32 words of Params before the fields' bases: 8 plain, 16 blocked. */
export const paramHead = (blocked: boolean): number => (blocked ? 16 : 8);

/** A `$red<i>` output of a reduction pass: reduction `index`, its per-group partial `value`. */
export interface BlockOutput {
  readonly index: number;
  readonly value: Expr;
}

/** Module-scope declarations: the RED binding, workgroup memory and the two helpers. */
export function blockedDecls(binding: number, writes: boolean): string[] {
  const W = BLOCKED_WORKGROUP;
  return [
    `@group(0) @binding(${binding}) var<storage, ${writes ? 'read_write' : 'read'}> RED: array<u32>;`,
    `var<workgroup> RW: array<f32, ${W}>;`,
    'var<workgroup> RH: vec4<u32>;',
    'fn red_op(a: f32, b: f32, mx: bool) -> f32 { return select(a + b, fmax_nan(a, b), mx); }',
    // Reduction i's value for `row`: lane j adds blocks j, j + 256, … of its range in order, then
    // the lanes pairwise.
    'fn red_value(row: u32, i: u32, lid: u32) -> f32 {',
    '  if (lid == 0u) {',
    '    let at = P.rb + 2u * (row * P.reds + i);',
    '    RH = vec4<u32>(RED[at], RED[at + 1u], RED[P.fnk + i], 0u);',
    '  }',
    '  let h = workgroupUniformLoad(&RH);',
    '  let mx = h.z == 1u;',
    '  var v = select(f32_bits(0u), f32_bits(0xff800000u), mx);',
    `  for (var b = h.x + lid; b < h.y; b += ${W}u) {`,
    '    v = red_op(v, bitcast<f32>(RED[P.bs + b * P.reds + i]), mx);',
    '  }',
    '  RW[lid] = v;',
    '  workgroupBarrier();',
    `  for (var s = ${W / 2}u; s > 0u; s >>= 1u) {`,
    '    if (lid < s) { RW[lid] = red_op(RW[lid], RW[lid + s], mx); }',
    '    workgroupBarrier();',
    '  }',
    '  return workgroupUniformLoad(&RW[0]);',
    '}',
  ];
}

/**
 * Before the loop: the block's header (first arena group, count, row, slot store) as `hb`, `row`
 * and `urow`, and the launch's piece of it, groups [k0, k1) of the block: a block larger than a
 * chunk is run a piece a launch, its slots' sums carried over in the slot store.
 */
export function blockHead(): string[] {
  return [
    '  if (wg >= P.nb) { return; }',
    '  let blk = P.fb + wg;',
    '  if (lid == 0u) { RH = vec4<u32>(RED[4u * blk], RED[4u * blk + 1u], RED[4u * blk + 2u], RED[4u * blk + 3u]); }',
    '  let hb = workgroupUniformLoad(&RH);',
    '  let k0 = max(hb.x, P.origin + P.g0) - hb.x;',
    '  let k1 = min(hb.x + hb.y, P.origin + P.g1) - hb.x;',
    // The live groups, [glo, ghi): a group store that packs its neighbours' values stops there.
    '  let glo = hb.x - P.origin + k0;',
    '  let ghi = hb.x - P.origin + k1;',
    '  var row = 0u;',
    '  if (P.rows != 0u) { row = hb.z; }',
    '  let urow = row * P.columns;',
  ];
}

/** A reduction column's value before the loop. */
export const blockColumn = (u: string, index: number): string => `  let ${u} = red_value(hb.z, ${index}u, lid);`;

/** Slot `sl` of output i in the slot store of the block's reductions. */
const slotAt = (i: number) => `P.sl + (hb.w * P.reds + ${i}u) * ${BLOCKED_WORKGROUP}u + sl`;

/** The loop's head: per tile, the group `g`, lane `t` and `live` the kernel's body uses. */
export function tileOpen(T: number, outputs: readonly BlockOutput[]): string[] {
  const S = BLOCKED_WORKGROUP / T;
  return [
    `  let sl = lid / ${T}u;`,
    `  let tl = lid % ${T}u;`,
    ...outputs.flatMap((o) => [
      `  let mx${o.index} = RED[P.fnk + ${o.index}u] == 1u;`,
      `  var a${o.index} = select(f32_bits(0u), f32_bits(0xff800000u), mx${o.index});`,
      // A piece after the block's first: its slots go on from where the last launch left them.
      `  if (k0 > 0u) { a${o.index} = bitcast<f32>(RED[${slotAt(o.index)}]); }`,
    ]),
    // Tiles counted from the block's first group, so a slot adds the same groups in the same
    // order however the block is cut into pieces. (g wraps below the piece: masked, reads clamped.)
    `  for (var it = k0 / ${S}u; it * ${S}u < k1; it++) {`,
    `  let kk = it * ${S}u + sl;`,
    '  let g = hb.x - P.origin + kk;',
    '  let t = tl;',
    '  let live = kk >= k0 && kk < k1;',
  ];
}

/**
 * The loop's end: each output's partial into its slot's sum; then, at the block's last piece, the
 * slots pairwise into the block's sum, or else the slots' sums into the slot store.
 */
export function tileClose(T: number, outputs: readonly BlockOutput[], value: (o: BlockOutput) => string): string[] {
  const S = BLOCKED_WORKGROUP / T;
  const out = outputs.map(
    (o) => `  a${o.index} = select(a${o.index}, red_op(a${o.index}, ${value(o)}, mx${o.index}), live);`,
  );
  out.push('  }');
  if (!outputs.length) return out;
  out.push('  if (k1 < hb.y) {');
  for (const o of outputs) out.push(`    if (tl == 0u) { RED[${slotAt(o.index)}] = bitcast<u32>(a${o.index}); }`);
  out.push('    return;', '  }');
  for (const o of outputs) {
    const i = o.index;
    out.push(`  if (tl == 0u) { RW[sl] = a${i}; }`, '  workgroupBarrier();');
    if (S > 1)
      out.push(
        `  for (var s = ${S / 2}u; s > 0u; s >>= 1u) {`,
        `    if (lid < s) { RW[lid] = red_op(RW[lid], RW[lid + s], mx${i}); }`,
        '    workgroupBarrier();',
        '  }',
      );
    out.push(`  if (lid == 0u) { RED[P.bs + blk * P.reds + ${i}u] = bitcast<u32>(RW[0]); }`, '  workgroupBarrier();');
  }
  return out;
}
