// What comes before a WGSL kernel's body (render.ts): the module's declarations (Params, the
// fixed bindings, the field slots, the preludes) and the start of `main`, which finds the
// invocation's group `g`, lane `t`, elements `e0` and masks `v<j>`, and its uniforms `u<i>`: one
// invocation per E elements over the launch's groups, or, in a step with reductions, a loop over
// the workgroup's block (blocked.ts), whose reduction columns come from the blocks' sums.

import type { Kernel } from '../../ir/kernel.ts';
import type { Ablation } from './arith.ts';
import type { BlockOutput } from './blocked.ts';
import { BLOCKED_PARAMS, blockColumn, blockedDecls, blockHead, tileOpen } from './blocked.ts';
import { WGSL_EXACT } from './exact.ts';
import type { FieldLayout } from './layout.ts';
import { BIND } from './layout.ts';
import { WGSL_PRELUDE } from './ops.ts';
import type { BindingPlan } from './slots.ts';
import { declareSlot } from './slots.ts';

/** vec4s of bases in Params (at least one: WGSL has no empty arrays). */
export const baseVecs = (fields: number): number => Math.max(1, Math.ceil(fields / 4));

export interface Header {
  readonly k: Kernel;
  readonly columns: readonly string[];
  /** Reduction i of a `$red<i>` column, or −1. */
  readonly red: (column: string) => number;
  readonly T: number;
  readonly E: number;
  readonly WG: number;
  readonly layouts: readonly FieldLayout[];
  readonly slotOf: readonly number[];
  readonly plan: BindingPlan;
  /** Fields at base 0 in their slot (no offset). */
  readonly zero: ReadonlySet<number>;
  readonly tables: boolean;
  /** Blocked (a step with reductions), with the reduction pass's partials if it is one. */
  readonly reductions: boolean;
  readonly blockOuts: readonly BlockOutput[];
  /** The fast path's second body is rendered (its branch is uniform per subgroup). */
  readonly twoBodies: boolean;
  /** A half of a split kernel (render.ts): the fast one writes the group flags, the fallback reads them. */
  readonly split?: 'fast' | 'fallback';
  readonly off: ReadonlySet<Ablation>;
}

// A split kernel's region of FL (u32 words, cleared before each submission): the fallback's
// indirect dispatch size x, y, z; how many workgroups failed; W, the fast grid's workgroups; then a
// marker a workgroup, the list of failed workgroups, and a bit a group (1: redo it). A subgroup
// whose checks failed sets its groups' bits (n from group lg, lg a multiple of n, a power of two:
// whole words from 32 on) and, first in its workgroup, lists the workgroup, so the fallback runs
// one workgroup per failed one (an empty dispatch over the whole grid cost 0.3 ms at 2^28).
export const FLAG_HEAD = 8;
const FLAG_GROUPS = `fn fail_groups(lg: u32, n: u32, wg: u32, W: u32) {
  let b = ${FLAG_HEAD}u + 2u * W;
  if (n >= 32u) {
    for (var w = lg / 32u; w < (lg + n) / 32u; w++) { atomicStore(&FL[b + w], 0xffffffffu); }
  } else {
    atomicOr(&FL[b + lg / 32u], ((1u << n) - 1u) << (lg % 32u));
  }
  if (atomicExchange(&FL[${FLAG_HEAD}u + wg], 1u) == 0u) {
    let i = atomicAdd(&FL[3], 1u);
    atomicStore(&FL[${FLAG_HEAD}u + W + i], wg);
    atomicMax(&FL[0], min(i + 1u, 65535u));
    atomicMax(&FL[1], i / 65535u + 1u);
    atomicStore(&FL[2], 1u);
    atomicStore(&FL[4], W);
  }
}`;

export function kernelHeader(h: Header): string[] {
  const { k, columns, red, T, E, WG, layouts, slotOf, plan: bp, reductions } = h;
  const G = k.groupSize;
  const J = [...Array(E).keys()];
  return [
    ...(T > 1 ? ['enable subgroups;'] : []),
    // The fast path's branch is uniform per subgroup (subgroupAll), which the analysis cannot see.
    // The fallback kernel's exit is per group, and its stores need no other group's lanes (stores.ts).
    ...(T > 1 && (h.twoBodies || h.split) ? ['diagnostic(off, subgroup_uniformity);'] : []),
    `// kernel ${k.name}: groupSize ${G}, ${T} invocation(s) per group, ${E} elements each; ` +
      `fields ${layouts.map((f) => `${f.field}(${f.storage}/${f.axis}/${f.access})@S${slotOf[f.index]}`).join(' ')}; ` +
      `uniforms ${columns.map((c, i) => `U[${i}]=${c}`).join(' ') || 'none'}`,
    // never is 0: a value the shader compiler cannot know, which `keep` selects on. b: each field's
    // base in its slot, four to a vec4 (uniform arrays have a 16-byte stride).
    `struct Params { g0: u32, g1: u32, n: u32, rows: u32, columns: u32, never: u32, reds: u32, ${reductions ? `${BLOCKED_PARAMS}, ` : ''}b: array<vec4<u32>, ${baseVecs(layouts.length)}> }`,
    `@group(0) @binding(${BIND.params}) var<uniform> P: Params;`,
    `@group(0) @binding(${BIND.uniforms}) var<storage, read> U: array<f32>;`,
    `@group(0) @binding(${BIND.rowOf}) var<storage, ${bp.rowOfWritable ? 'read_write' : 'read'}> R: array<u32>;`,
    ...(k.counters.length
      ? [`@group(0) @binding(${BIND.counters}) var<storage, read_write> C: array<atomic<u32>>;`]
      : []),
    ...(h.tables ? [`@group(0) @binding(${BIND.tables}) var<storage, read> TB: array<f32>;`] : []),
    ...(h.split === 'fallback'
      ? [`@group(0) @binding(${BIND.flags}) var<storage, read> FL: array<u32>;`]
      : h.split === 'fast'
        ? [`@group(0) @binding(${BIND.flags}) var<storage, read_write> FL: array<atomic<u32>>;`, FLAG_GROUPS]
        : []),
    ...bp.slots.map(declareSlot),
    WGSL_PRELUDE,
    ...(reductions ? blockedDecls(BIND.reductions, h.blockOuts.length > 0) : []),
    h.off.has('fallbackBranches')
      ? WGSL_EXACT.replace(/return div_exact\(a, b\);/g, 'return a / b;').replace(
          'return sqrt_exact(x);',
          'return sqrt(x);',
        )
      : WGSL_EXACT,
    `@compute @workgroup_size(${WG})`,
    `fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32${T > 1 ? ', @builtin(subgroup_invocation_id) sgi: u32, @builtin(subgroup_size) sgs: u32' : ''}) {`,
    ...(h.split === 'fallback'
      ? [
          // The fallback's grid is the list of the workgroups that failed in the fast kernel.
          '  let W = FL[4];',
          '  let listed = wid.y * nwg.x + wid.x;',
          '  if (listed >= FL[3]) { return; }',
          `  let wg = FL[${FLAG_HEAD}u + W + listed];`,
        ]
      : [`  let wg = wid.y * nwg.x + wid.x;`]),
    ...layouts
      .filter((f) => !h.zero.has(f.index))
      .map((f) => `  let o${f.index} = P.b[${f.index >> 2}].${'xyzw'[f.index & 3]};`),
    ...(reductions
      ? [
          ...blockHead(),
          ...columns.map((c, i) => (red(c) >= 0 ? blockColumn(`u${i}`, red(c)) : `  let u${i} = U[urow + ${i}u];`)),
          ...tileOpen(T, h.blockOuts),
        ]
      : [
          // A 2-D grid may hold a few workgroups past the end: they leave at once (uniformly per workgroup).
          `  if (wg * ${WG}u >= (P.g1 - P.g0) * ${T}u) { return; }`,
          `  let gi = wg * ${WG}u + lid;`,
          `  let g = P.g0 + gi / ${T}u;`,
          `  let t = gi % ${T}u;`,
          // The fallback kernel redoes only the groups whose subgroup's checks failed in the fast one.
          ...(h.split === 'fallback'
            ? [`  if (((FL[${FLAG_HEAD}u + 2u * W + gi / ${32 * T}u] >> ((gi / ${T}u) % 32u)) & 1u) == 0u) { return; }`]
            : []),
          '  let live = g < P.g1;',
        ]),
    `  let e0 = g * ${G}u + t * ${E}u;`,
    ...J.map((j) => `  let v${j} = live && e0 + ${j}u < P.n;`),
    ...(reductions
      ? []
      : [
          '  var row = 0u;',
          '  if (P.rows != 0u) { row = R[g]; }',
          '  let urow = row * P.columns;',
          ...columns.map((_, i) => `  let u${i} = U[urow + ${i}u];`),
        ]),
  ];
}
