// The WGSL of the device-side combine (combine.ts) and the blocks its order depends on: what a
// block holds, and the two shaders, blocks and rows, for one level's reductions. The orders are
// documented in combine.ts; test/device-oracle.ts follows them on the host.

import type { ReduceFn } from '../../../compiler/ir/ir.ts';
import { WGSL_PRELUDE } from '../../../compiler/render/wgsl/ops.ts';
import type { CombinedReduction, CombinePlan } from '../backend.ts';

/** Threads of a combine workgroup. */
export const COMBINE_THREADS = 256;
const WG = COMBINE_THREADS;
/** Groups a block holds at most: 64 a thread (bounded further by the binding size). */
const MAX_BLOCK = 64 * WG;

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

const empty = (fn: ReduceFn) => (fn === 'sum' ? 'f32_bits(0u)' : 'f32_bits(0xff800000u)');
const add = (fn: ReduceFn, a: string, b: string) => (fn === 'sum' ? `${a} + ${b}` : `fmax_nan(${a}, ${b})`);
const PARAMS = 'struct Params { g0: u32, g1: u32, first: u32, base: u32, never: u32 }';

/** The blocks shader for reductions `cols` (indices into the plan's), partial j bound as X<j>. */
export function blocksShader(rs: readonly CombinedReduction[], cols: readonly number[]): string {
  const R = rs.length;
  const lines = [
    PARAMS,
    '@group(0) @binding(0) var<uniform> P: Params;',
    '@group(0) @binding(1) var<storage, read> BT: array<u32>;',
    '@group(0) @binding(2) var<storage, read_write> BS: array<f32>;',
    ...cols.map((_, j) => `@group(0) @binding(${3 + j}) var<storage, read> X${j}: array<f32>;`),
    ...cols.map((_, j) => `var<workgroup> W${j}: array<f32, ${WG}>;`),
    WGSL_PRELUDE,
    `@compute @workgroup_size(${WG})`,
    'fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {',
    '  let b = P.first + wid.x;',
    '  let g0 = BT[2u * b];',
    '  let n = BT[2u * b + 1u];',
    ...cols.map((c, j) => `  var v${j} = ${empty(rs[c]!.fn)};`),
    `  for (var k = t; k < n; k += ${WG}u) {`,
    '    let g = g0 + k;',
    '    if (g >= P.g0 && g < P.g1) {',
    ...cols.map((c, j) => `      v${j} = ${add(rs[c]!.fn, `v${j}`, `X${j}[g - P.base]`)};`),
    '    }',
    '  }',
    ...cols.map((_, j) => `  W${j}[t] = v${j};`),
    '  workgroupBarrier();',
    `  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {`,
    ...cols.map((c, j) => `    if (t < s) { W${j}[t] = ${add(rs[c]!.fn, `W${j}[t]`, `W${j}[t + s]`)}; }`),
    '    workgroupBarrier();',
    '  }',
    '  if (t == 0u) {',
    ...cols.map((c, j) => `    BS[b * ${R}u + ${c}u] = W${j}[0];`),
    '  }',
    '}',
  ];
  return lines.join('\n');
}

/** The rows shader of one level's reductions `cols`. */
export function rowsShader(rs: readonly CombinedReduction[], cols: readonly number[], rows: number): string {
  const R = rs.length;
  const globals = cols.filter((c) => rs[c]!.scope === 'global');
  const lines = [
    PARAMS,
    '@group(0) @binding(0) var<uniform> P: Params;',
    '@group(0) @binding(1) var<storage, read> RT: array<u32>;',
    '@group(0) @binding(2) var<storage, read> BS: array<f32>;',
    '@group(0) @binding(3) var<storage, read_write> V: array<f32>;',
    ...globals.map((c) => `var<workgroup> W${c}: array<f32, ${WG}>;`),
    WGSL_PRELUDE,
    `@compute @workgroup_size(${WG})`,
    'fn main(@builtin(local_invocation_index) t: u32) {',
    ...globals.map((c) => `  var a${c} = ${empty(rs[c]!.fn)};`),
    `  for (var r = t; r < ${rows}u; r += ${WG}u) {`,
    '    let b0 = RT[2u * r];',
    '    let b1 = RT[2u * r + 1u];',
    ...cols.map((c) => `    var v${c} = ${empty(rs[c]!.fn)};`),
    '    for (var b = b0; b < b1; b++) {',
    ...cols.map((c) => `      v${c} = ${add(rs[c]!.fn, `v${c}`, `BS[b * ${R}u + ${c}u]`)};`),
    '    }',
    ...cols.map((c) =>
      rs[c]!.scope === 'global'
        ? `    a${c} = ${add(rs[c]!.fn, `a${c}`, `v${c}`)};`
        : `    V[r * ${R}u + ${c}u] = v${c};`,
    ),
    '  }',
  ];
  if (globals.length)
    lines.push(
      ...globals.map((c) => `  W${c}[t] = a${c};`),
      '  workgroupBarrier();',
      `  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {`,
      ...globals.map((c) => `    if (t < s) { W${c}[t] = ${add(rs[c]!.fn, `W${c}[t]`, `W${c}[t + s]`)}; }`),
      '    workgroupBarrier();',
      '  }',
      `  for (var r = t; r < ${rows}u; r += ${WG}u) {`,
      ...globals.map((c) => `    V[r * ${R}u + ${c}u] = W${c}[0];`),
      '  }',
    );
  lines.push('}');
  return lines.join('\n');
}
