// End-to-end memory of training with TF.js: what TF.js holds (variables, gradients, a TF.js
// optimizer's slots, and whatever else is alive: inputs, activations) plus what a flashoptim
// optimizer holds outside TF.js. Measured, not computed from shapes: call it where memory peaks,
// e.g. at the end of applyGradients, when the gradients are still alive.

import * as tf from '@tensorflow/tfjs-core';
import type { Memory } from '../runtime/session.ts';

export interface TrainingBytes {
  /** tf.memory().numBytes: every live tensor (a tensor sharing another's data counts again). */
  readonly tensors: number;
  /** On WebGPU: bytes of TF.js's GPU buffers in use (numBytesInGPU); null elsewhere. */
  readonly gpu: number | null;
  /** Bytes a FlashTfOptimizer allocated on its device (memory().allocated); 0 for TF.js's optimizers, whose slots are tensors. */
  readonly optimizer: number;
  /** `gpu` (or `tensors` where there is no GPU) + `optimizer`. */
  readonly total: number;
}

export function trainingBytes(opt?: tf.Optimizer): TrainingBytes {
  const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number };
  const gpu = typeof m.numBytesInGPU === 'number' ? m.numBytesInGPU : null;
  // A FlashTfOptimizer has memory() (null before its first step); TF.js's optimizers do not.
  const optimizer = (opt as { memory?: () => Memory | null } | undefined)?.memory?.()?.allocated ?? 0;
  return { tensors: m.numBytes, gpu, optimizer, total: (gpu ?? m.numBytes) + optimizer };
}

/**
 * Watch `opt`'s steps: after each applyGradients (where the gradients are still alive) the
 * training bytes are measured, and `peak()` gives the largest so far (`base` until a step runs).
 */
export function peakOfSteps(opt: tf.Optimizer, base: TrainingBytes = trainingBytes(opt)): () => TrainingBytes {
  let peak = base;
  const apply = opt.applyGradients.bind(opt);
  opt.applyGradients = (g) => {
    apply(g);
    const now = trainingBytes(opt);
    if (now.total > peak.total) peak = now;
  };
  return () => peak;
}
