// The stores of the WGSL kernel template (render.ts): each output's bits packed into its words and
// written through its slot (slots.ts). A thread whose span lies wholly inside the launch writes
// whole words (or vec4s); the last thread of a launch merges its live elements into the old words
// and writes no word that holds none of them: with fields packed into one binding, a word past a
// field's end can be another field's live data, and robust access may redirect an out-of-range
// store onto a live word. Group-axis stores are the group's first thread's.

import type { Expr } from '../../ir/ir.ts';
import type { Kernel } from '../../ir/kernel.ts';
import { elementwise, storageBytes } from '../../ir/kernel.ts';
import type { Access, FieldLayout } from './layout.ts';
import { elemMask, gatheredStore, storedBits, valuesPerWord } from './layout.ts';

/**
 * An element output kept where a per-thread condition is false (select(c, v, its own stored
 * value): a row that sits the step out, optim/fuse.ts) becomes v, stored only where c holds: no
 * select and no old value an element. Returns the kernel with those outputs and each field's c.
 */
export function guardedStores(k: Kernel): { k: Kernel; guards: Map<string, Expr> } {
  const guards = new Map<string, Expr>(),
    memo = new Map<Expr, boolean>();
  const outputs = k.outputs.map((o) => {
    const v = o.value;
    if (o.axis !== 'element' || v.op !== 'select' || elementwise(v.cond, memo)) return o;
    if (v.b.op !== 'load' || v.b.field !== o.field || k.windowed.includes(o.field)) return o;
    guards.set(o.field, v.cond);
    return { ...o, value: v.a };
  });
  return { k: { ...k, outputs }, guards };
}

export interface StoreContext {
  readonly k: Kernel;
  /** Elements a thread, threads a group. */
  readonly E: number;
  readonly T: number;
  readonly byField: ReadonlyMap<string, FieldLayout>;
  /** The WGSL name of `e`'s value for element j of the thread. */
  ref(e: Expr, j: number): string;
  /** How the field is reached through its slot. */
  access(f: FieldLayout): Access;
  /** Unit `i` (vec4 or word, as its slot holds) of field f. */
  at(f: FieldLayout, i: string): string;
  emit(s: string): void;
  /** The live groups [lo, hi): the launch's (default), or a blocked kernel's piece of its block. */
  readonly live?: readonly [string, string];
  /** Each group's stores are its own (a split's fallback: other groups' lanes may have left). */
  readonly ownGroup?: boolean;
  /** An element field's guard (guardedStores), as WGSL: its stores run where it holds. */
  readonly guard?: (field: string) => string | undefined;
}

/** Lines `xs` inside `if (g)`, or as they are without a guard. */
const inside = (g: string | undefined, xs: string[]): string[] =>
  g ? [`if (${g}) {`, ...xs.map((x) => '  ' + x), '}'] : xs;

/** The stores' lines (shuffles they need go to `emit` first, run by every invocation). */
export function storeBlock(c: StoreContext): string[] {
  const { k, E, T, ref } = c;
  const J = [...Array(E).keys()];
  const fullAll: string[] = [],
    partialAll: string[] = [],
    groupStores: string[] = [];
  for (const out of k.outputs) {
    const f = c.byField.get(out.field)!,
      a = c.access(f),
      at = (i: string) => c.at(f, i);
    const sb = storageBytes[f.storage];
    if (f.axis === 'group') {
      const bits = storedBits(f.storage, out.value.type, ref(out.value, 0));
      if (sb === 4) groupStores.push(a === 'atomic' ? `atomicStore(&${at('g')}, ${bits});` : `${at('g')} = ${bits};`);
      else if (T > 1 && !c.ownGroup) groupStores.push(...gatheredStore(f, at, bits, T, `b${f.index}`, c.emit, c.live));
      else {
        const sh = `(((g * ${sb}u) % 4u) * 8u)`;
        groupStores.push(`atomicAnd(&${at(`g * ${sb}u / 4u`)}, ~(${elemMask(f.storage)} << ${sh}));`);
        groupStores.push(`atomicOr(&${at(`g * ${sb}u / 4u`)}, ${bits} << ${sh});`);
      }
      continue;
    }
    const bits = J.map((j) => storedBits(f.storage, out.value.type, ref(out.value, j)));
    // This field's stores, inside `if (guard)` where it has one (guardedStores).
    const full: string[] = [],
      partial: string[] = [];
    const g = c.guard?.(out.field);
    const flush = () => {
      fullAll.push(...inside(g, full));
      partialAll.push(...inside(g, partial));
    };
    if (a === 'atomic') {
      for (const j of J) {
        const i = `(e0 + ${j}u)`,
          sh = `(((${i} * ${sb}u) % 4u) * 8u)`,
          w = `&${at(`${i} * ${sb}u / 4u`)}`;
        const s = `if (v${j}) { atomicAnd(${w}, ~(${elemMask(f.storage)} << ${sh})); atomicOr(${w}, ${bits[j]} << ${sh}); }`;
        full.push(s);
        partial.push(s);
      }
      flush();
      continue;
    }
    const per = valuesPerWord(f.storage);
    const words = [...Array((E * sb) / 4).keys()].map((w) => {
      const parts = [...Array(per).keys()].map((q) =>
        q === 0 ? bits[w * per]! : `(${bits[w * per + q]} << ${q * sb * 8}u)`,
      );
      return {
        word: `(${parts.join(' | ')})`,
        mask: [...Array(per).keys()]
          .map((q) => `select(0u, ${elemMask(f.storage)} << ${q * sb * 8}u, v${w * per + q})`)
          .join(' | '),
      };
    });
    const step = a === 'vec4' ? 4 : 1,
      per16 = a === 'vec4' ? 16 : 4;
    for (let w = 0; w < words.length; w += step) {
      const ix = at(`e0 * ${sb}u / ${per16}u + ${w / step}u`);
      const ws = words.slice(w, w + step);
      const pack = (xs: string[]) => (step === 4 ? `vec4<u32>(${xs.join(', ')})` : xs[0]!);
      full.push(`${ix} = ${pack(ws.map((x) => x.word))};`);
      // Elements are live in order (v_j is e0 + j < n): the unit's first element decides.
      partial.push(
        `if (v${w * per}) { let old = ${ix}; ${ix} = ${pack(ws.map((x, q) => `(${x.word} & (${x.mask})) | (old${step === 4 ? `[${q}]` : ''} & ~(${x.mask}))`))}; }`,
      );
    }
    flush();
  }
  const out = ['if (live) {', `  if (e0 + ${E}u <= P.n) {`, ...fullAll.map((s) => '    ' + s), '  } else {'];
  out.push(...partialAll.map((s) => '    ' + s), '  }');
  if (groupStores.length) out.push(`  if (t == 0u) {`, ...groupStores.map((s) => '    ' + s), '  }');
  out.push('}');
  return out;
}
