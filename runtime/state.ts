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
import type { Storage } from '../compiler/ir/ir.ts';
import type { Backend, DeviceBuffer, Item, Launch, Program } from './backends/backend.ts';
import { fromBf16 } from './codecs.ts';
import type { Gradient } from './gradients.ts';
import { gradientIn, intake, nonFiniteCheck } from './gradients.ts';
import { releasedStep } from './release.ts';
import type { Hypers } from './hypers.ts';
import type { Work } from './io.ts';
import { compile, read, run, submit, write } from './io.ts';
import { NonFiniteError, NumericsError, countNonFinite, numericsProblem } from './numerics.ts';
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
  /** The kernels' counters (u32 nonFinite), accumulated on the device until read. */
  readonly counters: DeviceBuffer;
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
  readonly counters!: DeviceBuffer;
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
  /** Non-finite gradient values counted so far, and the device counter's value when last read. */
  private nonFiniteSeen = 0;
  private nonFiniteRaw = 0;
  /** Conversion kernels for device gradients, by source storage (compiled on first use). */
  private readonly converters = new Map<Storage, Program>();

  constructor(parts: StateParts<H>) {
    Object.assign(this, parts);
    this.steps = new Int32Array(parts.layout.tensors.length);
  }

  buffer(name: string): DeviceBuffer {
    const b = this.buffers[name];
    if (!b) throw new RangeError(`unknown field ${name} (fields: ${this.slots.map((s) => s.name).join(', ')})`);
    return b;
  }

  /** The launch of `program` over `groups` with the uniform rows of this moment (checked first when asked). */
  *launchOf(
    program: Program,
    bindings: Readonly<Record<string, DeviceBuffer>>,
    active: (t: TensorSlot) => boolean,
    groups: readonly [number, number],
    sched: Partial<H>,
    length = this.layout.length,
  ): Work<Launch> {
    const rows = this.hypers.rows(active, this.steps, sched, this.initialLr);
    if (this.options.checkNumerics) yield* this.checkNumerics(rows, active);
    return {
      bindings,
      uniforms: uniformTable(program.prepared, rows),
      rowOf: this.rowOf,
      groups,
      length,
      counters: this.counters,
    };
  }

  /** Send `items` then `launch` (one submission when there are items), and count the active tensors' steps. */
  private *send(
    items: readonly Item[],
    program: Program,
    launch: Launch,
    active: (t: TensorSlot) => boolean,
  ): Work<void> {
    if (items.length) yield submit([...items, { program, launch }]);
    else yield run(program, launch);
    for (const t of this.layout.tensors) if (active(t)) this.steps[t.row]!++;
  }

  /** What moves each device gradient into the arena (nothing for host gradients, written here). */
  private *gradientItems(grads: ReadonlyMap<TensorSlot, Gradient>): Work<Item[]> {
    const slot = this.gradSlots[0]!,
      grad = this.buffer(slot.name);
    const items: Item[] = [];
    for (const [t, g] of grads) {
      if ('host' in g) {
        yield write(grad, g.host, t.offset);
        continue;
      }
      const s = g.device.storage;
      if (!this.converters.has(s))
        this.converters.set(s, (yield compile(gradientIn(s, this.codecs.grad, this.layout.groupSize))) as Program);
      const target = { backend: this.backend, grad, at: t.offset, length: t.length, groups: t.groups };
      items.push(...intake(target, g.device, () => this.converters.get(s)!));
    }
    return items;
  }

  /**
   * The 'error' policy for device gradients: count their non-finite values on the device (this
   * waits for it), and refuse the step, naming each tensor, before anything but the arena's
   * gradient changes.
   */
  private *refuseNonFinite(grads: ReadonlyMap<TensorSlot, Gradient>, items: readonly Item[]): Work<void> {
    if (items.length) yield submit(items);
    const k = nonFiniteCheck(this.codecs.grad, this.layout.groupSize);
    const program = (yield compile(k)) as Program;
    const rows = this.hypers.rows((t) => grads.has(t), this.steps, {}, this.initialLr);
    const [count] = (yield run(program, {
      bindings: this.buffers,
      uniforms: uniformTable(program.prepared, rows),
      rowOf: this.rowOf,
      groups: [0, this.layout.groups],
      length: this.layout.length,
    })) as number[];
    if (!count) return;
    const counts = new Map<string, number>();
    for (const t of grads.keys()) {
      const c = countNonFinite((yield read(this.buffer(this.gradSlots[0]!.name), t.offset, t.length)) as FieldArray);
      if (c) counts.set(t.name, c);
    }
    throw new NonFiniteError(counts);
  }

  /**
   * One step over every tensor in `grads` (already checked): ONE launch, in one submission with the
   * gradients' intake; with gradient release one launch per tensor, in one submission (release.ts).
   */
  *step(grads: ReadonlyMap<TensorSlot, Gradient>, refuse: boolean): Work<void> {
    const sched = this.schedule?.(this.stepCount + 1) ?? {};
    if (this.release) yield* releasedStep(this, grads, refuse, sched);
    else {
      let items = yield* this.gradientItems(grads);
      if (refuse && [...grads.values()].some((g) => 'device' in g)) {
        yield* this.refuseNonFinite(grads, items);
        items = [];
      }
      const active = (t: TensorSlot) => grads.has(t);
      const launch = yield* this.launchOf(this.program, this.buffers, active, [0, this.layout.groups], sched);
      yield* this.send(items, this.program, launch, active);
    }
    this.stepCount++;
  }

  /** One tensor as soon as its gradient exists: one launch over its groups. */
  *stepTensor(t: TensorSlot, g: Gradient, refuse: boolean): Work<void> {
    const sched = this.schedule?.(this.steps[t.row]! + 1) ?? {};
    const grads = new Map([[t, g]]),
      only = (x: TensorSlot) => x === t;
    if (this.release) return yield* releasedStep(this, grads, refuse, sched);
    let items = yield* this.gradientItems(grads);
    if (refuse && 'device' in g) {
      yield* this.refuseNonFinite(grads, items);
      items = [];
    }
    const launch = yield* this.launchOf(this.program, this.buffers, only, t.groups, sched);
    yield* this.send(items, this.program, launch, only);
  }

  /** Non-finite gradient values counted since creation: reads the device counter (exact while fewer than 2^32 arrive between two reads). */
  *nonFinite(): Work<number> {
    const raw = ((yield read(this.counters, 0, 1)) as Uint32Array)[0]!;
    this.nonFiniteSeen += (raw - this.nonFiniteRaw) >>> 0;
    this.nonFiniteRaw = raw;
    return this.nonFiniteSeen;
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
    this.backend.free(this.counters);
  }
}
