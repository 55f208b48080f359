// Optimizer runtime properties over random models (tensor count and lengths that straddle group
// boundaries, groups, optimizers, hyperparameters):
// - f32 params with quantize false follow the float64 reference (optim/reference.ts) to 1e-6;
// - gradient release (stepTensor per tensor, any order) is bit-identical to step();
// - non-finite gradient elements are counted exactly and keep their parameter bits and states;
// - save → load → step is bit-identical to stepping without the round trip;
// - a gradient of the wrong length is rejected and changes nothing.
// Runs are few and models small: each run compiles once (cached by structure) and steps a few
// hundred elements, so the file stays well inside the CI budget.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { adabelief, adagrad, adam, adamw, ademamix, lamb, lars, lion, rmsprop, sgd, sgdw } from '../optim/index.ts';
import type { OptimizerDef } from '../optim/define.ts';
import { Reference, type RefHyper, type RefName } from '../optim/reference.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import type { OptimizerOptions } from '../runtime/options.ts';
import { loadOptimizer } from '../runtime/optimizer.ts';
import { prng } from './prng.ts';

const RUNS = 100;
const makers: Record<RefName, (h: RefHyper) => OptimizerDef> = {
  sgd: (h) => sgd(h as never),
  sgdw: (h) => sgdw(h as never),
  adam: (h) => adam(h as never),
  adamw: (h) => adamw(h as never),
  lion: (h) => lion(h as never),
  rmsprop: (h) => rmsprop(h as never),
  adagrad: (h) => adagrad(h as never),
  adabelief: (h) => adabelief(h as never),
  ademamix: (h) => ademamix(h as never),
  // Not drawn below: their reductions need whole tensors, which gradient release does not give.
  lamb: (h) => lamb(h as never),
  lars: (h) => lars(h as never),
};

const f32Array = (n: number) =>
  fc
    .array(fc.float({ min: -2, max: 2, noNaN: true, noDefaultInfinity: true }), { minLength: n, maxLength: n })
    .map((a) => Float32Array.from(a));

/** 1–4 tensors of 1–90 elements each (so tails of 32-element groups are exercised). */
const model = fc
  .array(fc.integer({ min: 1, max: 90 }), { minLength: 1, maxLength: 4 })
  .chain((lens) => fc.tuple(...lens.map((n) => f32Array(n))))
  .map((ts) => Object.fromEntries(ts.map((t, i) => [`t${i}`, t])) as Record<string, Float32Array>);

const hyper: fc.Arbitrary<[RefName, RefHyper]> = fc
  .oneof(
    fc.record({
      lr: fc.double({ min: 1e-3, max: 0.1, noNaN: true }),
      momentum: fc.constantFrom(0, 0.9),
      weightDecay: fc.constantFrom(0, 0.05),
      name: fc.constantFrom<RefName>('sgd', 'sgdw'),
    }),
    fc.record({
      lr: fc.double({ min: 1e-4, max: 0.05, noNaN: true }),
      betas: fc.tuple(
        fc.double({ min: 0.5, max: 0.99, noNaN: true }),
        fc.double({ min: 0.9, max: 0.9999, noNaN: true }),
      ),
      eps: fc.constant(1e-8),
      weightDecay: fc.constantFrom(0, 0.05),
      name: fc.constantFrom<RefName>('adam', 'adamw'),
    }),
    fc.record({
      lr: fc.double({ min: 1e-4, max: 0.01, noNaN: true }),
      betas: fc.tuple(
        fc.double({ min: 0.5, max: 0.99, noNaN: true }),
        fc.double({ min: 0.9, max: 0.999, noNaN: true }),
      ),
      weightDecay: fc.constantFrom(0, 0.05),
      name: fc.constant<RefName>('lion'),
    }),
    fc.record({
      lr: fc.double({ min: 1e-4, max: 0.01, noNaN: true }),
      alpha: fc.double({ min: 0.5, max: 0.999, noNaN: true }),
      momentum: fc.constantFrom(0, 0.9),
      centered: fc.boolean(),
      weightDecay: fc.constantFrom(0, 0.05),
      name: fc.constant<RefName>('rmsprop'),
    }),
    fc.record({
      lr: fc.double({ min: 1e-3, max: 0.1, noNaN: true }),
      lrDecay: fc.constantFrom(0, 0.1),
      initialAccumulatorValue: fc.constantFrom(0, 0.1),
      weightDecay: fc.constantFrom(0, 0.05),
      name: fc.constant<RefName>('adagrad'),
    }),
    fc.record({
      lr: fc.double({ min: 1e-4, max: 0.05, noNaN: true }),
      betas: fc.tuple(
        fc.double({ min: 0.5, max: 0.99, noNaN: true }),
        fc.double({ min: 0.9, max: 0.9999, noNaN: true }),
      ),
      weightDecay: fc.constantFrom(0, 0.05),
      name: fc.constant<RefName>('adabelief'),
    }),
    fc.record({
      lr: fc.double({ min: 1e-4, max: 0.05, noNaN: true }),
      betas: fc.tuple(
        fc.double({ min: 0.5, max: 0.99, noNaN: true }),
        fc.double({ min: 0.9, max: 0.9999, noNaN: true }),
        fc.double({ min: 0.99, max: 0.9999, noNaN: true }),
      ),
      alpha: fc.double({ min: 0, max: 8, noNaN: true }),
      alphaWarmup: fc.constantFrom(0, 3),
      beta3Warmup: fc.constantFrom(0, 3),
      weightDecay: fc.constantFrom(0, 0.05),
      name: fc.constant<RefName>('ademamix'),
    }),
  )
  .map(({ name, ...h }) => [name, h]);

/** Deterministic gradients for step s of a model (seeded so two optimizers see the same ones). */
function grads(params: Record<string, Float32Array>, s: number, seed: number): Record<string, Float32Array> {
  const r = prng(seed * 2654435761 + s * 40503),
    rnd = () => r() * 2 - 1;
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, Float32Array.from(v, () => rnd())]));
}

type Opt = Awaited<ReturnType<typeof createOptimizer>>;
async function state(opt: Opt): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const f of opt.fields) out[f.name] = [...(await opt.readField(f.name))];
  return { ...out, steps: [...opt.steps] };
}

describe('optimizer properties', () => {
  test('f32 params, quantize false: every optimizer follows the float64 reference within 1e-6', async () => {
    await fc.assert(
      fc.asyncProperty(model, hyper, fc.integer({ min: 0, max: 1e6 }), async (params, [name, h], seed) => {
        const opts: OptimizerOptions = { paramDtype: 'f32', quantize: false, gradDtype: 'f32' };
        const opt = await createOptimizer(makers[name](h), params, opts);
        const refs = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, new Reference(name, v, h)]));
        // Relative to the tensor's magnitude along the way: its largest |p| and the distance each
        // element travelled. Updates that cancel can leave p near 0 while f32 rounding of each
        // update remains (seen: adam, p0 = 0, 4 steps, 1.016e-6 of the final |p|).
        const path = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, new Float64Array(v.length)]));
        for (let s = 0; s < 4; s++) {
          const g = grads(params, s, seed);
          await opt.step(g);
          for (const [k, r] of Object.entries(refs)) {
            const prev = Float64Array.from(r.p);
            r.step(g[k]!);
            r.p.forEach((x, i) => {
              path[k]![i]! += Math.abs(x - prev[i]!);
            });
          }
        }
        const got = await opt.exportFp32();
        for (const [k, r] of Object.entries(refs)) {
          const scale = Math.max(1e-12, ...r.p.map(Math.abs), ...path[k]!);
          r.p.forEach((x, i) => expect(Math.abs(got[k]![i]! - x) / scale, `${name} ${k}[${i}]`).toBeLessThan(1e-6));
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('gradient release in any tensor order is bit-identical to step()', async () => {
    await fc.assert(
      fc.asyncProperty(model, hyper, fc.integer({ min: 0, max: 1e6 }), async (params, [name, h], seed) => {
        const full = await createOptimizer(makers[name](h), params);
        const rel = await createOptimizer(makers[name](h), params, { gradientRelease: true });
        const names = Object.keys(params);
        for (let s = 0; s < 3; s++) {
          const g = grads(params, s, seed);
          await full.step(g);
          // A different order each step: the result must not depend on it.
          for (const k of s % 2 ? names : [...names].reverse()) await rel.stepTensor(k, g[k]!);
        }
        expect(await state(rel)).toEqual(await state(full));
      }),
      { numRuns: RUNS },
    );
  });

  test('non-finite gradient elements are counted and keep their parameter and state bits', async () => {
    const poison = fc.constantFrom(NaN, Infinity, -Infinity);
    await fc.assert(
      fc.asyncProperty(
        model,
        hyper,
        fc.boolean(),
        fc.array(fc.tuple(fc.nat(), fc.nat(), poison), { minLength: 1, maxLength: 6 }),
        async (params, [name, h], quantize, hits) => {
          const opt = await createOptimizer(makers[name](h), params, { gradDtype: 'f32', quantize });
          await opt.step(grads(params, 0, 1)); // nonzero states, so "kept" is not trivially zero
          const before = await state(opt);
          const g = grads(params, 1, 2);
          const names = Object.keys(params);
          const bad = new Map<string, Set<number>>();
          for (const [t, i, v] of hits) {
            const k = names[t % names.length]!,
              j = i % g[k]!.length;
            g[k]![j] = v;
            if (!bad.has(k)) bad.set(k, new Set());
            bad.get(k)!.add(j);
          }
          const total = [...bad.values()].reduce((a, s) => a + s.size, 0);
          const seen = await opt.nonFinite();
          await opt.step(g);
          expect((await opt.nonFinite()) - seen).toBe(total);
          const after = await state(opt);
          // Element-axis fields that are stored bit-for-bit (param, correction, unquantized states)
          // keep their bits. Group-quantized codes may be re-encoded under a new group scale: for
          // those the decoded parameter must still be finite (checked below) and unchanged (param).
          const exact = opt.fields.filter(
            (f) => f.axis === 'element' && f.owner !== 'g' && (f.owner === 'p' || !quantize),
          );
          expect(exact.length).toBeGreaterThan(0);
          for (const [k, idx] of bad) {
            const off = opt.layout.tensors.find((t) => t.name === k)!.offset;
            for (const j of idx)
              for (const f of exact)
                expect(after[f.name]![off + j], `${f.name} ${k}[${j}]`).toBe(before[f.name]![off + j]);
          }
          await opt.step(grads(params, 2, 3));
          for (const [k, v] of Object.entries(await opt.exportFp32())) expect(v.every(Number.isFinite), k).toBe(true);
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('save → load → step is bit-identical to stepping without the round trip', async () => {
    await fc.assert(
      fc.asyncProperty(model, hyper, fc.integer({ min: 0, max: 1e6 }), async (params, [name, h], seed) => {
        const a = await createOptimizer(makers[name](h), params);
        await a.step(grads(params, 0, seed));
        const b = await loadOptimizer(await a.save(), { def: makers[name](h) });
        await a.step(grads(params, 1, seed));
        await b.step(grads(params, 1, seed));
        expect(await state(b)).toEqual(await state(a));
      }),
      { numRuns: RUNS },
    );
  });

  test('a gradient of the wrong length is rejected and changes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        model,
        hyper,
        fc.nat(),
        fc.integer({ min: -3, max: 3 }).filter((d) => d !== 0),
        async (params, [name, h], t, delta) => {
          const opt = await createOptimizer(makers[name](h), params);
          await opt.step(grads(params, 0, 5));
          const before = await state(opt);
          const g = grads(params, 1, 6);
          const k = Object.keys(params)[t % Object.keys(params).length]!;
          g[k] = new Float32Array(Math.max(0, g[k]!.length + delta) || g[k]!.length + 1);
          await expect(opt.step(g)).rejects.toThrow(new RegExp(k));
          expect(await state(opt)).toEqual(before);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
