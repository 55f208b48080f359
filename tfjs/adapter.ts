// Any flashoptim optimizer as a TF.js optimizer: `model.compile({ optimizer })`, `model.fit`,
// `optimizer.minimize(f)` and `applyGradients(grads)` work as with tf.train.adam.
//
// Where the step runs depends on TF.js's backend, decided at the first applyGradients:
// - On TF.js's WebGPU backend (tfjs-backend-webgpu), with no `backend` option or a WebGpuBackend
//   on TF.js's own device: on that device, with no host copy (tfjs/on-gpu.ts). Gradients are read
//   from the tensors' own GPUBuffers and the variables' own f32 buffers are the master weights,
//   updated in place; the optimizer holds only its states.
// - Otherwise (cpu, wasm, or an explicit host backend): our arena holds the master weights (bf16 +
//   correction, quantized states); gradients are copied from TF.js each step and the variables
//   receive the bf16-rounded parameters, which is what the next forward pass sees.
//
// TF.js calls applyGradients synchronously and runs the next forward pass right after. On the JS
// backend (the default on the CPU) the whole step happens inside that call (runtime/io.ts), so
// model.fit is correct as it stands. Elsewhere (WebGPU, threads, gpu.js) the step is queued: await
// `settled()` before the next forward pass (`applyGradientsAsync`, `minimizeAsync`, or
// `fitCallback()` in model.fit's callbacks); a second applyGradients while a step is still running
// throws instead of letting the next batch read stale weights. A failed step is thrown from the
// next call, once; the optimizer is unchanged by it and carries on.

import * as tf from '@tensorflow/tfjs-core';
import './gradients.ts';
import type { NamedTensorMap, Scalar, Variable } from '@tensorflow/tfjs-core';

/** tfjs-core's NamedTensor (not exported from its package entry). */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}
import type { Hyper, OptimizerDef } from '../optim/define.ts';
import type { OptimizerOptions } from '../runtime/options.ts';
import { isSync } from '../runtime/backends/backend.ts';
import { createOptimizer, createOptimizerSync } from '../runtime/optimizer.ts';
import type { Memory, Session } from '../runtime/session.ts';
import type { GpuStats } from './on-gpu.ts';
import { GpuSteps, onTfDevice } from './on-gpu.ts';
import { tfWebGpu } from './webgpu.ts';

export { useTfWebGpu } from './webgpu.ts';
export type { GpuStats } from './on-gpu.ts';
export { trainingBytes, type TrainingBytes } from './memory.ts';
export { Traffic } from './traffic.ts';

/** Where steps run: within applyGradients (JS backend), queued on a host backend, or on TF.js's GPU. */
type Mode = 'sync' | 'async' | 'gpu';

const BRAND = Symbol('flashoptim.tfjs');

/** A bf16 word array (Uint16Array) or an f32 array, widened to f32. */
export function toF32(a: ArrayLike<number> & { buffer: ArrayBufferLike }): Float32Array {
  if (a instanceof Float32Array) return a;
  if (!(a instanceof Uint16Array))
    throw new TypeError(
      `tfjs adapter: parameters must be a Uint16Array (bf16) or Float32Array, got ${a.constructor.name}`,
    );
  const w = new Uint32Array(a.length);
  for (let i = 0; i < a.length; i++) w[i] = a[i]! << 16;
  return new Float32Array(w.buffer);
}

export class FlashTfOptimizer<H extends Hyper = Hyper> extends tf.Optimizer {
  static get className(): string {
    return 'FlashOptimizer';
  }
  // tf.Optimizer's Symbol.hasInstance is duck-typed (any optimizer passes), so `x instanceof
  // FlashTfOptimizer` would be true for tf.train.adam too: check our brand instead.
  static override [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && (x as { [BRAND]?: boolean })[BRAND] === true;
  }
  readonly [BRAND] = true;

  private flash: Session<H> | null = null;
  private gpu: GpuSteps<H> | null = null;
  private readonly vars = new Map<string, Variable>();
  /** The queued step on an asynchronous backend (resolved when idle); tests await it. */
  queue: Promise<void> = Promise.resolve();
  private running = 0;
  private failure: unknown = null;
  private hyper: Partial<H> = {};
  private mode: Mode | null = null;

  constructor(
    readonly def: OptimizerDef<H>,
    readonly options: OptimizerOptions<H> = {},
  ) {
    super();
  }

  /** The flashoptim optimizer underneath (null before the first step creates it). */
  get inner(): Session<H> | null {
    return this.gpu?.inner ?? this.flash;
  }

  /** On TF.js's WebGPU backend: what the steps have done so far; null elsewhere. */
  get gpuStats(): GpuStats | null {
    return this.gpu?.stats ?? null;
  }

  private pick(): Mode {
    const tfb = tfWebGpu();
    if (tfb && onTfDevice(tfb, this.options as OptimizerOptions<Hyper>)) {
      this.gpu = new GpuSteps(tfb, this.def, this.options);
      return 'gpu';
    }
    const b = this.options.backend;
    return b === undefined || b === 'js' || isSync(b) ? 'sync' : 'async';
  }

  /** Throw a failed asynchronous step's error, once. */
  private rethrow(): void {
    if (this.failure === null) return;
    const e = this.failure;
    this.failure = null;
    throw e;
  }

  /** Change hyperparameters (e.g. `{ lr }`) from the next step on; a bad value throws here. Never recompiles. */
  setHyper(h: Partial<H>): void {
    const s = this.inner;
    if (s) void s.setHyper(h);
    else this.def.with({ ...this.hyper, ...h }); // validates
    this.hyper = { ...this.hyper, ...h };
  }

  applyGradients(variableGradients: NamedTensorMap | NamedTensor[]): void {
    this.rethrow();
    const mode = (this.mode ??= this.pick());
    if (mode !== 'sync' && this.running > 0)
      throw new Error(
        'FlashTfOptimizer: the previous step is still running on an asynchronous backend; in model.fit add optimizer.fitCallback() to the callbacks, or use applyGradientsAsync / minimizeAsync',
      );
    const list: [string, tf.Tensor][] = Array.isArray(variableGradients)
      ? variableGradients.map((v) => [v.name, v.tensor])
      : Object.entries(variableGradients);
    const trained: [string, tf.Tensor, Variable][] = [];
    for (const [name, g] of list) {
      if (g == null) continue;
      const v = tf.engine().registeredVariables[name];
      if (!v) throw new Error(`tfjs adapter: gradient for ${name}, which is not a registered variable`);
      if (!v.trainable) continue;
      if (v.dtype !== 'float32')
        throw new TypeError(
          `tfjs adapter: variable ${name} has dtype ${v.dtype}; flashoptim trains float32 variables only`,
        );
      if (g.dtype !== 'float32')
        throw new TypeError(`tfjs adapter: gradient of ${name} has dtype ${g.dtype}, expected float32`);
      trained.push([name, g, v]);
    }
    if (mode === 'gpu') this.enqueue(this.gpu!.begin(trained, () => this.hyper));
    else {
      // Snapshot now: TF.js disposes gradient tensors once this call returns.
      const grads: Record<string, Float32Array> = {};
      const fresh: [string, Variable][] = [];
      for (const [name, g, v] of trained) {
        grads[name] = Float32Array.from(g.dataSync() as Float32Array);
        if (!this.vars.has(name)) {
          if (this.flash)
            throw new Error(
              `tfjs adapter: variable ${name} appeared after the first step; create a new optimizer for a new set of variables`,
            );
          fresh.push([name, v]);
        }
      }
      for (const [name, v] of fresh) this.vars.set(name, v);
      if (mode === 'sync') this.stepNow(grads);
      else this.enqueue(() => this.stepLater(grads));
    }
    this.incrementIterations();
  }

  /** Run `step` after this call returns; its failure is thrown from the next call. */
  private enqueue(step: () => Promise<void>): void {
    this.running++;
    this.queue = step().then(
      () => {
        this.running--;
      },
      (e) => {
        this.running--;
        this.failure = e;
      },
    );
  }

  /** Resolves when every queued step has been applied to the tf variables; rejects once with a failed step's error. */
  async settled(): Promise<void> {
    await this.queue;
    this.rethrow();
  }

  async applyGradientsAsync(variableGradients: NamedTensorMap | NamedTensor[]): Promise<void> {
    this.applyGradients(variableGradients);
    await this.settled();
  }

  /** `minimize` that waits for the step: returns the loss as a number. */
  async minimizeAsync(f: () => Scalar, varList?: Variable[]): Promise<number> {
    const cost = this.minimize(f, true, varList)!;
    const value = (await cost.data())[0]!;
    cost.dispose();
    await this.settled();
    return value;
  }

  /** A model.fit callback that waits for each batch's step (needed only on asynchronous backends). */
  fitCallback(): { onBatchEnd: () => Promise<void> } {
    return { onBatchEnd: () => this.settled() };
  }

  /** Bytes per parameter the optimizer holds, by field (after the first step). */
  memory(): Memory | null {
    return this.inner?.memory() ?? null;
  }

  private params(): Record<string, { data: Float32Array; shape: number[] }> {
    const params: Record<string, { data: Float32Array; shape: number[] }> = {};
    for (const [name, v] of this.vars)
      params[name] = { data: Float32Array.from(v.dataSync() as Float32Array), shape: v.shape.slice() };
    return params;
  }

  private assign(now: Record<string, Uint16Array | Float32Array>, names: readonly string[]): void {
    for (const name of names) {
      const v = this.vars.get(name)!;
      tf.tidy(() => v.assign(tf.tensor(toF32(now[name]!), v.shape, 'float32')));
    }
  }

  /** The JS backend: create (first time), step and write the variables back within this call. */
  private stepNow(grads: Record<string, Float32Array>): void {
    if (!this.flash) {
      const s = createOptimizerSync(this.def, this.params(), this.options);
      if (Object.keys(this.hyper).length) void s.setHyper(this.hyper);
      this.flash = s;
    }
    this.flash.stepSync(grads);
    this.assign(this.flash.readParamsSync(), Object.keys(grads));
  }

  private async stepLater(grads: Record<string, Float32Array>): Promise<void> {
    if (!this.flash) {
      const s = await createOptimizer(this.def, this.params(), this.options);
      if (Object.keys(this.hyper).length) await s.setHyper(this.hyper);
      this.flash = s;
    }
    await this.flash.step(grads);
    this.assign(await this.flash.readParams(), Object.keys(grads));
  }

  /** Free the optimizer's buffers (after the step in flight); `settled()` resolves once they are. */
  override dispose(): void {
    const freed = Promise.all([this.flash?.dispose(), this.gpu?.dispose()]);
    this.queue = this.queue.then(() => freed).then(() => {});
    this.flash = this.gpu = null;
    this.mode = null;
  }

  override async getWeights(): Promise<NamedTensor[]> {
    return [await this.saveIterations()];
  }

  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const rest = await this.extractIterations(weightValues);
    if (rest.length)
      throw new Error('tfjs adapter: optimizer state is saved with flashoptim checkpoints, not TF.js weights');
  }

  getConfig(): tf.serialization.ConfigDict {
    return { optimizer: this.def.name, ...(this.def.hyper as tf.serialization.ConfigDict) };
  }
}

tf.serialization.registerClass(FlashTfOptimizer as never);
