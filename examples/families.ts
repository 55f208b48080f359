// The optimizer pairs the training examples compare: an fp32 reference (TF.js's own optimizer
// where TF.js has that family, else ours in fp32 without quantization) and the Flash default
// (bf16 params + int8 correction = 24-bit masters, 8-bit states), same hyperparameters.

import * as tf from '@tensorflow/tfjs-core';
import { adamw, lion, sgd } from '../optim/index.ts';
import { FlashTfOptimizer } from '../tfjs/adapter.ts';
import type { Bar } from './report.ts';

export interface Side {
  readonly name: string;
  make(): tf.Optimizer;
}
export interface Family {
  readonly label: string;
  readonly reference: Side;
  readonly flash: Side;
}

/** Our fp32 mode: f32 parameters (no correction), f32 gradients, unquantized f32 states. */
export const FP32 = { paramDtype: 'f32', gradDtype: 'f32', quantize: false } as const;
/** The Flash default, spelled out: bf16 + int8 correction, bf16 gradients, 8-bit states. */
export const FLASH = { masterWeightBits: 24, quantize: true } as const;

export function families(task: 'mnist' | 'names'): Family[] {
  if (task === 'names') {
    const lr = 3e-3;
    return [
      {
        label: 'Adam(W)',
        reference: { name: 'tf.train.adam (fp32)', make: () => tf.train.adam(lr, 0.9, 0.999, 1e-8) },
        flash: {
          name: 'FlashAdamW',
          make: () => new FlashTfOptimizer(adamw({ lr, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 }), FLASH),
        },
      },
    ];
  }
  const lr = 2e-3;
  return [
    {
      label: 'Adam(W)',
      reference: { name: 'tf.train.adam (fp32)', make: () => tf.train.adam(lr, 0.9, 0.999, 1e-8) },
      flash: {
        name: 'FlashAdamW',
        make: () => new FlashTfOptimizer(adamw({ lr, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 }), FLASH),
      },
    },
    {
      label: 'Lion',
      reference: {
        name: 'Lion (ours, fp32)',
        make: () => new FlashTfOptimizer(lion({ lr: 5e-4, betas: [0.9, 0.99], weightDecay: 0 }), FP32),
      },
      flash: {
        name: 'FlashLion',
        make: () => new FlashTfOptimizer(lion({ lr: 5e-4, betas: [0.9, 0.99], weightDecay: 0 }), FLASH),
      },
    },
    {
      label: 'SGD momentum 0.9',
      reference: { name: 'tf.train.momentum (fp32)', make: () => tf.train.momentum(0.05, 0.9) },
      flash: { name: 'FlashSGD', make: () => new FlashTfOptimizer(sgd({ lr: 0.05, momentum: 0.9 }), FLASH) },
    },
  ];
}

/**
 * Bytes per parameter by field for the memory figure: fp32 AdamW (master, gradient, m, v in f32)
 * against FlashAdamW with and without gradient release, as the runtime reports them.
 */
export async function memoryBars(): Promise<Bar[]> {
  const { createOptimizer } = await import('../runtime/optimizer.ts');
  const n = 1 << 16;
  const params = { w: { data: new Float32Array(n), shape: [n] } };
  const flash = await createOptimizer(adamw({ lr: 1e-3 }), params, FLASH);
  const bars: Bar[] = [
    { config: 'fp32 AdamW', field: 'param', bytes: 4 },
    { config: 'fp32 AdamW', field: 'grad', bytes: 4 },
    { config: 'fp32 AdamW', field: 'm', bytes: 4 },
    { config: 'fp32 AdamW', field: 'v', bytes: 4 },
  ];
  const released = await createOptimizer(adamw({ lr: 1e-3 }), params, { ...FLASH, gradientRelease: true });
  const label: Record<string, string> = {
    p: 'param',
    p_ecc: 'correction',
    g: 'grad',
    m_scale: 'scales',
    v_scale: 'scales',
  };
  for (const [config, s] of [
    ['FlashAdamW', flash],
    ['FlashAdamW + gradient release', released],
  ] as const)
    for (const [field, bytes] of Object.entries(s.memory().perParam))
      bars.push({ config, field: label[field] ?? field, bytes });
  return bars;
}
