// How a kernel's fields sit in WGSL buffers and how a thread reaches them (legalization: WGSL has
// no 8- or 16-bit storage). Every field is an array of u32 words; a thread owns E consecutive
// elements of one group, so each element field's span of E·bytes is read and written whole:
// as vec4<u32> when the span is a multiple of 16 bytes (the fast path: 16 elements of a bf16 field
// are two vec4 loads), as u32 words when it is a multiple of 4, and through atomics on the word
// otherwise (a span shares words with the next thread's). A group-axis field narrower than 32 bits
// shares its words with other groups, so its stores are atomicAnd + atomicOr of its own bits.
// Which binding holds a field, and at what base, is slots.ts's business.

import type { FieldRef, Kernel } from '../../ir/kernel.ts';
import { fields, fieldsRead, storageBytes } from '../../ir/kernel.ts';
import type { Storage, Type } from '../../ir/ir.ts';

export type Access = 'vec4' | 'word' | 'atomic';

export interface FieldLayout extends FieldRef {
  /** Position among the kernel's fields: its base is P.b[index] (slots.ts). */
  readonly index: number;
  readonly access: Access;
  readonly read: boolean;
  readonly written: boolean;
}

export interface ThreadShape {
  /** Threads per group (a power of two; > 1 needs subgroup shuffles). */
  readonly threadsPerGroup: number;
  /** Consecutive elements a thread owns. */
  readonly elementsPerThread: number;
}

export interface ShapeOptions {
  /** Subgroup operations are available, with at least this many invocations per subgroup. */
  readonly subgroupMinSize?: number;
  /** Elements per thread wanted (must divide the group size); default up to 8. */
  readonly elementsPerThread?: number;
}

/**
 * Split a group over threads: up to 8 elements a thread, as few threads a group as that allows.
 * 8 elements are two 16-byte loads of a bf16 field and one 8-byte load of an 8-bit field; bench/gpu.ts
 * (VARIANTS=1) times 4 and 16 against it (docs/bench-gpu.md).
 */
export function threadShape(k: Kernel, o: ShapeOptions): ThreadShape {
  const G = k.groupSize;
  const maxT = Math.min(o.subgroupMinSize ?? 1, 32);
  if (o.elementsPerThread !== undefined) {
    const E = o.elementsPerThread,
      T = G / E;
    if (!Number.isInteger(T) || T < 1 || (T & (T - 1)) !== 0 || T > maxT)
      throw new RangeError(
        `wgsl: elementsPerThread ${E} must divide groupSize ${G} into a power-of-two number of threads ≤ ${maxT}`,
      );
    return { threadsPerGroup: T, elementsPerThread: E };
  }
  let T = 1;
  while (G / T > 8 && T * 2 <= maxT && G % (T * 2) === 0) T *= 2;
  return { threadsPerGroup: T, elementsPerThread: G / T };
}

/**
 * Fixed bindings before the fields. reductions: a blocked kernel's RED buffer (blocked.ts); flags:
 * a split kernel's flags (header.ts fail_groups), in the same place (no kernel has both).
 */
export const BIND = {
  params: 0,
  uniforms: 1,
  rowOf: 2,
  counters: 3,
  tables: 4,
  reductions: 5,
  flags: 5,
  firstField: 6,
} as const;

/** The fields' layouts, less those in `skip` (a blocked reduction pass's partials, never stored). */
export function fieldLayouts(k: Kernel, s: ThreadShape, skip: ReadonlySet<string> = new Set()): FieldLayout[] {
  const read = new Set(fieldsRead(k).map((f) => f.field));
  const written = new Set(k.outputs.map((o) => o.field));
  return fields(k)
    .filter((f) => !skip.has(f.field))
    .map((f, i) => {
      const sb = storageBytes[f.storage];
      const span = f.axis === 'element' ? s.elementsPerThread * sb : sb;
      // A windowed field (gradient release: it holds only the launched groups) is read element by
      // element at i − g0·G, which need not be word-aligned: plain words, never vec4.
      const access: Access = k.windowed.includes(f.field)
        ? 'word'
        : span % 16 === 0 && f.axis === 'element'
          ? 'vec4'
          : span % 4 === 0 || !written.has(f.field)
            ? 'word'
            : 'atomic';
      return { ...f, index: i, access, read: read.has(f.field), written: written.has(f.field) };
    });
}

/** The kernel-typed value of a stored element sitting at bit `shift` of the u32 word `w`. */
export function extract(storage: Storage, w: string, shift: string): string {
  switch (storage) {
    case 'f32':
      return `bitcast<f32>(${w})`;
    case 'i32':
      return `bitcast<i32>(${w})`;
    case 'u32':
      return w;
    case 'u16':
      return `extractBits(${w}, ${shift}, 16u)`;
    case 'u8':
      return `extractBits(${w}, ${shift}, 8u)`;
    case 'i16':
      return `extractBits(bitcast<i32>(${w}), ${shift}, 16u)`;
    case 'i8':
      return `extractBits(bitcast<i32>(${w}), ${shift}, 8u)`;
  }
}

/** The stored bits (low bits, as u32) of a value of kernel type `t` going to `storage`. */
export function storedBits(storage: Storage, t: Type, v: string): string {
  const u = t === 'u32' ? v : `bitcast<u32>(${v})`;
  const bits = storageBytes[storage] * 8;
  return bits === 32 ? u : `(${u} & 0x${(2 ** bits - 1).toString(16)}u)`;
}

export const elemMask = (storage: Storage): string => `0x${(2 ** (storageBytes[storage] * 8) - 1).toString(16)}u`;
export const valuesPerWord = (storage: Storage): number => 4 / storageBytes[storage];

/**
 * A group-axis store narrower than a word without contention: the first invocation of the word's
 * first group (in this subgroup and launch) gathers its neighbours' values with subgroupShuffle and
 * stores the whole word; a word split across subgroups or launch edges falls back to and/or atomics
 * on its own bits. `emit` receives the shuffles (every invocation runs them); `at` names word i of
 * the field in its slot.
 */
export function gatheredStore(
  f: FieldLayout,
  at: (i: string) => string,
  bits: string,
  T: number,
  v: string,
  emit: (s: string) => void,
  [lo, hi]: readonly [string, string] = ['P.g0', 'P.g1'],
): string[] {
  const sb = storageBytes[f.storage],
    V = 4 / sb,
    mask = elemMask(f.storage),
    w = `&${at(`g / ${V}u`)}`;
  emit(`let ${v}_0 = ${bits};`);
  for (let q = 1; q < V; q++) emit(`let ${v}_${q} = subgroupShuffle(${v}_0, min(sgi + ${T * q}u, sgs - 1u));`);
  const out = [`let ${v}_q0 = g % ${V}u;`, `if (${v}_q0 == 0u || sgi < ${T}u || g == ${lo}) {`];
  // Groups this writer covers: its own, then while the lane exists and the group is live: in
  // [lo, hi), the launch's groups, or a blocked kernel's piece of its block (blocked.ts).
  out.push(`  var ${v}_n = 1u;`);
  for (let q = 1; q < V; q++)
    out.push(
      `  if (${v}_n == ${q}u && ${v}_q0 + ${q}u < ${V}u && sgi + ${T * q}u < sgs && g + ${q}u < ${hi}) { ${v}_n = ${q + 1}u; }`,
    );
  const word = [...Array(V).keys()].map((q) => (q === 0 ? `${v}_0` : `(${v}_${q} << ${q * sb * 8}u)`)).join(' | ');
  out.push(`  if (${v}_q0 == 0u && ${v}_n == ${V}u) { atomicStore(${w}, ${word}); } else {`);
  for (let q = 0; q < V; q++)
    out.push(
      `    if (${v}_n > ${q}u) { let sh = (${v}_q0 + ${q}u) * ${sb * 8}u; atomicAnd(${w}, ~(${mask} << sh)); atomicOr(${w}, ${v}_${q} << sh); }`,
    );
  out.push('  }', '}');
  return out;
}
