// One regression test per reliability finding (silent corruption, hangs, leaks, misleading
// errors): each failed on the code before the fix. Fuzzing and concurrency have files of their own
// (runtime/checkpoint.fuzz.test.ts, test/concurrency.test.ts).

import { describe, expect, it } from 'vitest';
import { add, div, mul, sub } from '../dsl/ops.ts';
import { defineOptimizer, HyperError } from '../optim/define.ts';
import { adam, adamw, lion, sgd } from '../optim/index.ts';
import { uniformF32 } from '../props/prng.ts';
import { GpujsBackend } from './backends/gpujs/gpujs.ts';
import { JsBackend } from './backends/js/js.ts';
import { JsThreadsBackend } from './backends/js/threads.ts';
import { NonFiniteError } from './numerics.ts';
import { createOptimizer, loadOptimizer } from './optimizer.ts';

const w = () => uniformF32(64, 1);

describe('checkpoints', () => {
  it('1. load and loadOptimizer read a Node Buffer that is a view into a larger pool (they decoded garbage)', async () => {
    const opt = await createOptimizer(adamw(), { w: w() });
    await opt.step({ w: uniformF32(64, 2) });
    const bytes = await opt.save();
    const pool = Buffer.alloc(bytes.length + 4096, 7);
    pool.set(bytes, 1000);
    const view = pool.subarray(1000, 1000 + bytes.length);
    const b = await loadOptimizer(view);
    expect(await b.save()).toEqual(bytes);
    await opt.load(view);
    expect(await opt.save()).toEqual(bytes);
  });

  it("5. parameter groups survive loadOptimizer (every tensor took the last tensor's hyperparameters)", async () => {
    const opt = await createOptimizer(
      adamw({ weightDecay: 0.1 }),
      { w: w(), b: uniformF32(8, 3) },
      { groups: [{ params: ['b'], hyper: { weightDecay: 0 } }] },
    );
    const back = await loadOptimizer(await opt.save());
    expect(back.hyperOf('w').weightDecay).toBe(0.1);
    expect(back.hyperOf('b').weightDecay).toBe(0);
  });
});

describe('hyperparameters that would destroy the weights are refused, in the factory, setHyper and schedules', () => {
  it.each([
    ['lr Infinity', () => adamw({ lr: Infinity }), /lr must be a finite number, got Infinity/],
    ['lr NaN (reported as NaN, not null)', () => adamw({ lr: NaN }), /lr must be a finite number, got NaN/],
    ['weightDecay Infinity', () => adamw({ weightDecay: Infinity }), /weightDecay must be a finite number/],
    ['betas containing 1', () => adam({ betas: [0.9, 1] }), /betas\[1\] must be in \[0, 1\), got 1/],
    ['SGD momentum Infinity', () => sgd({ momentum: Infinity }), /momentum must be a finite number/],
    ['SGD momentum −0.5', () => sgd({ momentum: -0.5 }), /momentum must be in \[0, 1\), got -0.5/],
    ['SGD dampening −2', () => sgd({ momentum: 0.9, dampening: -2 }), /dampening must be in \[0, 1\), got -2/],
    ['eps 0', () => adamw({ eps: 0 }), /eps must be > 0, got 0/],
    ['lion betas 1', () => lion({ betas: [1, 0.99] }), /betas\[0\] must be in \[0, 1\)/],
  ] as const)('%s', (_what, make, message) => {
    expect(make).toThrow(HyperError);
    expect(make).toThrow(message);
  });

  it('setHyper and a schedule are checked the same way, and a refused call changes nothing', async () => {
    const opt = await createOptimizer(adamw({ lr: 1e-2 }), { w: w() });
    expect(() => opt.setHyper({ lr: Infinity })).toThrow(/lr must be a finite number/);
    expect(opt.hyperOf('w').lr).toBe(1e-2);
    const scheduled = await createOptimizer(adamw(), { w: w() }, { schedule: (t) => ({ lr: t > 1 ? -1 : 1e-3 }) });
    await scheduled.step({ w: uniformF32(64, 2) });
    const before = await scheduled.save();
    await expect(scheduled.step({ w: uniformF32(64, 3) })).rejects.toThrow(/lr must be >= 0, got -1/);
    expect(await scheduled.save()).toEqual(before);
  });
});

describe('names', () => {
  it('7. names that collide with the checkpoint format are refused at creation; __proto__ works everywhere', async () => {
    await expect(createOptimizer(adamw(), { w: w(), 'w::m': w() })).rejects.toThrow(/tensor name "w::m" is reserved/);
    await expect(createOptimizer(adamw(), { __metadata__: w() })).rejects.toThrow(/"__metadata__" is reserved/);
    const params = Object.fromEntries([
      ['__proto__', w()],
      ['constructor', uniformF32(8, 5)],
    ]);
    const opt = await createOptimizer(adamw(), params);
    await opt.step(
      Object.fromEntries([
        ['__proto__', uniformF32(64, 2)],
        ['constructor', uniformF32(8, 6)],
      ]),
    );
    const out = await opt.exportFp32();
    expect(Object.keys(out)).toEqual(['__proto__', 'constructor']);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')!.value).toHaveLength(64);
    const back = await loadOptimizer(await opt.save());
    expect(await back.save()).toEqual(await opt.save());
  });

  it('a tensor in two groups is refused', async () => {
    await expect(
      createOptimizer(
        adamw(),
        { w: w() },
        {
          groups: [
            { params: ['w'], hyper: {} },
            { params: ['w'], hyper: { lr: 1 } },
          ],
        },
      ),
    ).rejects.toThrow(/tensor "w" is in groups\[0\] and groups\[1\]/);
  });
});

describe('8. the DSL names what is wrong at createOptimizer', () => {
  const make = (update: Parameters<typeof defineOptimizer>[0]['update']) =>
    defineOptimizer({
      name: 'broken',
      hyper: { lr: 1e-2 },
      state: { m: (s) => sgd({ momentum: 0.9 }).states['m']!(s) },
      update,
    })();
  it('a misspelled state (v.mm) is an error naming it (it became a NaN constant)', async () => {
    const def = make((v, u) => ({ p: sub(v['p']!, mul(u('lr'), v['mm']!)), m: v['m']! }));
    await expect(createOptimizer(def, { w: w() })).rejects.toThrow(
      /the update reads "mm", which is neither p, g nor a state \(it can read p, g, m\)/,
    );
  });
  it('a NaN constant and a division by a constant zero are errors', async () => {
    await expect(
      createOptimizer(
        make((v) => ({ p: add(v['p']!, div(0, 0)), m: v['m']! })),
        { w: w() },
      ),
    ).rejects.toThrow(/contains a NaN constant/);
    await expect(
      createOptimizer(
        make((v) => ({ p: div(v['p']!, 0), m: v['m']! })),
        { w: w() },
      ),
    ).rejects.toThrow(/divides by a constant zero/);
  });
  it('returning a number, an unknown key, or reading an unprovided uniform are errors', async () => {
    await expect(
      createOptimizer(
        make((v) => ({ p: 0.5 as never, m: v['m']! })),
        { w: w() },
      ),
    ).rejects.toThrow(/must return an expression for p .*got the number 0.5/);
    await expect(
      createOptimizer(
        make((v) => ({ p: v['p']!, m: v['m']!, q: v['g']! })),
        { w: w() },
      ),
    ).rejects.toThrow(/returned "q", which is not p or a state/);
    await expect(
      createOptimizer(
        make((v, u) => ({ p: mul(v['p']!, u('lr2')), m: v['m']! })),
        { w: w() },
      ),
    ).rejects.toThrow(/reads uniform "lr2", which uniforms\(\) does not provide/);
  });
  it('a NaN or a string from uniforms() is refused before the launch, and nothing changes', async () => {
    const bad = defineOptimizer({
      name: 'nanUniform',
      hyper: { lr: 1e-2 },
      state: {},
      uniforms: (h) => ({ k: h.lr > 0.5 ? NaN : 1 }),
      update: (v, u) => ({ p: mul(v['p']!, u('k')) }),
    });
    const opt = await createOptimizer(bad(), { w: w() });
    await opt.step({ w: w() });
    await opt.setHyper({ lr: 1 });
    const before = await opt.save();
    await expect(opt.step({ w: w() })).rejects.toThrow(
      /uniform k of tensor "w" is NaN; every uniform must be a finite number/,
    );
    expect(await opt.save()).toEqual(before);
    const str = defineOptimizer({
      name: 'strUniform',
      hyper: { lr: 1e-2 },
      state: {},
      uniforms: () => ({ k: 'x' as never }),
      update: (v, u) => ({ p: mul(v['p']!, u('k')) }),
    });
    await expect((await createOptimizer(str(), { w: w() })).step({ w: w() })).rejects.toThrow(
      /uniform k of tensor "w" is "x"/,
    );
  });
});

describe('numerics', () => {
  it('10. checkNumerics uses the current weights (it cached max |w| once and stopped firing as weights grew)', async () => {
    const opt = await createOptimizer(
      adamw({ lr: 2e-4, weightDecay: 0 }),
      { w: Float32Array.from(w(), (x) => 1 + x) },
      { checkNumerics: true },
    );
    await opt.step({ w: uniformF32(64, 2) }); // max |w| < 2: lr·0.1 is above 0.49 ULP
    await opt.importFp32({ w: new Float32Array(64).fill(300) }); // now 2^8: the update is rounded away
    await expect(opt.step({ w: uniformF32(64, 3) })).rejects.toThrow(/max \|w\| 300/);
  });

  it('a finite f32 gradient that rounds to bf16 −Inf is named in the NonFiniteError (it said "skipped ()")', async () => {
    const opt = await createOptimizer(adamw(), { w: w() }, { onNonFinite: 'error' });
    const g = uniformF32(64, 2);
    g[5] = -3.4e38;
    const err = await opt.step({ w: g }).catch((e) => e);
    expect(err).toBeInstanceOf(NonFiniteError);
    expect(err.message).toMatch(/1 non-finite gradient element\(s\) \("w": 1\)/);
  });
});

describe('hangs and leaks', () => {
  it('JsThreadsBackend.dispose() with a step in flight settles that step (it never did)', async () => {
    const backend = new JsThreadsBackend({ threads: 2, minGroupsPerThread: 1 });
    const n = 1 << 22; // a launch of tens of milliseconds: still running when dispose() comes
    const opt = await createOptimizer(adamw(), { w: uniformF32(n, 1) }, { backend });
    const step = opt.step({ w: uniformF32(n, 2) });
    await new Promise((r) => setTimeout(r, 5));
    backend.dispose();
    await expect(step).rejects.toThrow(/disposed while a launch was running|used after dispose/);
  });

  it('1000 create/dispose cycles on one JsBackend keep its memory flat (it grew by 454 MB)', async () => {
    const backend = new JsBackend();
    const cycle = async () => {
      const opt = await createOptimizer(adamw(), { w: uniformF32(10_000, 1) }, { backend });
      await opt.step({ w: uniformF32(10_000, 2) });
      await opt.dispose();
    };
    for (let i = 0; i < 20; i++) await cycle();
    const heap = (backend as unknown as { heap: { used: number; memory: WebAssembly.Memory } }).heap;
    const used = heap.used,
      size = heap.memory.buffer.byteLength;
    for (let i = 0; i < 1000; i++) await cycle();
    expect(heap.used).toBe(used);
    expect(heap.memory.buffer.byteLength).toBe(size);
  });

  it('a stepTensor that throws frees its gradient buffer', async () => {
    const backend = new JsBackend();
    const opt = await createOptimizer(
      adamw(),
      { w: uniformF32(1 << 14, 1) },
      { backend, gradientRelease: true, onNonFinite: 'skip', schedule: (t) => ({ lr: t > 1 ? -1 : 1e-3 }) },
    );
    await opt.stepTensor('w', uniformF32(1 << 14, 2));
    const heap = (backend as unknown as { heap: { used: number } }).heap;
    const used = heap.used;
    for (let i = 0; i < 50; i++)
      await expect(opt.stepTensor('w', uniformF32(1 << 14, 3))).rejects.toThrow(/lr must be >= 0/);
    expect(heap.used).toBe(used);
  });
});

describe('misleading errors, now clear', () => {
  it.each([
    [
      "backend: 'gpu'",
      () => createOptimizer(adamw(), { w: w() }, { backend: 'gpu' as never }),
      /backend must be 'js' or a backend object .*got "gpu"/,
    ],
    [
      'null params',
      () => createOptimizer(adamw(), null as never),
      /params must be an object of tensors by name, got null/,
    ],
    [
      '{ data } without shape',
      () => createOptimizer(adamw(), { w: { data: w() } as never }),
      /param "w": shape must be an array of non-negative integers, got undefined/,
    ],
    [
      "quantize: 'yes'",
      () => createOptimizer(adamw(), { w: w() }, { quantize: 'yes' as never }),
      /quantize must be true or false, got "yes"/,
    ],
    [
      'checkNumerics: 1',
      () => createOptimizer(adamw(), { w: w() }, { checkNumerics: 1 as never }),
      /checkNumerics must be true or false, got 1/,
    ],
    [
      'shape [-2, -2]',
      () => createOptimizer(adamw(), { w: { data: new Float32Array(4), shape: [-2, -2] } }),
      /shape must be an array of non-negative integers, got \[-2, -2\]/,
    ],
    [
      'a misspelled option',
      () => createOptimizer(adamw(), { w: w() }, { masterWeightBit: 24 } as never),
      /unknown option masterWeightBit/,
    ],
  ] as const)('%s', async (_what, call, message) => {
    await expect(call()).rejects.toThrow(message);
  });

  it('memory() reports what each backend holds (gpu.js: every value an f32), and 0 per param for empty tensors', async () => {
    const gpujs = await GpujsBackend.create('cpu');
    const held = (await createOptimizer(adamw(), { w: uniformF32(4096, 1) }, { backend: gpujs })).memory();
    expect(held.bytesPerParam).toBeCloseTo(5 * 4 + (2 * 4) / 32, 5);
    const empty = await createOptimizer(adamw(), { w: new Float32Array(0) });
    expect(empty.memory().bytesPerParam).toBe(0);
    expect((await createOptimizer(adamw(), { w: uniformF32(4096, 1) })).memory().bytesPerParam).toBe(7.125);
  });
});
