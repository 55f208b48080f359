// The JavaScript backend: runs anywhere JavaScript runs, nothing to install. Two engines render
// the same IR:
//   'wasm' (the default where WebAssembly SIMD exists: Node ≥ 16, current browsers): buffers live
//          in one WebAssembly.Memory and each kernel is a WebAssembly SIMD module
//          (compiler/render/wasm/render.ts), four elements per instruction with native f32 arithmetic;
//   'js':  buffers are typed arrays and kernels are generated JavaScript (compiler/render/js/render.ts),
//          the reference every other backend is checked against.
// Both give bit-identical results (test/conformance.test.ts, props/render-wasm.prop.ts).

import type { Storage } from '../../../compiler/ir/ir.ts';
import type { FieldArray, Kernel } from '../../../compiler/ir/kernel.ts';
import { fields } from '../../../compiler/ir/kernel.ts';
import type { CompiledKernel } from '../../../compiler/render/js/compile.ts';
import { compile } from '../../../compiler/render/js/compile.ts';
import type { Backend, Launch, Program } from '../backend.ts';
import { BackendError } from '../backend.ts';
import type { JsBuffer } from './heap.ts';
import { Heap, arrayBuffer, counterTotals, heapBuffer, launchArrays, launchPointers, own } from './heap.ts';
import type { Engine } from './wasm-module.ts';
import { compileWasm, imports, resolveEngine } from './wasm-module.ts';

export type { Engine, JsBuffer };
export interface JsBackendOptions {
  /** 'auto' (default): 'wasm' where the engine has WebAssembly SIMD, else 'js'. */
  readonly engine?: Engine | 'auto';
}

/** A kernel compiled by a JS backend: a generated function (engine 'js') or a WebAssembly instance. */
export type JsProgram =
  | (Program & { readonly kind: 'js'; readonly kernel: CompiledKernel })
  | (Program & {
      readonly kind: 'wasm';
      readonly run: (...args: number[]) => void;
      readonly fieldNames: readonly string[];
      /** Address of this program's scratch (counter totals, stashes) in the heap. */
      readonly scratch: number;
    });

export class JsBackend implements Backend<JsBuffer, JsProgram> {
  readonly name: string;
  readonly engine: Engine;
  launches = 0;
  /** Why the last kernel ran as generated JS under engine 'auto' (null: none did). */
  fallback: string | null = null;
  private readonly explicit: boolean;
  private readonly heap: Heap | null;
  private table = { at: 0, bytes: 0 }; // the uniform table's home in the heap, grown on demand

  constructor(opts: JsBackendOptions = {}) {
    this.engine = resolveEngine(opts.engine, 'JsBackend');
    this.name = this.engine === 'wasm' ? 'js' : 'js (engine js)';
    this.heap = this.engine === 'wasm' ? new Heap() : null;
    this.explicit = opts.engine === 'wasm';
  }

  alloc(storage: Storage, length: number): JsBuffer {
    if (!Number.isInteger(length) || length < 0)
      throw new BackendError(`js.alloc: length must be a non-negative integer, got ${length}`);
    return this.heap ? heapBuffer(this.heap, storage, length) : arrayBuffer(this, storage, length);
  }

  async write(buf: JsBuffer, data: FieldArray, offset = 0): Promise<void> {
    const b = own(this.heap ?? this, buf, 'buffer', 'js');
    if (offset < 0 || offset + data.length > b.length)
      throw new BackendError(`js.write: ${data.length} values at ${offset} overflow a buffer of ${b.length}`);
    b.data.set(data as never, offset);
  }

  async read(buf: JsBuffer, offset = 0, length = buf.length - offset): Promise<FieldArray> {
    return own(this.heap ?? this, buf, 'buffer', 'js').data.slice(offset, offset + length);
  }

  async compile(kernel: Kernel): Promise<JsProgram> {
    const asJs = (): JsProgram => {
      const k = compile(kernel, { target: 'js' });
      return { kind: 'js', prepared: k.prepared, source: k.source, kernel: k };
    };
    if (!this.heap) return asJs();
    let w: Awaited<ReturnType<typeof compileWasm>>;
    try {
      w = await compileWasm(kernel);
    } catch (e) {
      // 'auto' keeps working where wabt cannot load (an unusual bundle): generated JS runs on
      // the same heap views, bit-identical, only slower. An explicit 'wasm' engine says why.
      if (this.explicit)
        throw new BackendError(`js: compiling kernel ${kernel.name} to WebAssembly failed: ${(e as Error).message}`);
      this.fallback = (e as Error).message;
      return asJs();
    }
    const instance = new WebAssembly.Instance(w.module, imports(this.heap.memory));
    return {
      kind: 'wasm',
      prepared: w.prepared,
      source: w.wat,
      run: instance.exports['run'] as (...args: number[]) => void,
      fieldNames: fields(w.prepared.kernel).map((f) => f.field),
      scratch: this.heap.alloc(w.scratchBytes),
    };
  }

  async run(p: JsProgram, l: Launch<JsBuffer>): Promise<number[]> {
    this.launches++;
    if (p.kind === 'js') {
      const k = p.kernel;
      const { F, R } = launchArrays(
        this.heap ?? this,
        k.fields.map((f) => f.field),
        l,
        'js',
      );
      return k.raw(F, l.uniforms, p.prepared.columns.length, R, l.groups[0], l.groups[1], l.length);
    }
    const heap = this.heap!;
    const { ptrs, R } = launchPointers(heap, p.fieldNames, l, 'js');
    if (l.uniforms.byteLength > this.table.bytes) {
      if (this.table.at) heap.release(this.table.at);
      this.table = { at: heap.alloc(l.uniforms.byteLength), bytes: Math.max(16, l.uniforms.byteLength) };
    }
    new Float32Array(heap.memory.buffer, this.table.at, l.uniforms.length).set(l.uniforms);
    p.run(...ptrs, this.table.at, R, l.groups[0], l.groups[1], l.length, p.scratch);
    return counterTotals(heap, p.scratch, p.prepared.kernel.counters);
  }

  free(buf: JsBuffer): void {
    if (this.heap && buf.owner === this.heap) this.heap.release(buf.ptr!);
  }

  dispose(): void {}
}
