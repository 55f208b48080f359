// What a bound optimizer holds, and the work it does on it, written once as `Work` (runtime/io.ts)
// so each piece runs asynchronously on any backend or synchronously on the JS backend. Nothing
// here queues or validates user input: runtime/session.ts does both and calls in here in order.

import type { FieldArray } from '../compiler/ir/kernel.ts';
import { kernel } from '../compiler/ir/kernel.ts';
import { uniformTable } from '../compiler/ir/pipeline.ts';
import { decodeStored, encodeStored } from '../dsl/codec.ts';
import { field } from '../dsl/ops.ts';
import type { Hyper, OptimizerDef } from '../optim/define.ts';
import { PARAM } from '../optim/fuse.ts';
import type { Codecs } from '../optim/storage.ts';
import type { FieldSlot, Layout, TensorSlot } from './arena.ts';
import type { Backend, DeviceBuffer, Program } from './backends/backend.ts';
import { fromBf16 } from './codecs.ts';
import type { Hypers } from './hypers.ts';
import type { Work } from './io.ts';
import { compile, read, run, write } from './io.ts';
import { NumericsError, numericsProblem } from './numerics.ts';
import type { Resolved } from './options.ts';

export interface StateParts<H extends Hyper> {
  readonly def: OptimizerDef<H>;
  readonly backend: Backend;
  readonly layout: Layout;
  readonly options: Resolved;
  readonly codecs: Codecs;
  readonly slots: readonly FieldSlot[];
  readonly gradSlots: readonly FieldSlot[];
  readonly buffers: Readonly<Record<string, DeviceBuffer>>;
  readonly rowOf: DeviceBuffer;
  readonly program: Program;
  readonly release: Program | null;
  readonly hypers: Hypers<H>;
  readonly schedule: ((step: number) => Partial<H>) | undefined;
  /** The optimizer's lr at creation (decoupleLr scales decay by lr / initialLr). */
  readonly initialLr: number;
  /** Identifies the fused kernel (what a checkpoint must have been saved with). */
  readonly kernelKey: string;
}

export class State<H extends Hyper> implements StateParts<H> {
  readonly def!: OptimizerDef<H>;
  readonly backend!: Backend;
  readonly layout!: Layout;
  readonly options!: Resolved;
  readonly codecs!: Codecs;
  readonly slots!: readonly FieldSlot[];
  readonly gradSlots!: readonly FieldSlot[];
  readonly buffers!: Readonly<Record<string, DeviceBuffer>>;
  readonly rowOf!: DeviceBuffer;
  readonly program!: Program;
  readonly release!: Program | null;
  readonly hypers!: Hypers<H>;
  readonly schedule!: ((step: number) => Partial<H>) | undefined;
  readonly initialLr!: number;
  readonly kernelKey!: string;
  /** Steps taken by each tensor (tensors without a gradient in a step do not advance). */
  readonly steps: Int32Array;
  /** step() calls so far (the schedule's argument). */
  stepCount = 0;

  constructor(parts: StateParts<H>) {
    Object.assign(this, parts);
    this.steps = new Int32Array(parts.layout.tensors.length);
  }

  buffer(name: string): DeviceBuffer {
    const b = this.buffers[name];
    if (!b) throw new RangeError(`unknown field ${name} (fields: ${this.slots.map((s) => s.name).join(', ')})`);
    return b;
  }

  /** One launch of `program` with the uniform rows of this moment; the non-finite count. */
  private *launch(
    program: Program,
    bindings: Readonly<Record<string, DeviceBuffer>>,
    active: (t: TensorSlot) => boolean,
    groups: readonly [number, number],
    sched: Partial<H>,
  ): Work<number> {
    const rows = this.hypers.rows(active, this.steps, sched, this.initialLr);
    if (this.options.checkNumerics) yield* this.checkNumerics(rows, active);
    const counts = (yield run(program, {
      bindings,
      uniforms: uniformTable(program.prepared, rows),
      rowOf: this.rowOf,
      groups,
      length: this.layout.length,
    })) as number[];
    for (const t of this.layout.tensors) if (active(t)) this.steps[t.row]!++;
    return counts[0] ?? 0;
  }

  /** One step over every tensor in `grads` (already validated and in the gradient's storage): ONE launch. */
  *step(grads: ReadonlyMap<TensorSlot, FieldArray>): Work<number> {
    const sched = this.schedule?.(this.stepCount + 1) ?? {};
    const gradBuf = this.buffer(this.gradSlots[0]!.name);
    for (const [t, g] of grads) yield write(gradBuf, g, t.offset);
    const nonFinite = yield* this.launch(
      this.program,
      this.buffers,
      (t) => grads.has(t),
      [0, this.layout.groups],
      sched,
    );
    this.stepCount++;
    return nonFinite;
  }

  /** Gradient release: one tensor, one launch over its groups, its gradient in a buffer of its own. */
  *stepTensor(t: TensorSlot, g: FieldArray): Work<number> {
    const sched = this.schedule?.(this.steps[t.row]! + 1) ?? {};
    const slot = this.gradSlots[0]!;
    if (!this.release) {
      yield write(this.buffer(slot.name), g, t.offset);
      return yield* this.launch(this.program, this.buffers, (x) => x === t, t.groups, sched);
    }
    const gradBuf = this.backend.alloc(slot.storage, (t.groups[1] - t.groups[0]) * this.layout.groupSize);
    try {
      yield write(gradBuf, g, 0);
      return yield* this.launch(
        this.release,
        { ...this.buffers, [slot.name]: gradBuf },
        (x) => x === t,
        t.groups,
        sched,
      );
    } finally {
      this.backend.free(gradBuf);
    }
  }

  /** Max |w| of the current weights (not a cached figure: it moves as training goes). */
  private *checkNumerics(rows: Record<string, number>[], active: (t: TensorSlot) => boolean): Work<void> {
    const all = yield* this.exportFp32();
    const bits = this.options.paramDtype === 'f32' ? 32 : (this.options.masterWeightBits ?? 16);
    for (const t of this.layout.tensors) {
      if (!active(t)) continue;
      const maxAbs = all.get(t.name)!.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      const msg = numericsProblem(t.name, maxAbs, rows[t.row]!['lr'] ?? 0, this.def.numericsK, bits);
      if (msg) throw new NumericsError(msg);
    }
  }

  /** Stored parameters of every tensor (bf16 bits, or f32 with paramDtype 'f32'). */
  *readParams(): Work<Map<string, Uint16Array | Float32Array>> {
    const out = new Map<string, Uint16Array | Float32Array>();
    for (const t of this.layout.tensors)
      out.set(t.name, (yield read(this.buffer(PARAM), t.offset, t.length)) as Uint16Array | Float32Array);
    return out;
  }

  /** Master weights decoded to f32 (bf16 + correction). */
  *exportFp32(): Work<Map<string, Float32Array>> {
    const c = this.codecs.param;
    const k = kernel({
      name: 'export',
      groupSize: this.layout.groupSize,
      outputs: [{ field: 'x', storage: 'f32', axis: 'element', value: decodeStored(PARAM, c) }],
    });
    const program = (yield compile(k)) as Program;
    const x = this.backend.alloc('f32', this.layout.length);
    try {
      yield run(program, {
        bindings: { ...this.buffers, x },
        uniforms: new Float32Array(1),
        rowOf: null,
        groups: [0, this.layout.groups],
        length: this.layout.length,
      });
      const out = new Map<string, Float32Array>();
      for (const t of this.layout.tensors) out.set(t.name, (yield read(x, t.offset, t.length)) as Float32Array);
      return out;
    } finally {
      this.backend.free(x);
    }
  }

  /** Encode values into the parameters: f32 through the param codec, bf16 words with a zero correction. */
  *importValues(values: ReadonlyMap<TensorSlot, Float32Array | Uint16Array>): Work<void> {
    const c = this.codecs.param;
    const k = kernel({
      name: 'import',
      groupSize: this.layout.groupSize,
      outputs: encodeStored(PARAM, c, field('x', 'f32')),
    });
    const program = (yield compile(k)) as Program;
    const x = this.backend.alloc('f32', this.layout.length);
    try {
      for (const [t, v] of values) {
        // bf16 bits widen exactly to f32, and the codec's encode gives them back with a zero correction.
        yield write(x, v instanceof Uint16Array ? fromBf16(v) : v, t.offset);
        yield run(program, {
          bindings: { ...this.buffers, x },
          uniforms: new Float32Array(1),
          rowOf: null,
          groups: t.groups,
          length: this.layout.length,
        });
      }
    } finally {
      this.backend.free(x);
    }
  }

  /** Every buffer back to the backend. */
  free(): void {
    for (const b of Object.values(this.buffers)) this.backend.free(b);
    this.backend.free(this.rowOf);
  }
}
