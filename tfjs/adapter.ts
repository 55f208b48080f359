// Any flashoptim optimizer as a TF.js optimizer: `model.compile({ optimizer })`,
// `optimizer.minimize(f)` and `applyGradients(grads)` work as with tf.train.adam.
//
// Our arena holds the master weights (bf16 + correction, quantized states); after each step the
// tf variables receive the bf16-rounded parameters, which is what the next forward pass sees.
//
// TF.js's applyGradients is synchronous and our step is asynchronous (a backend may be a GPU or a
// worker pool). So applyGradients snapshots the gradients, queues the step and returns; steps run
// in order, and `settled()` resolves once every queued step has landed in the tf variables. Await
// it before the next forward pass: `applyGradientsAsync`, `minimizeAsync` and `fitCallback()` (for
// model.fit) do that for you. A failed step rejects `settled()` with its error.

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
import { createOptimizer } from '../runtime/optimizer.ts';
import type { Memory, Session } from '../runtime/session.ts';

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
  private readonly vars = new Map<string, Variable>();
  private queue: Promise<void> = Promise.resolve();
  private hyper: Partial<H> = {};

  constructor(
    readonly def: OptimizerDef<H>,
    readonly options: OptimizerOptions<H> = {},
  ) {
    super();
  }

  /** The flashoptim optimizer underneath (null before the first step creates it). */
  get inner(): Session<H> | null {
    return this.flash;
  }

  /** Change hyperparameters (e.g. `{ lr }`) from the next queued step on; never recompiles. */
  setHyper(h: Partial<H>): void {
    this.queue = this.queue.then(() => {
      this.hyper = { ...this.hyper, ...h };
      this.flash?.setHyper(h);
    });
  }

  applyGradients(variableGradients: NamedTensorMap | NamedTensor[]): void {
    const list: [string, tf.Tensor][] = Array.isArray(variableGradients)
      ? variableGradients.map((v) => [v.name, v.tensor])
      : Object.entries(variableGradients);
    // Snapshot now: TF.js disposes gradient tensors once this call returns.
    const grads: Record<string, Float32Array> = {};
    for (const [name, g] of list) {
      if (g == null) continue;
      const v = tf.engine().registeredVariables[name];
      if (!v) throw new Error(`tfjs adapter: gradient for ${name}, which is not a registered variable`);
      if (!v.trainable) continue;
      if (g.dtype !== 'float32')
        throw new TypeError(`tfjs adapter: gradient of ${name} has dtype ${g.dtype}, expected float32`);
      grads[name] = Float32Array.from(g.dataSync() as Float32Array);
      if (!this.vars.has(name)) {
        if (this.flash)
          throw new Error(
            `tfjs adapter: variable ${name} appeared after the first step; create a new optimizer for a new set of variables`,
          );
        this.vars.set(name, v);
      }
    }
    this.queue = this.queue.then(() => this.step(grads));
    this.incrementIterations();
  }

  /** Resolves when every queued step has been applied to the tf variables. */
  settled(): Promise<void> {
    return this.queue;
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

  /** A model.fit callback that waits for each batch's step before the next batch runs. */
  fitCallback(): { onBatchEnd: () => Promise<void> } {
    return { onBatchEnd: () => this.settled() };
  }

  /** Bytes per parameter the optimizer holds, by field (after the first step). */
  memory(): Memory | null {
    return this.flash ? this.flash.memory() : null;
  }

  private async step(grads: Record<string, Float32Array>): Promise<void> {
    if (!this.flash) {
      const params: Record<string, { data: Float32Array; shape: number[] }> = {};
      for (const [name, v] of this.vars)
        params[name] = { data: Float32Array.from(v.dataSync() as Float32Array), shape: v.shape.slice() };
      this.flash = await createOptimizer(this.def, params, this.options);
      if (Object.keys(this.hyper).length) this.flash.setHyper(this.hyper);
    }
    await this.flash.step(grads);
    const now = await this.flash.readParams();
    for (const name of Object.keys(grads)) {
      const v = this.vars.get(name)!;
      tf.tidy(() => v.assign(tf.tensor(toF32(now[name]!), v.shape, 'float32')));
    }
  }

  override dispose(): void {
    // The session's buffers are the backend's; a JS backend's are garbage once unreferenced.
    this.flash = null;
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
