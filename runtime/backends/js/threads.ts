// The multi-threaded JavaScript backend: the same generated kernels as JsBackend, run by a pool of
// worker_threads over SharedArrayBuffer-backed buffers. A kernel's source is sent to each worker
// once; each launch splits its group range into one contiguous slice per worker and sums the
// counters. Groups never share elements and group-axis fields hold one value per group, so the
// slices write disjoint memory and the result is bit-identical to JsBackend's.

import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { compile } from '../../../compiler/render/js/compile.ts';
import type { Storage } from '../../../compiler/ir/ir.ts';
import type { Kernel } from '../../../compiler/ir/kernel.ts';
import { counterValue, fields, storageBytes } from '../../../compiler/ir/kernel.ts';
import type { Counter, FieldArray } from '../../../compiler/ir/kernel.ts';
import type { CompiledKernel } from '../../../compiler/render/js/compile.ts';
import type { Backend, Launch, Program } from '../backend.ts';
import { BackendError } from '../backend.ts';
import type { JsBuffer } from './heap.ts';
import { Heap, arrayBuffer, counterTotals, heapBuffer, launchArrays, launchPointers, own } from './heap.ts';
import type { Engine } from './wasm-module.ts';
import { compileWasm, imports, resolveEngine } from './wasm-module.ts';

// Workers are plain JS (eval'd), so they run the same under node, tsx and vitest. A worker keeps
// the kernels it was sent by id and answers each run with its counters.
const WORKER = `
const { parentPort } = require('node:worker_threads');
const kernels = new Map();
parentPort.on('message', (m) => {
  if (m.type === 'compile') { kernels.set(m.id, new Function(m.source)()); return; }
  if (m.type === 'wasm') {
    // imports() of runtime/backends/js/wasm-module.ts, restated: an eval'd worker imports nothing.
    const env = { mem: m.memory, exp2: (x) => Math.fround(2 ** x), log2: (x) => Math.fround(Math.log2(x)) };
    const run = new WebAssembly.Instance(m.module, { env }).exports.run;
    kernels.set(m.id, { run, memory: m.memory });
    return;
  }
  try {
    const k = kernels.get(m.id);
    let counts;
    if (m.args) { k.run(...m.args); counts = Array.from(new BigInt64Array(k.memory.buffer, m.scr, m.nc), (x) => Number(BigInt.asUintN(32, x))); }
    else counts = k(m.F, m.U, m.S, m.R, m.g0, m.g1, m.n);
    parentPort.postMessage({ seq: m.seq, counts });
  } catch (e) {
    parentPort.postMessage({ seq: m.seq, error: String(e && e.stack || e) });
  }
});
`;

interface Pending {
  resolve(c: number[]): void;
  reject(e: Error): void;
}

class Thread {
  readonly worker = new Worker(WORKER, { eval: true });
  readonly pending = new Map<number, Pending>();
  constructor() {
    this.worker.unref(); // an idle pool must not keep the process alive
    this.worker.on('message', (m: { seq: number; counts?: number[]; error?: string }) => {
      const p = this.pending.get(m.seq);
      if (!p) return;
      this.pending.delete(m.seq);
      if (this.pending.size === 0) this.worker.unref();
      if (m.error !== undefined) p.reject(new BackendError(`js-threads: kernel failed in a worker: ${m.error}`));
      else p.resolve(m.counts!);
    });
    this.worker.on('error', (e) => {
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    });
  }
  /** Settle every launch in flight with `e` (the backend is going away: none may hang). */
  abort(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
  run(seq: number, msg: object): Promise<number[]> {
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref(); // a launch in flight keeps the process alive
      this.pending.set(seq, { resolve, reject });
      this.worker.postMessage(msg);
    });
  }
}

/**
 * Scratch a worker writes every few elements (stashes) must not share a cache line with another
 * worker's, or the two cores trade the line back and forth: a block padded so that its used part
 * starts and ends 128 bytes (a line and its prefetch pair) away from any neighbour.
 */
/** Counters of the slices, added up and wrapped as each counter's type (compiler/ir/kernel.ts). */
const sum = (counters: readonly Counter[], counts: number[][]) =>
  counters.map((c, i) =>
    counterValue(
      c,
      counts.reduce((s, x) => s + x[i]!, 0),
    ),
  );

function privateBlock(heap: Heap, bytes: number): number {
  const at = heap.alloc(bytes + 384);
  return Math.ceil(at / 128) * 128 + 128;
}

export interface ThreadsOptions {
  /** Worker count; default the machine's available parallelism. */
  readonly threads?: number;
  /**
   * Launches smaller than this many groups run on the calling thread: a message round trip to
   * a worker (~50 µs) costs more than a small kernel.
   */
  readonly minGroupsPerThread?: number;
  /** As for JsBackend: 'auto' (default) runs WebAssembly SIMD kernels where the engine has them. */
  readonly engine?: Engine | 'auto';
}

/** A kernel every worker holds under `id`: generated JS, or a WebAssembly module over the shared heap. */
export type ThreadProgram = Program & { readonly id: number; readonly fieldNames: readonly string[] } & (
    | { readonly kind: 'js'; readonly kernel: CompiledKernel }
    | {
        readonly kind: 'wasm';
        readonly local: (...args: number[]) => void; // the calling thread's instance, for small launches
        readonly scratch: readonly number[]; // one per worker, then the calling thread's
      }
  );

export class JsThreadsBackend implements Backend<JsBuffer, ThreadProgram> {
  readonly name: string;
  readonly threads: number;
  readonly engine: Engine;
  launches = 0;
  /** Workers share the backend's memory: reduction partials are combined there (runtime/reductions.ts). */
  readonly hostMemory = true;
  private readonly pool: Thread[];
  private readonly minGroups: number;
  private readonly heap: Heap | null;
  private seq = 0;
  private nextId = 0;
  private disposed = false;
  private readonly sent = new Map<string, number>(); // kernel key → program id known to every worker
  private readonly wasmPrograms = new Map<string, ThreadProgram>();

  constructor(opts: ThreadsOptions = {}) {
    const t = opts.threads ?? availableParallelism();
    if (!Number.isInteger(t) || t < 1)
      throw new RangeError(`JsThreadsBackend: threads must be a positive integer, got ${t}`);
    this.engine = resolveEngine(opts.engine, 'JsThreadsBackend');
    this.threads = t;
    this.name = `js-threads(${t})`;
    this.minGroups = opts.minGroupsPerThread ?? 256;
    // Every worker sees the same shared memory: buffers are written in place by all of them.
    this.heap = this.engine === 'wasm' ? new Heap(true) : null;
    this.pool = Array.from({ length: t }, () => new Thread());
  }

  alloc(storage: Storage, length: number): JsBuffer {
    if (!Number.isInteger(length) || length < 0)
      throw new BackendError(`js-threads.alloc: length must be a non-negative integer, got ${length}`);
    return this.heap ? heapBuffer(this.heap, storage, length) : arrayBuffer(this, storage, length, true);
  }

  async write(buf: JsBuffer, data: FieldArray, offset = 0): Promise<void> {
    const b = own(this.heap ?? this, buf, 'buffer', 'js-threads');
    if (offset < 0 || offset + data.length > b.length)
      throw new BackendError(`js-threads.write: ${data.length} values at ${offset} overflow a buffer of ${b.length}`);
    b.data.set(data as never, offset);
  }

  async read(buf: JsBuffer, offset = 0, length = buf.length - offset): Promise<FieldArray> {
    // slice() of a shared view copies into an ordinary ArrayBuffer: the caller owns the result.
    return own(this.heap ?? this, buf, 'buffer', 'js-threads').data.slice(offset, offset + length);
  }

  async compile(kernel: Kernel): Promise<ThreadProgram> {
    this.live();
    if (this.heap) return this.compileWasm(kernel, this.heap);
    const k = compile(kernel, { target: 'js' });
    let id = this.sent.get(k.prepared.key);
    if (id === undefined) {
      id = this.nextId++;
      this.sent.set(k.prepared.key, id);
      for (const t of this.pool) t.worker.postMessage({ type: 'compile', id, source: k.source });
    }
    return {
      kind: 'js',
      prepared: k.prepared,
      source: k.source,
      id,
      fieldNames: k.fields.map((f) => f.field),
      kernel: k,
    };
  }

  private async compileWasm(kernel: Kernel, heap: Heap): Promise<ThreadProgram> {
    const w = await compileWasm(kernel, { shared: true });
    // The same kernel again (another optimizer on this backend) reuses its program and scratch.
    const hit = this.wasmPrograms.get(w.prepared.key);
    if (hit) return hit;
    const id = this.nextId++;
    for (const t of this.pool) t.worker.postMessage({ type: 'wasm', id, module: w.module, memory: heap.memory });
    const program: ThreadProgram = {
      kind: 'wasm',
      prepared: w.prepared,
      source: w.wat,
      id,
      fieldNames: fields(w.prepared.kernel).map((f) => f.field),
      local: new WebAssembly.Instance(w.module, imports(heap.memory)).exports['run'] as (...args: number[]) => void,
      scratch: Array.from({ length: this.threads + 1 }, () => privateBlock(heap, w.scratchBytes)),
    };
    this.wasmPrograms.set(w.prepared.key, program);
    return program;
  }

  async run(p: ThreadProgram, l: Launch<JsBuffer>): Promise<number[]> {
    this.live();
    if (p.kind === 'wasm') return this.runWasm(p, l, this.heap!);
    const { F, R } = launchArrays(this, p.fieldNames, l, 'js-threads');
    const S = p.prepared.columns.length;
    const [g0, g1] = l.groups;
    this.launches++;
    const parts = this.slices(g0, g1);
    if (!parts) return p.kernel.raw(F, l.uniforms, S, R, g0, g1, l.length);
    const counters = p.prepared.kernel.counters;
    // A windowed field holds only the launch's groups and the kernel indexes it from its own first
    // group (i − g0·G); a slice starting at group a gets a view that starts (a − g0)·G further in.
    const G = p.prepared.kernel.groupSize;
    const windowed = new Set(p.prepared.kernel.windowed);
    return sum(
      counters,
      await Promise.all(
        parts.map(([a, b], w) => {
          const Fw =
            windowed.size === 0
              ? F
              : F.map((f, i) => (windowed.has(p.fieldNames[i]!) ? (f.subarray((a - g0) * G) as FieldArray) : f));
          const seq = this.seq++;
          return this.pool[w]!.run(seq, { seq, id: p.id, F: Fw, U: l.uniforms, S, R, g0: a, g1: b, n: l.length });
        }),
      ),
    );
  }

  /** Split [g0, g1) into one contiguous slice per worker (or none, for a small launch). */
  private slices(g0: number, g1: number): [number, number][] | null {
    const total = g1 - g0;
    const parts = Math.max(1, Math.min(this.threads, Math.floor(total / this.minGroups)));
    if (parts === 1 && total < this.minGroups) return null;
    return Array.from({ length: parts }, (_, w) => [
      g0 + Math.floor((total * w) / parts),
      g0 + Math.floor((total * (w + 1)) / parts),
    ]);
  }

  private async runWasm(p: ThreadProgram & { kind: 'wasm' }, l: Launch<JsBuffer>, heap: Heap): Promise<number[]> {
    const k = p.prepared.kernel,
      G = k.groupSize;
    const { ptrs, R } = launchPointers(heap, p.fieldNames, l, 'js-threads');
    // Each launch gets its own copy of the uniform table, so launches in flight never share one.
    const U = heap.alloc(l.uniforms.byteLength);
    new Float32Array(heap.memory.buffer, U, l.uniforms.length).set(l.uniforms);
    const [g0, g1] = l.groups;
    this.launches++;
    try {
      const parts = this.slices(g0, g1);
      const own = p.scratch[this.threads]!;
      if (!parts) {
        p.local(...ptrs, U, R, g0, g1, l.length, own);
        return counterTotals(heap, own, k.counters);
      }
      // A windowed field holds only the launch's groups from its own first group: a slice starting
      // at group a reads it (a − g0)·G elements further in.
      const bytes = p.fieldNames.map((n) => (k.windowed.includes(n) ? storageBytes[l.bindings[n]!.storage] : 0));
      return sum(
        k.counters,
        await Promise.all(
          parts.map(([a, b], w) => {
            const args = [...ptrs.map((ptr, i) => ptr + (a - g0) * G * bytes[i]!), U, R, a, b, l.length, p.scratch[w]!];
            const seq = this.seq++;
            return this.pool[w]!.run(seq, { seq, id: p.id, args, scr: p.scratch[w]!, nc: k.counters.length });
          }),
        ),
      );
    } finally {
      heap.release(U);
    }
  }

  free(buf: JsBuffer): void {
    if (this.heap && buf.owner === this.heap) this.heap.release(buf.ptr!);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.pool) {
      t.abort(new BackendError(`${this.name}: disposed while a launch was running`));
      void t.worker.terminate();
    }
  }

  private live(): void {
    if (this.disposed) throw new BackendError(`${this.name}: used after dispose()`);
  }
}
