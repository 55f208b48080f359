// The JavaScript backend: runs anywhere JavaScript runs, nothing to install. Two engines render
// the same IR:
//   'wasm' (the default where WebAssembly SIMD exists: Node ≥ 16, current browsers): buffers live
//          in one WebAssembly.Memory and each kernel is a WebAssembly SIMD module
//          (compiler/render/wasm/render.ts), four elements per instruction with native f32 arithmetic;
//   'js':  buffers are typed arrays and kernels are generated JavaScript (compiler/render/js/render.ts),
//          the reference every other backend is checked against.
// Both give bit-identical results (test/conformance-kernels.test.ts compares each with the oracle).
// The backend also works synchronously (SyncBackend), which the TF.js adapter relies on.

import type { Storage } from '../../../compiler/ir/ir.ts';
import type { FieldArray, Kernel } from '../../../compiler/ir/kernel.ts';
import { fields } from '../../../compiler/ir/kernel.ts';
import type { CompiledKernel } from '../../../compiler/render/js/compile.ts';
import { compile } from '../../../compiler/render/js/compile.ts';
import type { Launch, Program, SyncBackend } from '../backend.ts';
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

/** The WebAssembly half of a program: an instance over the backend's heap and its scratch. */
interface WasmPart {
  readonly run: (...args: number[]) => void;
  readonly fieldNames: readonly string[];
  /** Address of this program's scratch (counter totals, stashes) in the heap. */
  readonly scratch: number;
  readonly wat: string;
}

/**
 * A kernel compiled by a JS backend: always its generated function, and with the 'wasm' engine its
 * WebAssembly instance once that is compiled. Both run on the same buffers and are bit-identical,
 * so a program made synchronously (compileSync) runs generated JS until its module is ready.
 */
export interface JsProgram extends Program {
  readonly kernel: CompiledKernel;
  wasm: WasmPart | null;
}

export class JsBackend implements SyncBackend<JsBuffer, JsProgram> {
  readonly name: string;
  readonly engine: Engine;
  launches = 0;
  readonly hostMemory: boolean = true;
  /** Why the last kernel ran as generated JS under engine 'auto' (null: none did). */
  fallback: string | null = null;
  private readonly explicit: boolean;
  private readonly heap: Heap | null;
  private table = { at: 0, bytes: 0 }; // the uniform table's home in the heap, grown on demand
  /** Programs by kernel key: compiling a kernel again (another optimizer) costs no new scratch. */
  private readonly programs = new Map<string, { program: JsProgram; wasm: Promise<void> }>();

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

  writeSync(buf: JsBuffer, data: FieldArray, offset = 0): void {
    const b = own(this.heap ?? this, buf, 'buffer', 'js');
    if (offset < 0 || offset + data.length > b.length)
      throw new BackendError(`js.write: ${data.length} values at ${offset} overflow a buffer of ${b.length}`);
    b.data.set(data as never, offset);
  }

  readSync(buf: JsBuffer, offset = 0, length = buf.length - offset): FieldArray {
    const b = own(this.heap ?? this, buf, 'buffer', 'js');
    if (offset < 0 || length < 0 || offset + length > b.length)
      throw new BackendError(`js.read: [${offset}, ${offset + length}) is outside a buffer of ${b.length}`);
    return b.data.slice(offset, offset + length);
  }

  async write(buf: JsBuffer, data: FieldArray, offset = 0): Promise<void> {
    this.writeSync(buf, data, offset);
  }

  async read(buf: JsBuffer, offset = 0, length = buf.length - offset): Promise<FieldArray> {
    return this.readSync(buf, offset, length);
  }

  /** The program now (generated JS first with the wasm engine; its module follows). */
  compileSync(kernel: Kernel): JsProgram {
    return this.entry(kernel).program;
  }

  /** The program with its WebAssembly module ready (engine 'wasm'). */
  async compile(kernel: Kernel): Promise<JsProgram> {
    const e = this.entry(kernel);
    await e.wasm;
    return e.program;
  }

  private entry(kernel: Kernel): { program: JsProgram; wasm: Promise<void> } {
    const k = compile(kernel, { target: 'js' });
    const hit = this.programs.get(k.prepared.key);
    if (hit) return hit;
    const program: JsProgram = {
      prepared: k.prepared,
      kernel: k,
      wasm: null,
      get source() {
        return this.wasm?.wat ?? k.source;
      },
    };
    const heap = this.heap;
    const wasm = !heap
      ? Promise.resolve()
      : compileWasm(kernel).then(
          (w) => {
            const instance = new WebAssembly.Instance(w.module, imports(heap.memory));
            program.wasm = {
              run: instance.exports['run'] as (...args: number[]) => void,
              fieldNames: fields(w.prepared.kernel).map((f) => f.field),
              scratch: heap.alloc(w.scratchBytes),
              wat: w.wat,
            };
          },
          (e: Error) => {
            // 'auto' keeps working where wabt cannot load (an unusual bundle): generated JS runs on
            // the same heap views, bit-identical, only slower. An explicit 'wasm' engine says why.
            this.fallback = e.message;
            this.programs.delete(k.prepared.key);
            if (this.explicit)
              throw new BackendError(`js: compiling kernel ${kernel.name} to WebAssembly failed: ${e.message}`);
          },
        );
    const e = { program, wasm };
    this.programs.set(k.prepared.key, e);
    wasm.catch(() => {}); // compileSync's callers never await it; compile's callers get the error
    return e;
  }

  runSync(p: JsProgram, l: Launch<JsBuffer>): number[] {
    this.launches++;
    if (!p.wasm) {
      const k = p.kernel;
      const { F, R } = launchArrays(
        this.heap ?? this,
        k.fields.map((f) => f.field),
        l,
        'js',
      );
      return k.raw(F, l.uniforms, p.prepared.columns.length, R, l.groups[0], l.groups[1], l.length);
    }
    const heap = this.heap!,
      w = p.wasm;
    const { ptrs, R } = launchPointers(heap, w.fieldNames, l, 'js');
    if (l.uniforms.byteLength > this.table.bytes) {
      if (this.table.at) heap.release(this.table.at);
      this.table = { at: heap.alloc(l.uniforms.byteLength), bytes: Math.max(16, l.uniforms.byteLength) };
    }
    new Float32Array(heap.memory.buffer, this.table.at, l.uniforms.length).set(l.uniforms);
    w.run(...ptrs, this.table.at, R, l.groups[0], l.groups[1], l.length, w.scratch);
    return counterTotals(heap, w.scratch, p.prepared.kernel.counters);
  }

  async run(p: JsProgram, l: Launch<JsBuffer>): Promise<number[]> {
    return this.runSync(p, l);
  }

  free(buf: JsBuffer): void {
    if (this.heap && buf.owner === this.heap) this.heap.release(buf.ptr!);
  }

  dispose(): void {}
}
