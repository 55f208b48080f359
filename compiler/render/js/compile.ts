// compile(kernel, { target }) → a runnable kernel with its source, cached by structural key.
// Uniforms are data, not source: changing a learning rate between calls never compiles.

import type { FieldArray, FieldRef, Kernel } from '../../ir/kernel.ts';
import { arrayFor, fields, storageBytes } from '../../ir/kernel.ts';
import type { Prepared, Uniforms } from '../../ir/pipeline.ts';
import { prepare, uniformTable as table } from '../../ir/pipeline.ts';
import { renderJs } from './render.ts';

export interface RunArgs {
  /** The arrays of every field the kernel touches, by name; outputs are written in place. */
  readonly fields: Readonly<Record<string, FieldArray>>;
  /** One set of uniforms, or one per row (parameter group) with `rowOf` giving each group's row. */
  readonly uniforms?: Uniforms | readonly Uniforms[];
  readonly rowOf?: Uint8Array | Uint16Array | Uint32Array;
  /** Groups to run, [start, end); default all. */
  readonly groups?: readonly [number, number];
  /** Element count; default the length of the first element field. */
  readonly length?: number;
}

type RawKernel = (
  F: FieldArray[],
  U: Float32Array,
  S: number,
  R: ArrayLike<number> | null,
  g0: number,
  g1: number,
  n: number,
) => number[];

export interface CompiledKernel {
  readonly target: 'js';
  readonly source: string;
  readonly prepared: Prepared;
  readonly fields: readonly FieldRef[];
  /** Build the uniform table (rows × columns, f32) from user uniforms: derived ones are computed here. */
  uniformTable(rows: readonly Uniforms[]): Float32Array;
  run(args: RunArgs): { counters: Record<string, number> };
  /** The generated function itself, for runtimes that manage their own tables. */
  readonly raw: RawKernel;
}

export const compileStats = { hits: 0, misses: 0 };
const byKey = new Map<string, CompiledKernel>();
const byKernel = new WeakMap<Kernel, CompiledKernel>();

export function compile(k: Kernel, opts: { target: 'js' } = { target: 'js' }): CompiledKernel {
  if (opts.target !== 'js') throw new RangeError(`compile: target ${String(opts.target)} is not available here (js)`);
  const known = byKernel.get(k);
  if (known) {
    compileStats.hits++;
    return known;
  }
  const prepared = prepare(k);
  const key = `js#${prepared.key}`;
  let c = byKey.get(key);
  if (c) compileStats.hits++;
  else {
    compileStats.misses++;
    c = build(prepared);
    byKey.set(key, c);
  }
  byKernel.set(k, c);
  return c;
}

function build(p: Prepared): CompiledKernel {
  const source = renderJs(p);
  const raw = new Function(source)() as RawKernel;
  const fs = fields(p.kernel);
  const G = p.kernel.groupSize;
  const uniformTable = (rows: readonly Uniforms[]) => table(p, rows);
  const run = (args: RunArgs) => {
    const F = fs.map((f) => {
      const a = args.fields[f.field];
      if (!a) throw new RangeError(`kernel ${p.kernel.name}: field ${f.field} is missing`);
      if (a.BYTES_PER_ELEMENT !== storageBytes[f.storage] || !(a instanceof arrayFor[f.storage]))
        throw new TypeError(
          `kernel ${p.kernel.name}: field ${f.field} must be a ${arrayFor[f.storage].name}, got ${a.constructor.name}`,
        );
      return a;
    });
    const first = fs.findIndex((f) => f.axis === 'element');
    const n = args.length ?? (first >= 0 ? F[first]!.length : (F[0]?.length ?? 0) * G);
    const nGroups = Math.ceil(n / G);
    const [g0, g1] = args.groups ?? [0, nGroups];
    fs.forEach((f, i) => {
      const need = p.kernel.windowed.includes(f.field)
        ? Math.min(n, g1 * G) - g0 * G
        : f.axis === 'element'
          ? n
          : nGroups;
      if (F[i]!.length < need)
        throw new RangeError(`kernel ${p.kernel.name}: field ${f.field} has ${F[i]!.length} entries, needs ${need}`);
    });
    if (!(Number.isInteger(g0) && Number.isInteger(g1) && 0 <= g0 && g0 <= g1 && g1 <= nGroups))
      throw new RangeError(`kernel ${p.kernel.name}: groups [${g0}, ${g1}) outside [0, ${nGroups})`);
    const rows =
      args.uniforms === undefined
        ? [{}]
        : Array.isArray(args.uniforms)
          ? (args.uniforms as Uniforms[])
          : [args.uniforms as Uniforms];
    if (rows.length > 1 && !args.rowOf)
      throw new RangeError(`kernel ${p.kernel.name}: ${rows.length} uniform rows need rowOf`);
    if (args.rowOf && args.rowOf.length < g1)
      throw new RangeError(
        `kernel ${p.kernel.name}: rowOf has ${args.rowOf.length} entries, needs ${g1} (one per group)`,
      );
    if (args.rowOf)
      for (let g = g0; g < g1; g++)
        if (args.rowOf[g]! >= rows.length)
          throw new RangeError(
            `kernel ${p.kernel.name}: rowOf[${g}] = ${args.rowOf[g]} but there are ${rows.length} uniform rows`,
          );
    const counts = raw(F, uniformTable(rows), p.columns.length, args.rowOf ?? null, g0, g1, n);
    return { counters: Object.fromEntries(p.kernel.counters.map((c, i) => [c.name, counts[i]!])) };
  };
  return { target: 'js', source, prepared: p, fields: fs, uniformTable, run, raw };
}
