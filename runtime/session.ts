// A bound optimizer, and a transaction: every public method checks its whole input before anything
// changes, then runs on ONE queue in call order, so overlapping calls give exactly the result of
// awaiting each in turn (save() sees the state between two steps, never inside one). A call that
// fails leaves the optimizer as it was. dispose() frees every buffer; calls after it throw.
//
// When the queue is idle a call starts within the caller's turn, so its inputs are copied to the
// device before the caller can touch them again; a call that has to wait copies its inputs first.

import type { FieldArray } from '../compiler/ir/kernel.ts';
import type { Hyper, OptimizerDef } from '../optim/define.ts';
import { shown } from '../optim/define.ts';
import type { FieldSlot, Layout, TensorSlot } from './arena.ts';
import type { Backend } from './backends/backend.ts';
import { exportFp32, importValues, readParams } from './values.ts';
import { matchCheckpoint, parseCheckpoint, restoreCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { toBf16 } from './codecs.ts';
import type { Work } from './io.ts';
import { drive, driveSync, syncOf } from './io.ts';
import type { Gradient } from './gradients.ts';
import { arenaGradients, deviceView } from './gradients.ts';
import type { Memory } from './memory.ts';
import { memoryOf } from './memory.ts';
import type { DeviceGradient } from './on-device.ts';
import { isDeviceGradient } from './on-device.ts';
import { NonFiniteError, countNonFinite } from './numerics.ts';
import { lastGradNorm } from './reductions.ts';
import type { GradInput, Resolved } from './options.ts';
import type { State } from './state.ts';

export type { Memory };

const record = <T>(m: ReadonlyMap<string, T>): Record<string, T> => Object.fromEntries(m);

export class Session<H extends Hyper> {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;
  private closed = false;

  constructor(private readonly s: State<H>) {}

  get def(): OptimizerDef<H> {
    return this.s.def;
  }
  get backend(): Backend {
    return this.s.backend;
  }
  get layout(): Layout {
    return this.s.layout;
  }
  get options(): Resolved {
    return this.s.options;
  }
  /** Steps taken by each tensor, in layout order (a copy). */
  get steps(): Int32Array {
    return this.s.steps.slice();
  }
  /** step() calls so far (the schedule's argument). */
  get stepCount(): number {
    return this.s.stepCount;
  }
  /** The fused kernel's source (WebAssembly text, JS, WGSL, …), for reading what runs. */
  get source(): string {
    return this.s.program.source;
  }
  get tensorNames(): string[] {
    return this.s.layout.tensors.map((t) => t.name);
  }
  /** Stored fields (the gradient aside); `readField(name)` reads one. */
  get fields(): readonly FieldSlot[] {
    return this.s.slots;
  }
  /** Chunks the arena is split into (one launch each): 1 unless the device binds less than the arena. */
  get chunks(): number {
    return this.s.chunks.length;
  }
  /** A stored field of the whole arena as the device holds it (padding included), copied to the host. */
  readField(name: string): Promise<FieldArray> {
    const f = this.s.field(name),
      l = this.s.layout;
    return this.work('readField', () => this.s.readRange(name, 0, f.axis === 'group' ? l.groups : l.length));
  }
  /** The hyperparameters in force for a tensor's group (as of the calls made so far). */
  hyperOf(name: string): H {
    return this.s.hypers.defOf(this.tensor(name)).hyper;
  }

  /** Run `work` after every earlier call; start it now when nothing is running. */
  private serial<T>(what: string, work: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`${what}: this optimizer was disposed`));
    const start = this.pending === 0 ? work() : this.tail.then(work, work);
    this.pending++;
    const done = start.finally(() => this.pending--);
    this.tail = done.catch(() => {});
    return done;
  }

  private work<T>(what: string, w: () => Work<T>): Promise<T> {
    return this.serial(what, () => drive(this.s.backend, w()));
  }

  /** A synchronous call: nothing may be queued before it, and the backend must be the JS backend. */
  private now<T>(what: string, w: () => Work<T>): T {
    if (this.closed) throw new Error(`${what}: this optimizer was disposed`);
    if (this.pending > 0) throw new Error(`${what}: an earlier call is still running; await it first`);
    return driveSync(syncOf(this.s.backend, what), w());
  }

  private tensor(name: string): TensorSlot {
    const t = this.s.layout.byName.get(name);
    if (!t) {
      const known = this.tensorNames;
      throw new RangeError(
        `unknown tensor ${shown(name)} (known: ${known.slice(0, 8).map(shown).join(', ')}${known.length > 8 ? ', …' : ''})`,
      );
    }
    return t;
  }

  /** Gradients checked: host ones in the arena's storage (a copy when they must wait in the queue), device ones as views. */
  private gradients(what: string, grads: Readonly<Record<string, GradInput>>): Map<TensorSlot, Gradient> {
    if (grads === null || typeof grads !== 'object')
      throw new TypeError(`${what}: expected an object of gradients by tensor name, got ${shown(grads)}`);
    const out = new Map<TensorSlot, Gradient>();
    for (const [name, g] of Object.entries(grads)) out.set(this.tensor(name), this.gradient(name, g));
    return out;
  }

  private gradient(name: string, g: GradInput): Gradient {
    const t = this.tensor(name),
      bf16 = this.s.options.gradDtype === 'bf16';
    if (isDeviceGradient(g)) return { device: deviceView(this.s.backend, name, t.length, g) };
    if (!(g instanceof Float32Array || (bf16 && g instanceof Uint16Array)))
      throw new TypeError(
        `gradient ${shown(name)} must be a Float32Array${bf16 ? ' or a Uint16Array of bf16 bits' : " (gradDtype 'f32')"}, or a device gradient { buffer, dtype }, got ${shown(g)}`,
      );
    if (g.length !== t.length)
      throw new RangeError(`gradient ${shown(name)} has ${g.length} values, the tensor has ${t.length}`);
    if (bf16 && g instanceof Float32Array) return { host: toBf16(g) }; // a new array already
    return { host: this.pending > 0 ? g.slice() : g };
  }

  /** 'error' policy: a step with non-finite host gradients is refused before anything changes (device ones are counted on the device). */
  private refuseNonFinite(grads: ReadonlyMap<TensorSlot, Gradient>): boolean {
    if (this.s.options.onNonFinite !== 'error') return false;
    const counts = new Map<string, number>();
    for (const [t, g] of grads) {
      const c = 'host' in g ? countNonFinite(g.host) : 0;
      if (c) counts.set(t.name, c);
    }
    if (counts.size) throw new NonFiniteError(counts);
    return true;
  }

  /**
   * One optimizer step over every tensor that has a gradient: ONE kernel launch. Gradients are host
   * arrays or device buffers ({ buffer, offset?, dtype }); a device step is one submission and
   * does not wait for the GPU. Non-finite gradient values are skipped and counted: `nonFinite()`.
   */
  async step(grads: Readonly<Record<string, GradInput>>): Promise<void> {
    const data = this.gradients('step', grads);
    const refuse = this.refuseNonFinite(data);
    await this.work('step', () => this.s.step(data, refuse));
  }

  /** step() within this call (JS backend only, nothing queued): what the TF.js adapter uses. */
  stepSync(grads: Readonly<Record<string, GradInput>>): void {
    const data = this.gradients('stepSync', grads);
    const refuse = this.refuseNonFinite(data);
    this.now('stepSync', () => this.s.step(data, refuse));
  }

  /** Gradient release: update one tensor as soon as its gradient exists (one launch over its groups). */
  async stepTensor(name: string, grad: GradInput): Promise<void> {
    const t = this.tensor(name);
    if (this.s.reductions?.phases.reductions.some((r) => r.scope === 'global'))
      throw new RangeError(
        `stepTensor: ${this.s.options.clipGradNorm !== undefined ? 'clipGradNorm' : `${this.def.name}'s global reduction`} needs every gradient of the step in one launch; use step()`,
      );
    const g = this.gradient(name, grad);
    const refuse = this.refuseNonFinite(new Map([[t, g]]));
    await this.work('stepTensor', () => this.s.stepTensor(t, g, refuse));
  }

  /**
   * Non-finite gradient values (NaN, ±Inf) skipped since the optimizer was created. The count
   * accumulates on the device; this reads it (on a GPU, after the steps already made finish).
   */
  nonFinite(): Promise<number> {
    return this.work('nonFinite', () => this.s.nonFinite());
  }

  /**
   * The global gradient norm of the last step before clipping (clipGradNorm), as the step computed
   * it: √ of the f32 sum of squares of the finite gradient elements. NaN before the first step. On
   * WebGPU the sum stays on the device: this reads it (after the steps already made finish).
   */
  gradNorm(): Promise<number> {
    // In the queue, so it reads the norm of the steps called before it.
    return this.work('gradNorm', () => lastGradNorm(this.s.reductions));
  }

  nonFiniteSync(): number {
    return this.now('nonFiniteSync', () => this.s.nonFinite());
  }

  /**
   * The arena's own gradient storage on the device, per tensor: `{ buffer, offset, dtype }` (a
   * GPUBuffer on WebGPU, `offset` in bytes, `dtype` the arena's). A backward pass can write each
   * tensor's gradient there (exactly its length of values: the padding after it must stay zero);
   * `step(opt.deviceGradients())` then moves nothing. Needs a backend with device buffers, and an
   * arena with a gradient buffer (not gradient release).
   */
  deviceGradients(): Record<string, DeviceGradient> {
    return arenaGradients(this.s);
  }

  /** Change hyperparameters (all groups, or one: 0 is the default group, i + 1 is groups[i]), in call order. Never recompiles. */
  setHyper(h: Partial<H>, group?: number): Promise<void> {
    if (this.closed) throw new Error('setHyper: this optimizer was disposed');
    const next = this.s.hypers.plan(h, group); // throws now on a bad value, before anything is queued
    if (this.pending === 0) {
      // Nothing queued: in force at once (a synchronous stepSync right after sees it).
      this.s.hypers.set(next);
      return Promise.resolve();
    }
    return this.serial('setHyper', async () => this.s.hypers.set(this.s.hypers.plan(h, group)));
  }

  /** A checkpoint (safetensors bytes, format flashoptim/2). */
  save(): Promise<Uint8Array> {
    return this.work('save', () => saveCheckpoint(this.s));
  }

  /** Restore a checkpoint saved by an optimizer like this one; a corrupted or mismatched one throws a CheckpointError and changes nothing. */
  async load(bytes: Uint8Array): Promise<void> {
    const r = matchCheckpoint(this.s, parseCheckpoint(bytes));
    await this.work('load', () => restoreCheckpoint(this.s, r));
  }

  /** Master weights decoded to f32 (bf16 + correction), per tensor. */
  async exportFp32(): Promise<Record<string, Float32Array>> {
    return record(await this.work('exportFp32', () => exportFp32(this.s)));
  }

  /** Stored parameters of every tensor (bf16 bits, or f32 with paramDtype 'f32'), copied from the device. */
  async readParams(): Promise<Record<string, Uint16Array | Float32Array>> {
    return record(await this.work('readParams', () => readParams(this.s)));
  }

  readParamsSync(): Record<string, Uint16Array | Float32Array> {
    return record(this.now('readParamsSync', () => readParams(this.s)));
  }

  /** Set master weights from f32 values (kept at full 24/32-bit precision, even before the first step). */
  async importFp32(values: Readonly<Record<string, Float32Array>>): Promise<void> {
    if (values === null || typeof values !== 'object')
      throw new TypeError(`importFp32: expected an object of Float32Arrays by tensor name, got ${shown(values)}`);
    const items = new Map<TensorSlot, Float32Array>();
    for (const [n, v] of Object.entries(values)) {
      const t = this.tensor(n);
      if (!(v instanceof Float32Array))
        throw new TypeError(`importFp32: ${shown(n)} must be a Float32Array, got ${shown(v)}`);
      if (v.length !== t.length)
        throw new RangeError(`importFp32: ${shown(n)} has ${v.length} values, the tensor has ${t.length}`);
      items.set(t, this.pending > 0 ? v.slice() : v);
    }
    await this.work('importFp32', () => importValues(this.s, items));
  }

  /** Bytes per field and per parameter, as held on the device; and every byte the optimizer has allocated. */
  memory(): Memory {
    return memoryOf(this.s);
  }

  /** Free every buffer of this optimizer, after the calls already made; later calls throw. */
  dispose(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const done = this.serial('dispose', async () => this.s.free());
    this.closed = true;
    return done;
  }

  /** Whether dispose() has been called. */
  get disposed(): boolean {
    return this.closed;
  }
}
