// The runtime's promises: one launch per step, no recompiles for new hyperparameters, the memory
// figures, gradient release, non-finite gradients, parameter groups, and bad input that changes
// nothing.

import { describe, expect, it } from 'vitest';
import { compileStats } from '../compiler/render/js/compile.ts';
import { adam, adamw, lion, sgd } from '../optim/index.ts';
import { HyperError } from '../optim/define.ts';
import { fromBf16 } from './codecs.ts';
import { createOptimizer } from './optimizer.ts';
import { NonFiniteError } from './numerics.ts';
import { uniformF32 } from '../props/prng.ts';

const rand = (n: number, seed = 1) => uniformF32(n, seed);

/** A snapshot of every stored field, to prove that a failed call changed nothing. */
async function snapshot(opt: Awaited<ReturnType<typeof createOptimizer>>) {
  const out: Record<string, number[]> = {};
  for (const f of opt.fields) out[f.name] = [...(await opt.readField(f.name))];
  return { fields: out, steps: [...opt.steps] };
}

describe('createOptimizer', () => {
  it('runs ONE kernel launch per step for 50 tensors in 2 parameter groups', async () => {
    const params = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`t${i}`, rand(17 + i * 3, i + 1)]));
    const opt = await createOptimizer(adamw({ lr: 1e-3 }), params, {
      groups: [{ params: ['t0', 't1', 't2'], hyper: { weightDecay: 0 } }],
    });
    const grads = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, rand(v.length, 99)]));
    for (let s = 0; s < 3; s++) {
      const before = opt.backend.launches;
      await opt.step(grads);
      expect(opt.backend.launches - before).toBe(1);
    }
  });

  it('changing the learning rate (setHyper or a schedule) compiles nothing new', async () => {
    const opt = await createOptimizer(adamw({ lr: 1e-3 }), { w: rand(256) }, { schedule: (t) => ({ lr: 1e-3 / t }) });
    await opt.step({ w: rand(256, 2) });
    const misses = compileStats.misses;
    for (let s = 0; s < 5; s++) {
      opt.setHyper({ lr: 1e-3 * (s + 2) });
      await opt.step({ w: rand(256, s + 3) });
    }
    expect(compileStats.misses).toBe(misses);
  });

  it('memory(): AdamW 24-bit with bf16 gradients <= 7.2 B/param, <= 5.2 with gradient release; SGD momentum and Lion <= 6.1', async () => {
    const params = { a: rand(1 << 16), b: rand(4096, 2) };
    const m = async (def: Parameters<typeof createOptimizer>[0], o = {}) =>
      (await createOptimizer(def, params, o)).memory().bytesPerParam;
    const adamwB = await m(adamw()),
      release = await m(adamw(), { gradientRelease: true });
    const sgdB = await m(sgd({ momentum: 0.9 })),
      lionB = await m(lion());
    console.log(`bytes/param: AdamW ${adamwB}, AdamW+release ${release}, SGD-momentum ${sgdB}, Lion ${lionB}`);
    expect(adamwB).toBeLessThanOrEqual(7.2);
    expect(release).toBeLessThanOrEqual(5.2);
    expect(sgdB).toBeLessThanOrEqual(6.1);
    expect(lionB).toBeLessThanOrEqual(6.1);
  });

  it('gradient release: stepTensor and step() give bit-identical state to step() without it, with no arena gradient buffer', async () => {
    const params = { a: rand(1000), b: rand(77, 3) };
    const full = await createOptimizer(adamw({ lr: 1e-2 }), params);
    const rel = await createOptimizer(adamw({ lr: 1e-2 }), params, { gradientRelease: true });
    expect(rel.memory().fields['g']).toBeUndefined();
    for (let s = 0; s < 4; s++) {
      const ga = rand(1000, 10 + s),
        gb = rand(77, 20 + s);
      await full.step({ a: ga, b: gb });
      await rel.stepTensor('b', gb);
      await rel.stepTensor('a', ga);
    }
    expect(await snapshot(rel)).toEqual(await snapshot(full));
    // step() with gradient release: one launch per tensor, each reading its own gradient buffer.
    const g = { a: rand(1000, 30), b: rand(77, 31) };
    await full.step(g);
    await rel.step(g);
    expect(await snapshot(rel)).toEqual(await snapshot(full));
  });

  it('non-finite gradients: counted, their elements keep param and state; onNonFinite error refuses the step and names the tensor', async () => {
    const w = rand(64);
    const opt = await createOptimizer(
      adamw({ lr: 1e-2 }),
      { w, u: rand(40, 5) },
      { onNonFinite: 'error', gradDtype: 'f32' },
    );
    const g = rand(64, 7);
    g[3] = NaN;
    g[40] = Infinity;
    const before = await snapshot(opt);
    const err = await opt.step({ w: g, u: rand(40, 8) }).catch((e) => e);
    expect(err).toBeInstanceOf(NonFiniteError);
    expect(err.message).toMatch(/"w": 2\)/);
    expect(err.counts).toEqual({ w: 2 });
    expect(await snapshot(opt)).toEqual(before); // the step was not taken
    expect(opt.stepCount).toBe(0);
    const ok = await createOptimizer(adamw(), { w }, { gradDtype: 'f32' });
    const p0 = (await ok.readParams()).w!;
    await ok.step({ w: g });
    expect(await ok.nonFinite()).toBe(2);
    const p1 = (await ok.readParams()).w!;
    expect(p1[3]).toBe(p0[3]);
    expect(p1[40]).toBe(p0[40]);
    expect(p1[5]).not.toBe(p0[5]);
    expect([...(await ok.exportFp32()).w!].every(Number.isFinite)).toBe(true);
  });

  it('parameter groups: a group without weight decay does not shrink under zero gradients', async () => {
    const opt = await createOptimizer(
      adamw({ lr: 0.1, weightDecay: 0.5 }),
      { w: rand(64), bias: rand(32, 3) },
      { groups: [{ params: ['bias'], hyper: { weightDecay: 0 } }] },
    );
    const before = await opt.exportFp32();
    await opt.step({ w: new Float32Array(64), bias: new Float32Array(32) });
    const after = await opt.exportFp32();
    expect([...after.bias!]).toEqual([...before.bias!]);
    expect(after.w!.some((x, i) => Math.abs(x) < Math.abs(before.w![i]!))).toBe(true);
  });

  it('importFp32 before the first step keeps the 24-bit precision (the reference loses it)', async () => {
    const x = rand(4096, 9);
    const opt = await createOptimizer(adamw(), { w: new Float32Array(4096) });
    await opt.importFp32({ w: x });
    const back = (await opt.exportFp32()).w!;
    const rel = Math.max(...back.map((y, i) => Math.abs(y - x[i]!) / Math.abs(x[i]!)));
    const bf16Only = Math.max(
      ...fromBf16((await opt.readParams()).w as Uint16Array).map((y, i) => Math.abs(y - x[i]!) / Math.abs(x[i]!)),
    );
    expect(rel).toBeLessThan(1.6e-5);
    expect(bf16Only).toBeGreaterThan(1e-3);
  });

  it('checkNumerics: the intended 0.49-ULP threshold (not the reference 2.04-ULP quirk), raised before the launch', async () => {
    // Weights with max |w| in [1, 2) at bf16 + 24 bits have a resolution of 2^-15 ≈ 3.05e-5, so
    // Adam (k = 0.1) needs lr·0.1 ≥ 0.49·2^-15 ≈ 1.495e-5, i.e. lr ≥ 1.495e-4. The reference's
    // formula would demand lr ≥ 6.2e-4 and reject lr = 2e-4, which still moves these weights.
    const w = Float32Array.from(rand(64), (x) => 1 + x);
    const tooSmall = await createOptimizer(adamw({ lr: 1e-4, weightDecay: 0 }), { w }, { checkNumerics: true });
    const snap = await snapshot(tooSmall);
    await expect(tooSmall.step({ w: rand(64, 2) })).rejects.toThrow(
      /numerics: tensor w has max \|w\| 1\.\d+, whose 24-bit resolution is 3\.052e-5/,
    );
    // Each check reads the current weights (one export launch); the step kernel never runs.
    const launches = tooSmall.backend.launches;
    await expect(tooSmall.step({ w: rand(64, 3) })).rejects.toThrow(/numerics/);
    expect(tooSmall.backend.launches).toBe(launches + 1);
    expect(await snapshot(tooSmall)).toEqual(snap);
    const ok = await createOptimizer(adamw({ lr: 2e-4, weightDecay: 0 }), { w }, { checkNumerics: true });
    const before = await ok.exportFp32();
    await ok.step({ w: rand(64, 2) });
    const after = await ok.exportFp32();
    // The update lr·|m̂/√v̂| ≈ 2e-4 is kept by the 24-bit master weights: every weight moved.
    expect(after.w!.every((x, i) => x !== before.w![i])).toBe(true);
    // With no master bits (bf16 alone, 8 mantissa bits incl. implicit: resolution 2^-7) the same lr is rejected.
    const narrow = await createOptimizer(
      adamw({ lr: 2e-4, weightDecay: 0 }),
      { w },
      { checkNumerics: true, masterWeightBits: null },
    );
    await expect(narrow.step({ w: rand(64, 2) })).rejects.toThrow(/16-bit resolution is 7\.81\de-3/);
  });

  describe('bad input: an error naming the field and value, and nothing changed', () => {
    it('unknown tensor, wrong length, wrong dtype', async () => {
      const opt = await createOptimizer(adam({ lr: 1e-2 }), { w: rand(50) }, { gradDtype: 'f32' });
      await opt.step({ w: rand(50, 2) });
      const snap = await snapshot(opt);
      await expect(opt.step({ nope: rand(50) })).rejects.toThrow(/unknown tensor "nope"/);
      await expect(opt.step({ w: rand(49) })).rejects.toThrow(/gradient "w" has 49 values, the tensor has 50/);
      await expect(opt.step({ w: new Uint16Array(50) })).rejects.toThrow(/gradient "w" must be a Float32Array/);
      await expect(opt.step({ w: new Int32Array(50) as never })).rejects.toThrow(/Int32Array/);
      await expect(opt.step({ w: rand(50), x: rand(3) })).rejects.toThrow(/unknown tensor "x"/);
      expect(await snapshot(opt)).toEqual(snap);
    });

    it('negative lr and betas out of range', async () => {
      expect(() => adamw({ lr: -1 })).toThrow(HyperError);
      expect(() => adamw({ lr: -1 })).toThrow(/lr must be >= 0, got -1/);
      expect(() => adamw({ betas: [0.9, 1.5] })).toThrow(/betas\[1\] must be in \[0, 1\), got 1.5/);
      expect(() => lion({ betas: [-0.1, 0.99] })).toThrow(/betas\[0\]/);
      expect(() => adam({ eps: -1 })).toThrow(/eps must be > 0, got -1/);
      expect(() => sgd({ nesterov: true })).toThrow(/nesterov needs momentum > 0/);
      expect(() => adamw({ lr: 'fast' as never })).toThrow(/lr must be a finite number, got "fast"/);
      expect(() => adamw({ warmup: 3 } as never)).toThrow(/unknown hyperparameter warmup/);
      const opt = await createOptimizer(adamw({ lr: 1e-2 }), { w: rand(10) });
      expect(() => opt.setHyper({ lr: -0.5 })).toThrow(/lr must be >= 0, got -0.5/);
      expect(opt.hyperOf('w').lr).toBe(1e-2);
      expect(() => opt.setHyper({ decoupleLr: true })).toThrow(/structure/);
    });

    it('options and params', async () => {
      await expect(createOptimizer(adamw(), { w: rand(4) }, { masterWeightBits: 16 as never })).rejects.toThrow(
        /masterWeightBits must be one of 24, 32, null, got 16/,
      );
      await expect(
        createOptimizer(adamw(), { w: rand(4) }, { paramDtype: 'f32', masterWeightBits: 24 }),
      ).rejects.toThrow(/no effect on f32/);
      await expect(createOptimizer(adamw(), { w: [1, 2] as never })).rejects.toThrow(
        /param "w" must be a Float32Array, a Uint16Array \(bf16 bits\), \{ data, shape \} or a device parameter \{ buffer, dtype: .f32., shape \}, got \[1, 2\]/,
      );
      await expect(createOptimizer(adamw(), { w: { data: rand(6), shape: [2, 2] } })).rejects.toThrow(
        /shape \[2,2\] but 6 values/,
      );
    });
  });
});
