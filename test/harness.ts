// Running one random case on a backend and on the oracle, and comparing what they stored. Shared by
// the conformance suite's kernel tests and the backend unit tests that check a hand-written kernel.

import type { FieldArray, Kernel } from '../compiler/ir/kernel.ts';
import { fields } from '../compiler/ir/kernel.ts';
import type { Expr } from '../compiler/ir/ir.ts';
import { children } from '../compiler/ir/ir.ts';
import { interpret } from '../compiler/ir/interpret.ts';
import { uniformTable } from '../compiler/ir/pipeline.ts';
import type { Uniforms } from '../compiler/ir/pipeline.ts';
import type { Backend, DeviceBuffer } from '../runtime/backends/backend.ts';
import type { Case } from './kernels.ts';

export interface Result {
  readonly arrays: Record<string, FieldArray>;
  readonly counters: number[];
  readonly source: string;
}

const copy = (arrays: Readonly<Record<string, FieldArray>>) =>
  Object.fromEntries(Object.entries(arrays).map(([f, a]) => [f, a.slice()])) as Record<string, FieldArray>;

/** The elements a windowed field holds: the launched groups' only. */
function windowOf(c: Case, a: FieldArray): FieldArray {
  const G = c.k.groupSize;
  return a.slice(c.range[0] * G, Math.min(c.n, c.range[1] * G));
}

/**
 * What the oracle stores: every array after the launch (unbound ones unchanged), and the counters;
 * `sumLanes`: the threads a backend splits a group's sum over (interpret.ts).
 */
export function onOracle(c: Case, sumLanes = 1): Result {
  const arrays = copy(c.arrays);
  const bound = { ...arrays, ...Object.fromEntries(c.k.windowed.map((f) => [f, windowOf(c, arrays[f]!)])) };
  const launch = { fields: bound, uniforms: c.rows, rowOf: c.rowOf, groups: c.range, length: c.n, sumLanes };
  const counters = interpret(c.k, launch);
  return { arrays, counters, source: '' };
}

/** The same launch on `backend`: upload, one run, read every bound field back. */
export async function onBackend(backend: Backend, c: Case): Promise<Result> {
  const program = await backend.compile(c.k);
  const arrays = copy(c.arrays);
  const bind: Record<string, DeviceBuffer> = {};
  for (const f of fields(c.k)) {
    const a = c.k.windowed.includes(f.field) ? windowOf(c, arrays[f.field]!) : arrays[f.field]!;
    bind[f.field] = backend.alloc(f.storage, a.length);
    await backend.write(bind[f.field]!, a);
  }
  const rowOf = c.rowOf ? backend.alloc('u32', c.rowOf.length) : null;
  try {
    if (rowOf) await backend.write(rowOf, c.rowOf!);
    const counters = await backend.run(program, {
      bindings: bind,
      uniforms: uniformTable(program.prepared, c.rows),
      rowOf,
      groups: c.range,
      length: c.n,
    });
    for (const [f, b] of Object.entries(bind)) if (!c.k.windowed.includes(f)) arrays[f] = await backend.read(b);
    return { arrays, counters, source: program.source };
  } finally {
    for (const b of Object.values(bind)) backend.free(b);
    if (rowOf) backend.free(rowOf);
  }
}

/** A hand-written kernel over whole arrays, as a Case (one row, all groups). */
export function caseOf(
  k: Kernel,
  arrays: Readonly<Record<string, FieldArray>>,
  n: number,
  rows: readonly Uniforms[] = [{}],
  rowOf: Uint32Array | null = null,
): Case {
  return { k, n, arrays, rows, rowOf, range: [0, Math.ceil(n / k.groupSize)] };
}

/** A stored value as text, −0 included (String(-0) is "0"). */
const signed = (v: number | bigint | undefined) => (Object.is(v, -0) ? '-0' : String(v));

/** Elements where two results differ (NaN equals NaN; −0 differs from +0), with the first few. */
export function differences(got: Result, want: Result, limit = 5): { count: number; total: number; first: string[] } {
  let count = 0,
    total = 0;
  const first: string[] = [];
  for (const [f, a] of Object.entries(want.arrays)) {
    const b = got.arrays[f]!;
    for (let i = 0; i < a.length; i++) {
      total++;
      if (Object.is(a[i], b[i])) continue;
      count++;
      if (first.length < limit) first.push(`${f}[${i}]: ${signed(b[i])} (backend) vs ${signed(a[i])} (oracle)`);
    }
  }
  return { count, total, first };
}

/** An expression as text, for failure messages: `add(mul(a, x), 1.5)`; shared nodes are printed again. */
export function show(e: Expr, depth = 0): string {
  if (depth > 40) return '…';
  switch (e.op) {
    case 'const':
      return e.type === 'f32' ? signed(e.value) : `${e.value}${e.type === 'bool' ? '' : e.type[0]}`;
    case 'load':
      return e.axis === 'group' ? `${e.field}[g]` : e.field;
    case 'uniform':
      return `$${e.name}`;
    case 'unary':
    case 'binary':
      return `${e.fn}(${children(e)
        .map((c) => show(c, depth + 1))
        .join(', ')})`;
    default:
      return `${e.op}<${e.type}>(${children(e)
        .map((c) => show(c, depth + 1))
        .join(', ')})`;
  }
}
