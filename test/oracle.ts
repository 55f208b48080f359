// The IR's own semantics as a Backend: buffers are host typed arrays and every launch runs the
// prepared kernel through the oracle (compiler/ir/interpret.ts). createOptimizer on this backend
// gives the optimizer exactly as semantics.ts defines it, which every real backend is compared
// with (test/conformance-optimizers.test.ts). Slow by design; never a user's backend.

import type { Storage } from '../compiler/ir/ir.ts';
import type { FieldArray, Kernel } from '../compiler/ir/kernel.ts';
import { arrayFor } from '../compiler/ir/kernel.ts';
import { interpret } from '../compiler/ir/interpret.ts';
import type { Prepared, Uniforms } from '../compiler/ir/pipeline.ts';
import { prepare } from '../compiler/ir/pipeline.ts';
import type { Backend, DeviceBuffer, Launch, Program } from '../runtime/backends/backend.ts';
import { BackendError } from '../runtime/backends/backend.ts';

export interface OracleBuffer extends DeviceBuffer {
  readonly data: FieldArray;
  readonly owner: OracleBackend;
}

export class OracleBackend implements Backend<OracleBuffer, Program> {
  readonly name: string = 'oracle (semantics.ts)';
  launches = 0;
  /** Host typed arrays: reduction partials are combined where they are (runtime/reductions.ts). */
  readonly hostMemory: boolean = true;

  alloc(storage: Storage, length: number): OracleBuffer {
    return { storage, length, data: new arrayFor[storage](length), owner: this };
  }

  protected own(b: OracleBuffer | null | undefined, what: string): OracleBuffer {
    if (!b || b.owner !== this) throw new BackendError(`oracle: ${what} is not a buffer of this backend`);
    return b;
  }

  async write(buf: OracleBuffer, data: FieldArray, offset = 0): Promise<void> {
    const b = this.own(buf, 'write target');
    if (offset < 0 || offset + data.length > b.length)
      throw new BackendError(`oracle.write: ${data.length} values at ${offset} overflow a buffer of ${b.length}`);
    b.data.set(data as never, offset);
  }

  async read(buf: OracleBuffer, offset = 0, length = buf.length - offset): Promise<FieldArray> {
    return this.own(buf, 'read source').data.slice(offset, offset + length);
  }

  async compile(kernel: Kernel): Promise<Program> {
    const prepared: Prepared = prepare(kernel);
    return { prepared, source: `// kernel ${kernel.name}: interpreted by compiler/ir/interpret.ts` };
  }

  async run(p: Program, l: Launch<OracleBuffer>): Promise<number[]> {
    this.launches++;
    const cols = p.prepared.columns,
      S = cols.length;
    const rows: Uniforms[] = [];
    for (let r = 0; r * Math.max(S, 1) < Math.max(l.uniforms.length, 1); r++)
      rows.push(Object.fromEntries(cols.map((c, j) => [c, l.uniforms[r * S + j]!])));
    const fields = Object.fromEntries(Object.entries(l.bindings).map(([f, b]) => [f, this.own(b, `field ${f}`).data]));
    return interpret(p.prepared.kernel, {
      fields,
      uniforms: rows,
      rowOf: l.rowOf ? this.own(l.rowOf, 'rowOf').data : null,
      groups: l.groups,
      length: l.length,
    });
  }

  free(): void {}
  dispose(): void {}
}
