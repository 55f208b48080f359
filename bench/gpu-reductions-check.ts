// The GPU's steps with reductions against the device-order oracle (test/device-oracle.ts: the IR's
// semantics adding in WebGPU's order), bit for bit, on the bench's own device: AdamW with
// clipGradNorm, LAMB, and LAMB with clipGradNorm (two levels), 3 steps on tensors of which one
// spans several blocks; with the dispatches each step took and gradNorm() against the oracle's.

import type { OptimizerDef } from '../optim/define.ts';
import { adamw, lamb } from '../optim/index.ts';
import { uniformF32 } from '../props/prng.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import type { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import { DeviceOrderOracle, webgpuOrder } from '../test/device-oracle.ts';
import { stored } from '../test/problems.ts';

export interface ReductionCheck {
  readonly label: string;
  /** Stored values (bits) that differ from the oracle's, over every field. */
  readonly differ: number;
  readonly values: number;
  /** The fields with differing values, and how many each. */
  readonly fields: string;
  readonly dispatches: number;
  readonly gradNorm: string;
}

/** Tensors of about n parameters in all, the first of ~80%: several 4096-group blocks from n ≈ 2^18. */
function tensors(n: number): Record<string, Float32Array> {
  const sizes = [Math.floor(n * 0.8), Math.floor(n * 0.15), 77, Math.max(1, Math.floor(n * 0.05) - 77)];
  return Object.fromEntries(sizes.map((m, i) => [`t${i}`, uniformF32(m, 300 + i, 1)]));
}

export async function checkReductions(gpu: WebGpuBackend, n: number): Promise<ReductionCheck[]> {
  const cases: [string, OptimizerDef, number | undefined][] = [
    ['adamw + clipGradNorm 1', adamw({ lr: 1e-3, weightDecay: 0.1 }) as OptimizerDef, 1],
    ['lamb', lamb({ lr: 1e-3 }) as OptimizerDef, undefined],
    ['lamb + clipGradNorm 0.5', lamb({ lr: 1e-3 }) as OptimizerDef, 0.5],
  ];
  const out: ReductionCheck[] = [];
  for (const [label, def, clip] of cases) {
    const opts = clip === undefined ? {} : { clipGradNorm: clip };
    const oracle = new DeviceOrderOracle(webgpuOrder(gpu));
    const [dev, ora] = [
      await createOptimizer(def, tensors(n), { ...opts, backend: gpu }),
      await createOptimizer(def, tensors(n), { ...opts, backend: oracle }),
    ];
    let dispatches = 0,
      norms = 'n/a';
    for (let s = 0; s < 3; s++) {
      const g = Object.fromEntries(Object.entries(tensors(n)).map(([k, v]) => [k, uniformF32(v.length, 50 + s, 0.5)]));
      const before = gpu.launches;
      await dev.step(g);
      dispatches = gpu.launches - before;
      await ora.step(g);
      if (clip !== undefined) {
        const [a, b] = [await dev.gradNorm(), await ora.gradNorm()];
        norms = a === b ? `${a} (the oracle's)` : `${a} DIFFERS from the oracle's ${b}`;
      }
    }
    const [a, b] = [await stored(dev), await stored(ora)];
    let differ = 0,
      values = 0;
    const fields: string[] = [];
    for (const f of Object.keys(b)) {
      const x = new Uint32Array(Float32Array.from(a[f]!).buffer),
        y = new Uint32Array(Float32Array.from(b[f]!).buffer);
      values += y.length;
      let here = 0;
      for (let i = 0; i < y.length; i++) if (x[i] !== y[i]) here++;
      if (here) fields.push(`${f} ${here}`);
      differ += here;
    }
    out.push({ label, differ, values, fields: fields.join(', '), dispatches, gradNorm: norms });
    await dev.dispose();
    await ora.dispose();
  }
  return out;
}
