// ONE conformance suite for every backend this machine has (test/backends.ts):
// random kernels must match the JS reference bit for bit; fused optimizer steps (every optimizer ×
// scale storage × master bits, 20 steps of random gradients, each step from the same state on
// both) must keep every state code within ±1 and every reconstructed fp32 parameter within two
// correction quanta of the JS backend's.

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { compile } from '../compiler/render/js/compile.ts';
import { fields as kernelFields } from '../compiler/ir/kernel.ts';
import type { Backend } from '../runtime/backends/backend.ts';
import { availableBackends } from './backends.ts';
import { differences, resident } from './harness.ts';
import { randomData, randomKernel, rng } from './random-kernels.ts';
import { compareOptimizer, describeAgreement, optimizerConfigs } from './optimizers.ts';
import type { FieldArray } from '../compiler/ir/kernel.ts';
import type { Uniforms } from '../compiler/ir/pipeline.ts';

const backends = await availableBackends();
console.log(`conformance: backends ${backends.map((b) => b.name).join(', ')}`);
const SEEDS = Number(process.env.FLASHOPTIM_CONFORMANCE_SEEDS ?? 40);

describe.each(backends)('backend $name', (cb) => {
  let backend: Backend;
  beforeAll(async () => { backend = await cb.create(); });
  afterAll(() => backend?.dispose());

  test(`${SEEDS} random kernels match the JS reference${cb.exact ? ' bit for bit' : ''}`, async () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const { kernel: k } = randomKernel(seed);
      const fields = kernelFields(k);
      const r = rng(seed * 7919);
      const n = 1 + Math.floor(r() * 3000), nGroups = Math.ceil(n / k.groupSize);
      const data: Record<string, FieldArray> = {};
      for (const f of fields) data[f.field] = randomData(f.storage, f.axis === 'element' ? n : nGroups, r);
      const rows: Uniforms[] = [{ a: 1.5, b: -0.25 }, { a: -3, b: 1e3 }, { a: 0, b: -0 }];
      const useRows = r() < 0.5;
      const rowOf = useRows ? Uint32Array.from({ length: nGroups }, () => Math.floor(r() * 3)) : undefined;
      const g0 = r() < 0.5 ? 0 : Math.floor(r() * nGroups), g1 = r() < 0.5 ? nGroups : g0 + Math.floor(r() * (nGroups - g0 + 1));
      const uni = useRows ? rows : [rows[0]!];
      const ref = Object.fromEntries(Object.entries(data).map(([f, a]) => [f, a.slice()]));
      const want = compile(k).run({ fields: ref, uniforms: useRows ? rows : rows[0]!, rowOf, groups: [g0, g1], length: n });
      const res = await resident(backend, k, data, n, rowOf);
      const counters = await res.step(uni, [g0, g1]);
      const got = await res.read();
      res.free();
      const where = `seed ${seed} (kernel ${k.name}, groupSize ${k.groupSize}, n ${n}, groups [${g0}, ${g1}), rows ${useRows})`;
      for (const f of fields) {
        const diff = differences(got[f.field]!, ref[f.field]!);
        if (diff.count) console.log(where, f.field, diff, compile(k).source);
        expect(diff.count, `${where}: field ${f.field} ${JSON.stringify(diff.first)}`).toBe(0);
      }
      expect(counters, where).toEqual(k.counters.map((c) => want.counters[c.name]));
    }
  });

  test.each(optimizerConfigs)('$o scale $scale master $bits: 20 steps on the same inputs as JS (codes ±1, params within 2·S/Q)', async (c) => {
    const a = await compareOptimizer(backend, c, cb.optimizerElements, 20);
    console.log(describeAgreement(cb.name, a));
    expect(a.codeWorst).toBeLessThanOrEqual(1);
    expect(a.paramWorst).toBeLessThanOrEqual(1);
  });
});
