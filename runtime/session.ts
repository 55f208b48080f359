// A bound optimizer: the arena, the compiled step kernel, per-tensor step counts and the
// hyperparameters of each parameter group. Every public method validates its whole input before
// it changes anything, so a bad call leaves the optimizer exactly as it was.

import { GRAD, PARAM } from '../optim/fuse.ts';
import { kernel } from '../compiler/ir/kernel.ts';
import { decodeStored, encodeStored, storedName } from '../dsl/codec.ts';
import { field } from '../dsl/ops.ts';
import type { Hyper, OptimizerDef } from '../optim/define.ts';
import { fromBf16, toBf16 } from './codecs.ts';
import type { Backend, DeviceBuffer, Program } from './backends/backend.ts';
import type { FieldSlot, Layout, TensorSlot } from './arena.ts';
import { slotBytes } from './arena.ts';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import type { GradInput, Resolved } from './options.ts';
import type { Codecs } from '../optim/storage.ts';
import { NonFiniteError, NumericsError, numericsProblem } from './numerics.ts';
import { uniformTable as buildUniformTable } from '../compiler/ir/pipeline.ts';
import type { FieldArray } from '../compiler/ir/kernel.ts';

export interface SessionParts<H extends Hyper> {
  def: OptimizerDef<H>;
  backend: Backend;
  layout: Layout;
  resolved: Resolved;
  codecs: Codecs;
  slots: FieldSlot[];
  gradSlots: FieldSlot[];
  buffers: Record<string, DeviceBuffer>;
  rowOf: DeviceBuffer;
  program: Program;
  release: Program | null;
  groups: { params: Set<string>; def: OptimizerDef<H> }[];
  schedule: ((step: number) => Partial<H>) | undefined;
  initialLr: number;
}

export interface Memory {
  /** Bytes each stored field holds on the device. */
  readonly fields: Readonly<Record<string, number>>;
  readonly total: number;
  readonly params: number;
  readonly bytesPerParam: number;
  readonly perParam: Readonly<Record<string, number>>;
  /** With gradient release: the largest gradient held at once, only during stepTensor. */
  readonly transientGradBytes: number;
}

export class Session<H extends Hyper> {
  readonly def: OptimizerDef<H>;
  readonly backend: Backend;
  readonly layout: Layout;
  readonly options: Resolved;
  /** Steps taken by each tensor (tensors without a gradient in a step do not advance). */
  readonly steps: Int32Array;
  /** step() calls so far (the schedule's argument). */
  stepCount = 0;
  private readonly p: SessionParts<H>;
  private groupDefs: OptimizerDef<H>[];
  private maxAbs: Float64Array | null = null;

  constructor(parts: SessionParts<H>) {
    this.p = parts;
    this.def = parts.def;
    this.backend = parts.backend;
    this.layout = parts.layout;
    this.options = parts.resolved;
    this.steps = new Int32Array(parts.layout.tensors.length);
    this.groupDefs = [parts.def, ...parts.groups.map((g) => g.def)];
    this.groupOfRow = Int32Array.from(
      parts.layout.tensors,
      (t) => parts.groups.findIndex((g) => g.params.has(t.name)) + 1,
    );
  }

  /** The fused kernel's source (JS, WGSL, …), for reading what runs. */
  get source(): string {
    return this.p.program.source;
  }
  get tensorNames(): string[] {
    return this.layout.tensors.map((t) => t.name);
  }
  /** Stored fields and their device buffers (for checkpoints and backends' tests). */
  get fields(): readonly FieldSlot[] {
    return this.p.slots;
  }
  buffer(name: string): DeviceBuffer {
    return this.p.buffers[name]!;
  }

  /** Parameter group of each tensor row: 0 is the default group, i + 1 is groups[i]. */
  private readonly groupOfRow: Int32Array;
  private groupOf(t: TensorSlot): number {
    return this.groupOfRow[t.row]!;
  }

  /** Change hyperparameters (all groups, or one: 0 is the default group, i+1 is groups[i]). Never recompiles. */
  setHyper(h: Partial<H>, group?: number): void {
    const targets = group === undefined ? this.groupDefs.map((_, i) => i) : [group];
    if (group !== undefined && !(Number.isInteger(group) && group >= 0 && group < this.groupDefs.length))
      throw new RangeError(`setHyper: group must be an integer in [0, ${this.groupDefs.length}), got ${group}`);
    const next = targets.map((i) => this.groupDefs[i]!.with(h));
    for (const d of next)
      if (d.structure !== this.def.structure)
        throw new RangeError(
          `setHyper: ${JSON.stringify(h)} changes the kernel's structure (${this.def.structure} → ${d.structure}); create a new optimizer instead`,
        );
    targets.forEach((i, j) => {
      this.groupDefs[i] = next[j]!;
    });
  }

  /** Hyperparameters per tensor, as a checkpoint stores them (validated by the caller). */
  restoreHyper(perTensor: readonly Hyper[]): void {
    const next = [...this.groupDefs];
    this.layout.tensors.forEach((t, i) => {
      next[this.groupOf(t)] = this.def.with(perTensor[i] as Partial<H>);
    });
    this.groupDefs = next;
  }

  /** A checkpoint (safetensors bytes): bf16 params, corrections, codes, scales, hyperparameters, steps. */
  async save(): Promise<Uint8Array> {
    return saveCheckpoint(this);
  }
  /** Restore a checkpoint; a corrupted, truncated or mismatched file throws and changes nothing. */
  async load(bytes: Uint8Array): Promise<void> {
    return loadCheckpoint(this, bytes);
  }

  /** The hyperparameters in force for a tensor's group. */
  hyperOf(name: string): H {
    return this.groupDefs[this.groupOf(this.tensor(name))]!.hyper;
  }

  private tensor(name: string): TensorSlot {
    const t = this.layout.byName.get(name);
    if (!t)
      throw new RangeError(
        `unknown tensor ${JSON.stringify(name)} (known: ${this.tensorNames.slice(0, 8).join(', ')}${this.tensorNames.length > 8 ? ', …' : ''})`,
      );
    return t;
  }

  private gradData(name: string, g: GradInput): FieldArray {
    const t = this.tensor(name);
    if (!(g instanceof Float32Array || g instanceof Uint16Array))
      throw new TypeError(
        `gradient ${name} must be a Float32Array${this.options.gradDtype === 'bf16' ? ' or a Uint16Array of bf16 bits' : ''}, got ${(g as object)?.constructor?.name ?? typeof g}`,
      );
    if (g.length !== t.length)
      throw new RangeError(`gradient ${name} has ${g.length} values, the tensor has ${t.length}`);
    if (this.options.gradDtype === 'f32') {
      if (!(g instanceof Float32Array))
        throw new TypeError(`gradient ${name} must be a Float32Array (gradDtype 'f32'), got a Uint16Array`);
      return g;
    }
    return g instanceof Uint16Array ? g : toBf16(g);
  }

  private rows(active: (t: TensorSlot) => boolean, sched: Partial<H>): Record<string, number>[] {
    // A schedule applies to every group: validate and merge it once per group, not per tensor.
    const defs = Object.keys(sched).length ? this.groupDefs.map((g) => g.with(sched)) : this.groupDefs;
    return this.layout.tensors.map((t) => {
      const d = defs[this.groupOf(t)]!;
      const on = active(t);
      const u = d.uniforms(d.hyper, { step: this.steps[t.row]! + (on ? 1 : 0), initialLr: this.p.initialLr });
      return { ...u, active: on ? 1 : 0 };
    });
  }

  private async launch(
    program: Program,
    bindings: Record<string, DeviceBuffer>,
    active: (t: TensorSlot) => boolean,
    groups: readonly [number, number],
    sched: Partial<H>,
  ): Promise<number> {
    const rows = this.rows(active, sched);
    if (this.options.checkNumerics) await this.checkNumerics(rows, active);
    const counts = await this.backend.run(program, {
      bindings,
      uniforms: buildUniformTable(program.prepared, rows),
      rowOf: this.p.rowOf,
      groups,
      length: this.layout.length,
    });
    for (const t of this.layout.tensors) if (active(t)) this.steps[t.row]!++;
    return counts[0] ?? 0;
  }

  /** One optimizer step over every tensor that has a gradient: ONE kernel launch. */
  async step(grads: Readonly<Record<string, GradInput>>): Promise<{ nonFinite: number }> {
    if (this.options.gradientRelease)
      throw new Error(
        'step: this optimizer uses gradient release; call stepTensor(name, grad) as each gradient is ready',
      );
    const data = Object.entries(grads).map(([n, g]) => [this.tensor(n), this.gradData(n, g)] as const);
    const sched = this.p.schedule?.(this.stepCount + 1) ?? {};
    if (Object.keys(sched).length) this.def.with(sched);
    const gradBuf = this.p.buffers[storedName(GRAD, this.p.codecs.grad.fields[0]!)]!;
    for (const [t, g] of data) await this.backend.write(gradBuf, g, t.offset);
    const present = new Set(data.map(([t]) => t));
    const nonFinite = await this.launch(
      this.p.program,
      this.p.buffers,
      (t) => present.has(t),
      [0, this.layout.groups],
      sched,
    );
    this.stepCount++;
    if (nonFinite > 0 && this.options.onNonFinite === 'error') throw NonFiniteError.from(grads, nonFinite);
    return { nonFinite };
  }

  /** Gradient release: update one tensor as soon as its gradient exists (one launch over its groups). */
  async stepTensor(name: string, grad: GradInput): Promise<{ nonFinite: number }> {
    const t = this.tensor(name);
    const g = this.gradData(name, grad);
    const program = this.p.release ?? this.p.program;
    const gSlot = this.p.gradSlots[0]!;
    let gradBuf: DeviceBuffer;
    const padded = (t.groups[1] - t.groups[0]) * this.layout.groupSize;
    if (this.p.release) {
      gradBuf = this.backend.alloc(gSlot.storage, padded);
      await this.backend.write(gradBuf, g, 0);
    } else {
      gradBuf = this.p.buffers[gSlot.name]!;
      await this.backend.write(gradBuf, g, t.offset);
    }
    const sched = this.p.schedule?.(this.steps[t.row]! + 1) ?? {};
    const nonFinite = await this.launch(
      program,
      { ...this.p.buffers, [gSlot.name]: gradBuf },
      (x) => x === t,
      t.groups,
      sched,
    );
    if (this.p.release) this.backend.free(gradBuf);
    if (nonFinite > 0 && this.options.onNonFinite === 'error') throw NonFiniteError.from({ [name]: grad }, nonFinite);
    return { nonFinite };
  }

  private async checkNumerics(rows: Record<string, number>[], active: (t: TensorSlot) => boolean): Promise<void> {
    if (!this.maxAbs) {
      const all = await this.exportFp32();
      this.maxAbs = Float64Array.from(this.layout.tensors, (t) =>
        all[t.name]!.reduce((m, x) => Math.max(m, Math.abs(x)), 0),
      );
    }
    const bits = this.options.paramDtype === 'f32' ? 32 : (this.options.masterWeightBits ?? 16);
    for (const t of this.layout.tensors)
      if (active(t)) {
        const msg = numericsProblem(t.name, this.maxAbs[t.row]!, rows[t.row]!['lr'] ?? 0, this.def.numericsK, bits);
        if (msg) throw new NumericsError(msg);
      }
  }

  /** Recompute the cached max |w| the numerics check uses (after loading or importing). */
  recomputeParamStats(): void {
    this.maxAbs = null;
  }

  /** Stored parameters of every tensor (bf16 bits, or f32 with paramDtype 'f32'), copied from the device. */
  async readParams(): Promise<Record<string, Uint16Array | Float32Array>> {
    const buf = this.p.buffers[PARAM]!;
    const out: Record<string, Uint16Array | Float32Array> = {};
    for (const t of this.layout.tensors)
      out[t.name] = (await this.backend.read(buf, t.offset, t.length)) as Uint16Array | Float32Array;
    return out;
  }

  /** Master weights decoded to f32 (bf16 + correction), per tensor. */
  async exportFp32(): Promise<Record<string, Float32Array>> {
    const c = this.p.codecs.param;
    const x = this.backend.alloc('f32', this.layout.length);
    const k = kernel({
      name: 'export',
      groupSize: this.layout.groupSize,
      outputs: [{ field: 'x', storage: 'f32', axis: 'element', value: decodeStored(PARAM, c) }],
    });
    await this.backend.run(await this.backend.compile(k), {
      bindings: { ...this.p.buffers, x },
      uniforms: new Float32Array(1),
      rowOf: null,
      groups: [0, this.layout.groups],
      length: this.layout.length,
    });
    const out: Record<string, Float32Array> = {};
    for (const t of this.layout.tensors) out[t.name] = (await this.backend.read(x, t.offset, t.length)) as Float32Array;
    this.backend.free(x);
    return out;
  }

  /** Set master weights from f32 values (kept at full 24/32-bit precision, even before the first step). */
  async importFp32(values: Readonly<Record<string, Float32Array>>): Promise<void> {
    for (const [n, v] of Object.entries(values)) {
      if (!(v instanceof Float32Array))
        throw new TypeError(
          `importFp32: ${n} must be a Float32Array, got ${(v as object)?.constructor?.name ?? typeof v}`,
        );
    }
    await this.importValues(values, false);
  }

  /** Float32Array values are encoded by the param codec; Uint16Array values are bf16 bits taken as they are. */
  async importValues(values: Readonly<Record<string, Float32Array | Uint16Array>>, initial: boolean): Promise<void> {
    const items = Object.entries(values).map(([n, v]) => {
      const t = this.tensor(n);
      if (v.length !== t.length)
        throw new RangeError(
          `${initial ? 'createOptimizer' : 'importFp32'}: ${n} has ${v.length} values, the tensor has ${t.length}`,
        );
      return [t, v] as const;
    });
    const c = this.p.codecs.param;
    const x = this.backend.alloc('f32', this.layout.length);
    const k = kernel({
      name: 'import',
      groupSize: this.layout.groupSize,
      outputs: encodeStored(PARAM, c, field('x', 'f32')),
    });
    const program = await this.backend.compile(k);
    for (const [t, v] of items) {
      // bf16 bits widen exactly to f32, and the codec's encode gives them back with a zero correction.
      await this.backend.write(x, v instanceof Uint16Array ? fromBf16(v) : v, t.offset);
      await this.backend.run(program, {
        bindings: { ...this.p.buffers, x },
        uniforms: new Float32Array(1),
        rowOf: null,
        groups: t.groups,
        length: this.layout.length,
      });
    }
    this.backend.free(x);
    this.maxAbs = null;
  }

  /** Bytes per field and per parameter, as held on the device. */
  memory(): Memory {
    const fields: Record<string, number> = {};
    for (const s of this.p.slots) fields[s.name] = slotBytes(this.layout, s);
    if (!this.options.gradientRelease) for (const s of this.p.gradSlots) fields[s.name] = slotBytes(this.layout, s);
    const total = Object.values(fields).reduce((a, b) => a + b, 0);
    const params = this.layout.params;
    const gradBytes = this.p.gradSlots.reduce((a, s) => a + (s.storage === 'f32' ? 4 : 2), 0);
    const largest = Math.max(...this.layout.tensors.map((t) => (t.groups[1] - t.groups[0]) * this.layout.groupSize));
    return {
      fields,
      total,
      params,
      bytesPerParam: total / params,
      perParam: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v / params])),
      transientGradBytes: this.options.gradientRelease ? largest * gradBytes : 0,
    };
  }
}
