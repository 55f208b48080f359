// Table lookups for 8-bit fields: an f32 subexpression whose only input is one u8/i8 element field
// (no uniforms, no other field) has at most 256 values, so it becomes a 256-entry table computed
// on the host by the oracle (compiler/ir/semantics.ts) and read with the stored byte as the index.
// For the codecs this replaces a decode's divisions (code/127, the softsign inverse y/(2 − |y|))
// with one cached load, and the result is bit-identical to the JS backend by construction.

import type { Expr, Load } from '../../ir/ir.ts';
import { children, topo } from '../../ir/ir.ts';
import { evaluate } from '../../ir/semantics.ts';

export interface Table {
  readonly expr: Expr;
  readonly load: Load;
  /** Entry offset of this table in the tables buffer (256 entries each). */
  readonly offset: number;
}

/** Maximal f32 subexpressions of `roots` that depend on exactly one 8-bit element field. */
export function findTables(roots: readonly Expr[]): Table[] {
  const only = new Map<Expr, Load | null | 'const'>();
  const size = new Map<Expr, number>();
  const order = topo(roots);
  for (const e of order) {
    const kids = children(e);
    size.set(e, 1 + kids.reduce((s, c) => s + size.get(c)!, 0));
    if (e.op === 'const') {
      only.set(e, 'const');
      continue;
    }
    if (e.op === 'load') {
      only.set(e, e.axis === 'element' && (e.storage === 'u8' || e.storage === 'i8') ? e : null);
      continue;
    }
    if (e.op === 'uniform' || e.op === 'groupMax' || e.op === 'groupSum') {
      only.set(e, null);
      continue;
    }
    let src: Load | 'const' = 'const',
      ok = true;
    for (const c of kids) {
      const s = only.get(c)!;
      if (s === null || (s !== 'const' && src !== 'const' && s !== src)) {
        ok = false;
        break;
      }
      if (s !== 'const') src = s;
    }
    only.set(e, ok ? src : null);
  }
  const candidate = (e: Expr) =>
    e.type === 'f32' && typeof only.get(e) === 'object' && only.get(e) !== null && size.get(e)! >= 4;
  // Maximal: some use of it is not itself a candidate (or it is a root).
  const maximal = new Set<Expr>(roots.filter(candidate));
  for (const e of order) if (!candidate(e)) for (const c of children(e)) if (candidate(c)) maximal.add(c);
  return [...maximal].map((expr, i) => ({ expr, load: only.get(expr) as Load, offset: i * 256 }));
}

/** The tables' entries: entry b of a table is its expression with the field's stored byte = b. */
export function tableEntries(tables: readonly Table[]): Float32Array {
  const out = new Float32Array(Math.max(1, tables.length) * 256);
  for (const t of tables)
    for (let b = 0; b < 256; b++) {
      const value = t.load.storage === 'i8' ? (b << 24) >> 24 : b;
      out[t.offset + b] = evaluate(t.expr, { load: () => value, uniform: () => NaN });
    }
  return out;
}
