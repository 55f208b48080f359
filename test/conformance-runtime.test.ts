// The conformance suite through the public API: every built-in optimizer × scale storage × master
// bits, created with createOptimizer on each available backend and on the JS backend. Before each
// step the backend's optimizer loads the JS optimizer's checkpoint (so one step's rounding is
// measured, not a compounded trajectory), both take the same gradients, then every stored code
// must be within ±1 and every fp32 master weight within two correction quanta (2·S/Q; one bf16
// ULP without a correction) of the JS backend's. The fraction bit-identical is printed.

import { describe, expect, test } from 'vitest';
import { adam, adamw, lion, sgd, sgdw } from '../optim/index.ts';
import type { OptimizerDef } from '../optim/define.ts';
import { availableBackends } from './backends.ts';
import type { OptimizerOptions } from '../runtime/options.ts';
import { createOptimizer } from '../runtime/optimizer.ts';

const backends = (await availableBackends()).filter((b) => b.name !== 'js');
const STEPS = Number(process.env.FLASHOPTIM_CONFORMANCE_STEPS ?? 3);
const defs: [string, OptimizerDef][] = [
  ['sgd', sgd({ lr: 0.05, momentum: 0.9, weightDecay: 0.01 }) as OptimizerDef],
  ['sgdw', sgdw({ lr: 0.05, momentum: 0.9, weightDecay: 0.01, nesterov: true }) as OptimizerDef],
  ['adam', adam({ lr: 1e-2, weightDecay: 0.01 }) as OptimizerDef],
  ['adamw', adamw({ lr: 1e-2 }) as OptimizerDef],
  ['lion', lion({ lr: 1e-3, weightDecay: 0.1 }) as OptimizerDef],
];
const configs = defs.flatMap(([name, def]) => (['bf16', 'fp16', 'f32'] as const).flatMap((scale) =>
  ([24, 32, null] as const).map((bits) => ({ name, def, scale, bits }))));

const rand = (n: number, seed: number, scale = 1) => { let s = seed >>> 0; return Float32Array.from({ length: n }, () => (((s = (Math.imul(s, 48271) + 11) >>> 0) / 2 ** 32) - 0.5) * scale); };
const halfUlpBf16 = (x: number) => { const a = Math.abs(x); return a === 0 ? 2 ** -134 : 2 ** (Math.max(Math.floor(Math.log2(a)), -126) - 8); };

describe.each(backends)('backend $name through createOptimizer', (cb) => {
  test.each(configs)('$name scale $scale master $bits', async ({ def, scale, bits }) => {
    const n = Math.min(cb.optimizerElements, 8192);
    const params = { w: rand(n - 37, 1), b: rand(37, 2) };
    const opts: OptimizerOptions = { scale, masterWeightBits: bits };
    const js = await createOptimizer(def, params, opts);
    const backend = await cb.create();
    const dev = await createOptimizer(def, params, { ...opts, backend });
    let codeWorst = 0, paramWorst = 0, same = 0, total = 0;
    for (let s = 0; s < STEPS; s++) {
      await dev.load(await js.save());
      const g = { w: rand(n - 37, 10 + s, 0.02), b: rand(37, 20 + s, 0.02) };
      await js.step(g); await dev.step(g);
      for (const f of js.fields) if (f.owner !== 'p' && f.axis === 'element') {
        const a = await js.backend.read(js.buffer(f.name)), b = await dev.backend.read(dev.buffer(f.name));
        for (let i = 0; i < a.length; i++) codeWorst = Math.max(codeWorst, Math.abs(a[i]! - b[i]!));
      }
      const pa = await js.exportFp32(), pb = await dev.exportFp32();
      for (const k of Object.keys(pa)) pa[k]!.forEach((x, i) => {
        const y = pb[k]![i]!;
        const quantum = bits === null ? 2 * halfUlpBf16(x) : (2 * halfUlpBf16(x)) / (bits === 24 ? 127 : 32767);
        paramWorst = Math.max(paramWorst, Math.abs(x - y) / quantum);
        if (Object.is(x, y)) same++;
        total++;
      });
    }
    backend.dispose();
    console.log(`${cb.name}: codes worst ±${codeWorst}, params worst ${paramWorst.toFixed(3)} of the bound, ${(100 * same / total).toFixed(3)}% bit-identical`);
    expect(codeWorst).toBeLessThanOrEqual(1);
    expect(paramWorst).toBeLessThanOrEqual(1);
  });
});
