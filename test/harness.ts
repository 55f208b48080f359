// Running one kernel on any Backend from host arrays, and comparing stored results: what the
// conformance suite and bench/gpu.ts share.

import { compile } from '../compiler/render/js/compile.ts';
import type { Kernel } from '../compiler/ir/kernel.ts';
import { fields } from '../compiler/ir/kernel.ts';
import type { Backend, DeviceBuffer, Program } from '../runtime/backends/backend.ts';
import type { FieldArray } from '../compiler/ir/kernel.ts';
import type { Uniforms } from '../compiler/ir/pipeline.ts';

export interface Resident {
  readonly program: Program;
  readonly buffers: Record<string, DeviceBuffer>;
  readonly rowOf: DeviceBuffer | null;
  /** One launch over `groups` (default all) with these uniform rows; resolves to the counters. */
  step(rows: readonly Uniforms[], groups?: readonly [number, number]): Promise<number[]>;
  read(): Promise<Record<string, FieldArray>>;
  free(): void;
}

/** Upload `data` (every field the kernel touches) to `backend` and keep it there. */
export async function resident(backend: Backend, k: Kernel, data: Readonly<Record<string, FieldArray>>, length: number, rowOf?: Uint32Array): Promise<Resident> {
  const program = await backend.compile(k);
  const buffers: Record<string, DeviceBuffer> = {};
  for (const f of fields(k)) {
    const a = data[f.field];
    if (!a) throw new RangeError(`resident: no data for field ${f.field}`);
    buffers[f.field] = backend.alloc(f.storage, a.length);
    await backend.write(buffers[f.field]!, a);
  }
  let rows: DeviceBuffer | null = null;
  if (rowOf) { rows = backend.alloc('u32', rowOf.length); await backend.write(rows, rowOf); }
  const table = compile(k).uniformTable;
  const nGroups = Math.ceil(length / k.groupSize);
  return {
    program, buffers, rowOf: rows,
    step: (r, groups = [0, nGroups]) => backend.run(program, { bindings: buffers, uniforms: table(r), rowOf: rows, groups, length }),
    read: async () => Object.fromEntries(await Promise.all(Object.entries(buffers).map(async ([n, b]) => [n, await backend.read(b)] as const))),
    free: () => { for (const b of Object.values(buffers)) backend.free(b); if (rows) backend.free(rows); },
  };
}

/** Indices where two stored arrays differ (NaN equals NaN; −0 differs from +0). */
export function differences(a: FieldArray, b: FieldArray, limit = 5): { count: number; first: { i: number; a: number; b: number }[] } {
  const first: { i: number; a: number; b: number }[] = [];
  let count = 0;
  for (let i = 0; i < a.length; i++) {
    if (Object.is(a[i], b[i])) continue;
    count++;
    if (first.length < limit) first.push({ i, a: a[i]!, b: b[i]! });
  }
  return { count, first };
}
