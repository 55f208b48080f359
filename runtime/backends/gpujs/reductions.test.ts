// Reductions on the gpu.js backend: the reduction passes' group sums (compiler/render/gpujs/render.ts)
// store the oracle's bits in every mode, and a step with reductions runs where arrays are host
// memory (cpu, webasm: `hostMemory`, the runtime's host combine) and stores what the oracle
// stores; webgpu keeps its arrays on the GPU and has no device-side combine, so it refuses.

import { describe, expect, it } from 'vitest';
import { kernel } from '../../../compiler/ir/kernel.ts';
import * as d from '../../../dsl/ops.ts';
import { adamw, lamb, lars } from '../../../optim/index.ts';
import type { OptimizerDef } from '../../../optim/index.ts';
import { uniformF32 } from '../../../props/prng.ts';
import { onBackend, onOracle } from '../../../test/harness.ts';
import { testModes } from '../../../test/gpujs-harness.ts';
import { OracleBackend } from '../../../test/oracle.ts';
import type { Backend } from '../backend.ts';
import { BackendError } from '../backend.ts';
import { createOptimizer } from '../../optimizer.ts';
import type { OptimizerOptions } from '../../options.ts';
import { GpujsBackend } from './gpujs.ts';

const modes = await testModes();

describe.each(modes)('gpu.js %s mode, group sums', (mode) => {
  it('two levels, a group and an element output reading them, a partial launch: bit for bit', async () => {
    const b = await GpujsBackend.create(mode);
    const x = d.field('x', 'f32'),
      y = d.field('y', 'f32');
    const first = d.groupSum(d.mul(x, d.uniform('a')));
    const k = kernel({
      name: 'sums',
      groupSize: 16,
      outputs: [
        { field: 's', storage: 'f32', axis: 'group', value: d.groupSum(d.mul(y, first)) },
        { field: 'e', storage: 'f32', axis: 'element', value: d.mul(y, first) },
      ],
    });
    // Order-sensitive sums (1e8 swallows small terms unless they come first), fractions (an
    // integer accumulator would drop them), a group of −0 (its sum is +0), NaN and +∞.
    const n = 75,
      nG = Math.ceil(n / 16);
    const X = Float32Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 1e8 : i % 3 === 0 ? -1e8 : 0.3 + i / 7));
    X.fill(-0, 16, 32);
    X[50] = NaN;
    X[70] = Infinity;
    const Y = Float32Array.from({ length: n }, (_, i) => 0.1 * (i % 5) - 0.2);
    const arrays = { x: X, y: Y, s: Float32Array.from({ length: nG }, (_, g) => g + 0.5), e: new Float32Array(n) };
    const c = { k, n, arrays, rows: [{ a: 1.3 }], rowOf: null, range: [0, nG - 1] as const };
    const want = onOracle(c),
      got = await onBackend(b, c);
    expect([...got.arrays.s!]).toEqual([...want.arrays.s!]);
    expect([...got.arrays.e!]).toEqual([...want.arrays.e!]);
    expect(Object.is(got.arrays.s![1], 0)).toBe(true); // y·(+0) summed: +0 here, with the −0 group
    expect(b.calls).toBe(4); // two sums, s, e
    b.dispose();
  });
});

// f32 storage keeps the cpu mode's runs short. These check that the step runs (or is refused) and
// stores what the oracle stores; an update is small beside θ, so a sum one ulp off rarely shows
// here: the group sums above and test/conformance-*.test.ts check the sums bit for bit.
const f32 = { paramDtype: 'f32', quantize: false, gradDtype: 'f32' } as const;
const optimizers: [string, OptimizerDef, Partial<OptimizerOptions>][] = [
  ['lamb', lamb({ lr: 1e-2, weightDecay: 0.01 }) as OptimizerDef, f32],
  ['lars', lars({ lr: 1, trustCoeff: 0.01, weightDecay: 0.01 }) as OptimizerDef, f32],
  ['adamw+clipGradNorm', adamw({ lr: 1e-2 }) as OptimizerDef, { ...f32, clipGradNorm: 0.5 }],
];

/** Two steps of `def` on `backend` from the same start: every stored field and the last gradient norm. */
async function steps(backend: Backend, def: OptimizerDef, options: Partial<OptimizerOptions>) {
  const params = { w: uniformF32(1000, 1, 2), b: uniformF32(40, 2) };
  const opt = await createOptimizer(def, params, { ...options, backend });
  for (let t = 0; t < 2; t++) await opt.step({ w: uniformF32(1000, 10 + t, 0.5), b: uniformF32(40, 20 + t, 0.5) });
  const fields = Object.fromEntries(
    await Promise.all(opt.fields.map(async (f) => [f.name, [...(await opt.readField(f.name))]] as const)),
  );
  return { fields, norm: options.clipGradNorm ? await opt.gradNorm() : null };
}

describe.each(modes)('gpu.js %s mode, steps with reductions', (mode) => {
  const host = mode !== 'webgpu';
  it(`hostMemory is ${host}: ${host ? 'its arrays are host Float32Arrays' : 'its arrays stay on the GPU'}`, async () => {
    const b = await GpujsBackend.create(mode);
    expect(b.hostMemory).toBe(host);
    b.dispose();
  });

  it.each(optimizers)(
    `%s ${host ? 'stores what the oracle stores, bit for bit' : 'is refused: no device-side combine'}`,
    async (_name, def, options) => {
      const b = await GpujsBackend.create(mode);
      try {
        if (!host) {
          await expect(steps(b, def, options)).rejects.toThrow(BackendError);
          await expect(steps(b, def, options)).rejects.toThrow(/device-side combine/);
          return;
        }
        const want = await steps(new OracleBackend(), def, options);
        const got = await steps(b, def, options);
        expect(got).toEqual(want);
      } finally {
        b.dispose();
      }
    },
  );
});
