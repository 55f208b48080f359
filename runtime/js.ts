// The JavaScript backend: buffers are typed arrays on the host, kernels are the functions
// compiler/render/js.ts generates. Always available; the reference the other backends are
// checked against.

import type { FieldArray } from '../compiler/compile.ts';
import { arrayFor, compile } from '../compiler/compile.ts';
import type { Storage } from '../compiler/ir.ts';
import type { Kernel } from '../compiler/kernel.ts';
import type { Backend, DeviceBuffer, Launch, Program } from './backend.ts';
import { BackendError } from './backend.ts';

export interface JsBuffer extends DeviceBuffer { readonly data: FieldArray }
interface JsProgram extends Program { readonly kernel: ReturnType<typeof compile> }

export class JsBackend implements Backend {
  readonly name = 'js';
  launches = 0;

  alloc(storage: Storage, length: number): JsBuffer {
    return { storage, length, data: new arrayFor[storage](length) };
  }

  /** Wrap an existing typed array without copying (the arena's views stay live). */
  wrap(storage: Storage, data: FieldArray): JsBuffer {
    return { storage, length: data.length, data };
  }

  async write(buf: DeviceBuffer, data: FieldArray, offset = 0): Promise<void> {
    const b = buf as JsBuffer;
    if (offset < 0 || offset + data.length > b.length) throw new BackendError(`js.write: ${data.length} values at ${offset} overflow a buffer of ${b.length}`);
    b.data.set(data as never, offset);
  }

  async read(buf: DeviceBuffer, offset = 0, length = buf.length - offset): Promise<FieldArray> {
    return (buf as JsBuffer).data.slice(offset, offset + length);
  }

  async compile(kernel: Kernel): Promise<Program> {
    const k = compile(kernel, { target: 'js' });
    return { prepared: k.prepared, source: k.source, kernel: k } as JsProgram;
  }

  async run(program: Program, l: Launch): Promise<number[]> {
    const k = (program as JsProgram).kernel;
    const F = k.fields.map((f) => {
      const b = l.bindings[f.field] as JsBuffer | undefined;
      if (!b) throw new BackendError(`js.run: field ${f.field} is not bound`);
      return b.data;
    });
    this.launches++;
    const R = l.rowOf ? (l.rowOf as JsBuffer).data : null;
    return k.raw(F, l.uniforms, program.prepared.columns.length, R, l.groups[0], l.groups[1], l.length);
  }

  free(): void {}
  dispose(): void {}
}
