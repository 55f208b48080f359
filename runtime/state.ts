// What a bound optimizer holds, and the work it does on it, written once as `Work` (runtime/io.ts)
// so each piece runs asynchronously on any backend or synchronously on the JS backend. Nothing
// here queues or validates user input: runtime/session.ts does both and calls in here in order.
// The arena lives in chunks (runtime/chunks.ts): a step is one launch per chunk, all in one
// submission; reads and writes of a tensor go piece by piece.

import type { FieldArray } from '../compiler/ir/kernel.ts';
import { arrayFor, storageBytes } from '../compiler/ir/kernel.ts';
import { uniformTable } from '../compiler/ir/pipeline.ts';
import type { Hyper } from '../optim/define.ts';
import type { FieldSlot, TensorSlot } from './arena.ts';
import type { DeviceBuffer, Item, Program } from './backends/backend.ts';
import type { Chunk, Piece } from './chunks.ts';
import { pieces } from './chunks.ts';
import type { Gradient } from './gradients.ts';
import { gradientItems, refuseNonFinite } from './gradients.ts';
import type { Held, StateParts } from './held.ts';
import type { Work } from './io.ts';
import { read, run, submit, write } from './io.ts';
import { releasedStep } from './release.ts';
import { checkNumerics } from './values.ts';
import type { ParamLaunch } from './params.ts';
import { Kept } from './kept.ts';
import { paramLaunches, readInPlace, writeInPlace } from './params.ts';
import { PARAM } from '../optim/fuse.ts';
import { reduceRows } from './reductions.ts';

// Every part is set by the constructor (Object.assign) and declared once, in StateParts (held.ts).
export interface State<H extends Hyper> extends StateParts<H> {}
export class State<H extends Hyper> implements Held<H> {
  /** Steps taken by each tensor (tensors without a gradient in a step do not advance). */
  readonly steps: Int32Array;
  /** step() calls so far (the schedule's argument). */
  stepCount = 0;
  /** Non-finite gradient values counted so far, and the device counter's value when last read. */
  private nonFiniteSeen = 0;
  private nonFiniteRaw = 0;
  private readonly fieldOf: ReadonlyMap<string, FieldSlot>;
  /** Launch pieces and bindings kept from step to step, and views of the caller's buffers (release.ts). */
  readonly kept = new Kept<unknown>();

  constructor(parts: StateParts<H>) {
    Object.assign(this, parts);
    this.steps = new Int32Array(parts.layout.tensors.length);
    this.fieldOf = new Map([...parts.slots, ...parts.gradSlots].map((f) => [f.name, f]));
  }

  /** A stored field by name (the gradient's too, unless gradient release leaves the arena without one). */
  field(name: string): FieldSlot {
    const f = this.fieldOf.get(name);
    if (!f || !(this.chunks[0]?.buffers[name] || (name === PARAM && this.inPlace)))
      throw new RangeError(`unknown field ${name} (fields: ${this.slots.map((s) => s.name).join(', ')})`);
    return f;
  }

  piecesOf(t: TensorSlot, axis: 'element' | 'group' = 'element'): Piece[] {
    const G = this.layout.groupSize;
    return axis === 'group'
      ? pieces(this.chunks, t.groups[0], t.groups[1] - t.groups[0], G, true)
      : pieces(this.chunks, t.offset, t.length, G);
  }

  sub(view: DeviceBuffer, from: number, length: number): DeviceBuffer {
    if (from === 0 && length === view.length) return view;
    if (!this.backend.view) throw new RangeError(`backend ${this.backend.name} cannot view part of a buffer`);
    return this.backend.view(view, view.storage, from * storageBytes[view.storage], length);
  }

  *readRange(name: string, start: number, length: number): Work<FieldArray> {
    const f = this.field(name);
    if (name === PARAM && this.inPlace) return yield* readInPlace(this.inPlace, start, length);
    const out = new arrayFor[f.storage](length);
    for (const p of pieces(this.chunks, start, length, this.layout.groupSize, f.axis === 'group'))
      out.set((yield read(p.chunk.buffers[name]!, p.at, p.length)) as never, p.from);
    return out;
  }

  /** `data` into a field from `start` (elements, or groups for a group field), across chunks. */
  *writeRange(name: string, start: number, data: FieldArray): Work<void> {
    const f = this.field(name);
    if (name === PARAM && this.inPlace) return yield* writeInPlace(this.inPlace, start, data);
    for (const p of pieces(this.chunks, start, data.length, this.layout.groupSize, f.axis === 'group'))
      yield write(p.chunk.buffers[name]!, data.subarray(p.from, p.from + p.length), p.at);
  }

  *uniformsOf(
    program: Program,
    active: (t: TensorSlot) => boolean,
    sched: Partial<H>,
    check = this.options.checkNumerics,
  ): Work<Float32Array> {
    return uniformTable(program.prepared, yield* this.rowsOf(active, sched, check));
  }

  /** The uniform rows of a launch (the numerics check first, when asked). */
  private *rowsOf(
    active: (t: TensorSlot) => boolean,
    sched: Partial<H>,
    check: boolean,
  ): Work<Record<string, number>[]> {
    const rows = this.hypers.rows(active, this.steps, sched, this.initialLr);
    if (check) yield* checkNumerics(this, rows, active);
    return rows;
  }

  /** Chunk c's buffers with `more`, the same object whenever the same buffers are asked for (kept.ts). */
  private bindingsOf(c: Chunk, more?: Readonly<Record<string, DeviceBuffer>>): Readonly<Record<string, DeviceBuffer>> {
    if (!more) return c.buffers;
    const names = Object.keys(more);
    const key = this.kept.key('bindings', c, ...names.flatMap((n) => [n, more[n]]));
    return this.kept.get(key, () => ({ ...c.buffers, ...more })) as Readonly<Record<string, DeviceBuffer>>;
  }

  launches(
    program: Program,
    uniforms: Float32Array,
    [g0, g1]: readonly [number, number],
    extra?: (c: Chunk) => Readonly<Record<string, DeviceBuffer>>,
  ): Item[] {
    const out: Item[] = [];
    for (const c of this.chunks) {
      const a = Math.max(g0, c.groups[0]),
        z = Math.min(g1, c.groups[1]);
      if (a >= z) continue;
      const more = extra?.(c);
      // A device combine's results, where kernels with `$red` columns read them.
      const reductions = this.reductions?.device;
      // With a combine in the kernels, where the launch sits in the arena.
      const common = {
        uniforms,
        rowOf: c.rowOf,
        counters: this.counters,
        ...(reductions ? { reductions, origin: c.groups[0] } : {}),
      };
      if (!this.inPlace) {
        const groups = [a - c.groups[0], z - c.groups[0]] as const;
        out.push({ program, launch: { ...common, bindings: this.bindingsOf(c, more), groups, length: c.length } });
        continue;
      }
      // Each tensor's own buffer bound where the arena would hold it: a launch per tensor piece.
      const pieces = this.kept.get(this.kept.key('params', c, a, z), () =>
        paramLaunches(this.backend, this.inPlace!, this.chunks, c, this.layout.groupSize, [a, z]),
      ) as ParamLaunch[];
      for (const p of pieces)
        out.push({
          program,
          launch: {
            ...common,
            bindings: this.bindingsOf(c, { ...more, [PARAM]: p.param }),
            groups: p.groups,
            length: p.length,
          },
        });
    }
    return out;
  }

  *send(items: readonly Item[], active: (t: TensorSlot) => boolean): Work<void> {
    if (this.backend.submit) yield submit(items);
    else
      for (const it of items) {
        // Copies come only from device gradients, which need a backend that submits.
        if ('program' in it) yield run(it.program, it.launch);
      }
    for (const t of this.layout.tensors) if (active(t)) this.steps[t.row]!++;
  }

  /**
   * One step over every tensor in `grads` (already checked): one launch per chunk (ONE for an
   * arena that fits a binding), in one submission with the gradients' intake; with gradient
   * release one launch per tensor, in one submission (release.ts).
   */
  *step(grads: ReadonlyMap<TensorSlot, Gradient>, refuse: boolean): Work<void> {
    const sched = this.schedule?.(this.stepCount + 1) ?? {};
    if (this.release) yield* releasedStep(this, grads, refuse, sched);
    else yield* this.update(grads, refuse, sched, [0, this.layout.groups]);
    this.stepCount++;
  }

  /** One tensor as soon as its gradient exists: one launch over its groups. */
  *stepTensor(t: TensorSlot, g: Gradient, refuse: boolean): Work<void> {
    const sched = this.schedule?.(this.steps[t.row]! + 1) ?? {};
    const grads = new Map([[t, g]]);
    if (this.release) yield* releasedStep(this, grads, refuse, sched);
    else yield* this.update(grads, refuse, sched, t.groups);
  }

  private *update(
    grads: ReadonlyMap<TensorSlot, Gradient>,
    refuse: boolean,
    sched: Partial<H>,
    groups: readonly [number, number],
  ): Work<void> {
    let items = yield* gradientItems(this, grads);
    if (refuse && [...grads.values()].some((g) => 'device' in g)) {
      yield* refuseNonFinite(this, grads, items);
      items = [];
    }
    const active = (t: TensorSlot) => grads.has(t);
    let rows = yield* this.rowsOf(active, sched, this.options.checkNumerics);
    let before: Item[] = [];
    if (this.reductions) {
      // The reduction passes read the gradients: their intake goes first, on its own where the
      // host combines (the passes run before the update's table exists), else in the same submission.
      if (!this.reductions.device && items.length) {
        yield* this.send(items, () => false);
        items = [];
      }
      ({ rows, items: before } = yield* reduceRows(this, this.reductions, rows, active, groups));
    }
    const uniforms = uniformTable(this.program.prepared, rows);
    yield* this.send([...items, ...before, ...this.launches(this.program, uniforms, groups)], active);
  }

  /** Non-finite gradient values counted since creation: reads the device counter (exact while fewer than 2^32 arrive between two reads). */
  *nonFinite(): Work<number> {
    const raw = ((yield read(this.counters, 0, 1)) as Uint32Array)[0]!;
    this.nonFiniteSeen += (raw - this.nonFiniteRaw) >>> 0;
    this.nonFiniteRaw = raw;
    return this.nonFiniteSeen;
  }

  /** Every buffer back to the backend. */
  free(): void {
    for (const c of this.chunks) for (const b of c.owned) this.backend.free(b);
    this.backend.free(this.counters);
    for (const b of this.reductions?.owned ?? []) this.backend.free(b);
    this.reductions?.device?.free();
  }
}
