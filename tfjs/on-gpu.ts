/// <reference types="@webgpu/types" />
// The adapter's steps on TF.js's WebGPU backend, with no host copy: the optimizer runs on TF.js's
// own GPUDevice (WebGpuBackend.create({ device })), reads each gradient from the tensor's own
// GPUBuffer and writes the new weights into each variable's own GPUBuffer (DeviceParam,
// paramDtype 'f32'), inside one submission per step that uploads only its uniform table.
//
// By default the gradients are also read where they are (gradientRelease, gradDtype 'f32'), so the
// optimizer holds only its states: about 2.1 bytes per parameter for AdamW (8-bit m and v, scales).
//
// Order on the GPU queue is what makes this correct. Within applyGradients (synchronously) the
// variables are prepared (variables.ts), the gradients held, and TF.js's recorded kernels
// submitted (`flush`); the step's own submission comes later, after the optimizer is created
// (first step) and after the runtime's backpressure. So the next batch's forward pass must wait
// for the step to be submitted: `fitCallback()` in model.fit, or settled() (tfjs/adapter.ts).

import * as tf from '@tensorflow/tfjs-core';
import type { Hyper, OptimizerDef } from '../optim/define.ts';
import type { OptimizerOptions } from '../runtime/options.ts';
import { disableOsr } from '../runtime/backends/dawn.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import type { Session } from '../runtime/session.ts';
import type { DeviceGradient } from '../runtime/on-device.ts';
import { BoundVariable } from './variables.ts';
import type { TfWebGpu } from './webgpu.ts';
import { flush, holdGradient } from './webgpu.ts';

/** What the GPU path has done so far (tests read it). */
export interface GpuStats {
  steps: number;
  /** Gradients that were not in a storage buffer and were copied by dataToGPU (0 when zero-copy). */
  copiedGradients: number;
  /** GPU copies for aliases of a variable, and for values assigned to one (variables.ts). */
  detached: number;
  adopted: number;
}

/** Whether the optimizer options let the adapter run on TF.js's device (no backend, or one on that device). */
export function onTfDevice(tfb: TfWebGpu, options: OptimizerOptions<Hyper>): boolean {
  const b = options.backend;
  return b === undefined || (typeof b === 'object' && (b as { device?: unknown }).device === tfb.device);
}

export class GpuSteps<H extends Hyper> {
  private flash: Session<H> | null = null;
  private owned: WebGpuBackend | null = null;
  private readonly vars = new Map<string, BoundVariable>();
  private steps = 0;
  private copied = 0;
  /** The last step's promise (settled either way): dispose() waits for it. */
  private last: Promise<unknown> = Promise.resolve();

  constructor(
    readonly tfb: TfWebGpu,
    private readonly def: OptimizerDef<H>,
    private readonly options: OptimizerOptions<H>,
  ) {
    // TF.js made the device already; if its setup did not turn V8's OSR off (useTfWebGpu does), do
    // it now: in Node, Dawn crashes when OSR replaces a hot loop while a device is alive.
    void disableOsr();
    if (options.paramDtype === 'bf16')
      throw new TypeError(
        "tfjs adapter: on TF.js's WebGPU backend the variables' own f32 buffers are the master weights, updated in place: paramDtype must be 'f32' (or left out), got 'bf16'",
      );
  }

  get inner(): Session<H> | null {
    return this.flash;
  }

  get stats(): GpuStats {
    let detached = 0,
      adopted = 0;
    for (const b of this.vars.values()) {
      detached += b.detached;
      adopted += b.adopted;
    }
    return { steps: this.steps, copiedGradients: this.copied, detached, adopted };
  }

  /**
   * The part of a step that must happen inside applyGradients: bind (first step) or prepare the
   * variables, hold the gradients' buffers, submit TF.js's recorded work. Returns the rest, which
   * creates the optimizer (first step), submits the step and then lets the gradients go.
   */
  begin(grads: readonly (readonly [string, tf.Tensor, tf.Variable])[], hyper: () => Partial<H>): () => Promise<void> {
    const first = this.vars.size === 0;
    for (const [name] of grads)
      if (!this.vars.has(name) && !first)
        throw new Error(
          `tfjs adapter: variable ${name} appeared after the first step; create a new optimizer for a new set of variables`,
        );
    for (const [name, , v] of grads) {
      let bound = this.vars.get(name);
      if (!bound) this.vars.set(name, (bound = new BoundVariable(this.tfb, v)));
      bound.prepare();
    }
    const held = grads.map(([name, g]) => [name, holdGradient(this.tfb, g)] as const);
    flush(this.tfb);
    const release = () => {
      for (const [, h] of held) h.release();
      // A read of a variable while the step was pending may have cached the old values.
      for (const b of this.vars.values()) b.dropCpuCopy();
    };
    return () => {
      const step = (async () => {
        try {
          if (!this.flash) await this.create(hyper);
          const device: Record<string, DeviceGradient> = {};
          for (const [name, h] of held) {
            device[name] = h.gradient;
            if (h.copied) this.copied++;
          }
          await this.flash!.step(device); // resolves once submitted: the gradients may go
          this.steps++;
        } finally {
          release();
        }
      })();
      this.last = step.catch(() => {});
      return step;
    };
  }

  /** `hyper()`: the hyperparameters set so far, read once the optimizer exists (setHyper may come meanwhile). */
  private async create(hyper: () => Partial<H>): Promise<void> {
    const given = this.options.backend as WebGpuBackend | undefined;
    const backend = given ?? (await WebGpuBackend.create({ device: this.tfb.device }));
    const params = Object.fromEntries([...this.vars].map(([name, b]) => [name, b.param]));
    const o = this.options;
    // Gradients are read where TF.js keeps them unless the caller asked for an arena gradient.
    const release = o.gradientRelease ?? o.gradDtype !== 'bf16';
    let s: Session<H>;
    try {
      s = await createOptimizer(this.def, params, {
        ...o,
        paramDtype: 'f32',
        gradientRelease: release,
        gradDtype: o.gradDtype ?? (release ? 'f32' : 'bf16'),
        backend,
      });
    } catch (e) {
      if (!given) backend.dispose(); // the next step tries again from scratch
      throw e;
    }
    if (!given) this.owned = backend;
    this.flash = s; // from here on setHyper goes to it
    const h = hyper();
    if (Object.keys(h).length) await s.setHyper(h);
  }

  /**
   * After the step in flight (its submission writes the variables' buffers): free the optimizer,
   * and its backend when the adapter made it, and let TF.js free the variables' buffers.
   */
  dispose(): Promise<void> {
    return this.last.then(async () => {
      const s = this.flash,
        b = this.owned;
      this.flash = this.owned = null;
      await s?.dispose();
      b?.dispose();
      for (const v of this.vars.values()) v.release();
      this.vars.clear();
    });
  }
}
