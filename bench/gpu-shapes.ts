// What bench/gpu.ts steps: the tensors (GPT-2 small, or one tensor of N), their bf16 parameters and
// gradients, and what a step's kernel must move per parameter.

import type { Kernel } from '../compiler/ir/kernel.ts';
import { fieldsRead, storageBytes } from '../compiler/ir/kernel.ts';
import { prng } from '../props/prng.ts';

export interface Shape {
  readonly name: string;
  readonly params: Readonly<Record<string, Uint16Array>>;
  readonly grads: Readonly<Record<string, Uint16Array>>;
  /** Parameters in all (unpadded). */
  readonly count: number;
}

/**
 * GPT-2 small's 148 parameter tensors (124,439,808 params), in the order and sizes PyTorch times
 * in torch_gpt2.py (the staging script copies it into .device/), so both time the same tensors.
 */
export function gpt2Tensors(): [string, number][] {
  const t: [string, number][] = [
    ['wte', 50257 * 768],
    ['wpe', 1024 * 768],
  ];
  for (let l = 0; l < 12; l++) {
    const h = `h${l}`;
    t.push(
      [`${h}.ln_1.weight`, 768],
      [`${h}.ln_1.bias`, 768],
      [`${h}.attn.c_attn.weight`, 768 * 2304],
      [`${h}.attn.c_attn.bias`, 2304],
      [`${h}.attn.c_proj.weight`, 768 * 768],
      [`${h}.attn.c_proj.bias`, 768],
      [`${h}.ln_2.weight`, 768],
      [`${h}.ln_2.bias`, 768],
      [`${h}.mlp.c_fc.weight`, 768 * 3072],
      [`${h}.mlp.c_fc.bias`, 3072],
      [`${h}.mlp.c_proj.weight`, 3072 * 768],
      [`${h}.mlp.c_proj.bias`, 768],
    );
  }
  t.push(['ln_f.weight', 768], ['ln_f.bias', 768]);
  return t;
}

const f32 = new Float32Array(1),
  u32 = new Uint32Array(f32.buffer);
const POOL = 1 << 16;

/**
 * n bf16 values uniform in ±scale/2 (truncated from f32): a pool of 2^16 random values tiled from
 * random offsets. Tiling keeps 2^28 of them to memcpy speed; the kernels' cost does not depend on
 * which values repeat.
 */
export function randomBf16(n: number, seed: number, scale: number): Uint16Array {
  const r = prng(seed),
    pool = new Uint16Array(2 * POOL);
  for (let i = 0; i < POOL; i++) {
    f32[0] = (r() - 0.5) * scale;
    pool[i] = pool[i + POOL] = u32[0]! >>> 16;
  }
  const out = new Uint16Array(n);
  for (let at = 0; at < n; at += POOL) {
    const from = Math.floor(r() * POOL);
    out.set(pool.subarray(from, from + Math.min(POOL, n - at)), at);
  }
  return out;
}

/** Parameters (±0.05) and gradients (±0.001) of the named tensors, bf16. */
export function shapeOf(name: string, tensors: readonly [string, number][], seed = 1): Shape {
  const params: Record<string, Uint16Array> = {},
    grads: Record<string, Uint16Array> = {};
  tensors.forEach(([t, n], i) => {
    params[t] = randomBf16(n, seed + 2 * i, 0.1);
    grads[t] = randomBf16(n, seed + 2 * i + 1, 0.002);
  });
  return { name, params, grads, count: tensors.reduce((s, [, n]) => s + n, 0) };
}

/** Bytes a step's kernel loads and stores per parameter: each field read once, each output written once. */
export function bytesMoved(k: Kernel): number {
  const per = (f: { storage: keyof typeof storageBytes; axis: string }) =>
    storageBytes[f.storage] / (f.axis === 'group' ? k.groupSize : 1);
  return fieldsRead(k).reduce((s, f) => s + per(f), 0) + k.outputs.reduce((s, f) => s + per(f), 0);
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b),
    m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
