// Steps with reductions on the JS engines: clipGradNorm (an option of every optimizer), the
// per-tensor trust ratios of LAMB and LARS, how many launches a step takes, and what refuses them.
import { describe, expect, it } from 'vitest';
import { adamw, lamb, lars, sgd } from '../optim/index.ts';
import type { OptimizerDef } from '../optim/define.ts';
import { agreement, Reference } from '../optim/reference.ts';
import { toBf16, fromBf16 } from './codecs.ts';
import type { Item } from './backends/backend.ts';
import { BackendError } from './backends/backend.ts';
import { passOf } from './reductions.ts';
import { JsBackend } from './backends/js/js.ts';
import { createOptimizer, loadOptimizer } from './optimizer.ts';
import { CheckpointError } from './safetensors.ts';
import { chunkedGrads, chunkedParams, leastSquares, stored } from '../test/problems.ts';
import { uniformF32 } from '../props/prng.ts';

/** The global norm of the gradients as the step sees them: bf16-rounded, non-finite left out. */
function bf16Norm(gs: readonly Float32Array[]): number {
  let s = 0;
  for (const g of gs) for (const x of fromBf16(toBf16(g))) if (Number.isFinite(x)) s += x * x;
  return Math.sqrt(s);
}

describe('clipGradNorm', () => {
  // Least squares (the agreement tests' problem) split into two tensors, so the norm is global.
  const split = (a: ArrayLike<number>) => ({
    w: Float32Array.from(a).subarray(0, 40),
    b: Float32Array.from(a).slice(40),
  });
  const join = (t: Record<string, Float32Array>) => Float32Array.of(...t.w!, ...t.b!);

  it.each([24, 32] as const)(
    'adamw, %i-bit masters: the trajectory of clipping f32 gradients on the host, within the agreement bounds (3 seeds)',
    async (bits) => {
      for (const seed of [1, 2, 3]) {
        const pr = leastSquares(seed);
        const c = 0.5 * Math.hypot(...pr.grad(pr.w0)); // engages on the first steps at least
        const clipped = await createOptimizer(adamw({ lr: 0.01, weightDecay: 0.1 }), split(pr.w0), {
          masterWeightBits: bits,
          clipGradNorm: c,
        });
        const host = await createOptimizer(adamw({ lr: 0.01, weightDecay: 0.1 }), split(pr.w0), {
          masterWeightBits: bits,
        });
        let engaged = 0;
        for (let s = 0; s < 10; s++) {
          const g1 = Float32Array.from(pr.grad(join(await clipped.exportFp32())));
          await clipped.step(split(g1));
          const norm = await clipped.gradNorm();
          expect(norm / bf16Norm([g1]), 'reported pre-clip norm').toBeCloseTo(1, 5);
          if (norm > c) engaged++;
          const g2 = Float32Array.from(pr.grad(join(await host.exportFp32())));
          const n2 = Math.hypot(...g2);
          await host.step(split(g2.map((x) => x * Math.min(1, c / (n2 + 1e-6)))));
        }
        expect(engaged).toBeGreaterThan(0);
        // Adam's step barely sees a gradient's scale, so the trajectory alone would not notice a
        // missing clip; √v's group maxima are proportional to it: clipped ≈ host, unclipped far off.
        const unclipped = await createOptimizer(adamw({ lr: 0.01, weightDecay: 0.1 }), split(pr.w0), {
          masterWeightBits: bits,
        });
        for (let s = 0; s < 10; s++)
          await unclipped.step(split(Float32Array.from(pr.grad(join(await unclipped.exportFp32())))));
        const vmax = async (o: typeof host) => fromBf16((await o.readField('v_scale')) as Uint16Array);
        const [vc, vh, vu] = [await vmax(clipped), await vmax(host), await vmax(unclipped)];
        vh.forEach((x, i) => {
          expect(Math.abs(vc[i]! / x - 1), `√v max of group ${i}, clipped on the device`).toBeLessThan(0.02);
          expect(Math.abs(vu[i]! / x - 1), `√v max of group ${i}, not clipped`).toBeGreaterThan(0.2);
        });
        const a = join(await host.exportFp32()),
          b = join(await clipped.exportFp32());
        const r = agreement(
          a.map((x, i) => x - pr.w0[i]!),
          b.map((x, i) => x - pr.w0[i]!),
        );
        console.log(
          `clipGradNorm adamw ${bits}-bit seed ${seed}: cos ${r.cos.toFixed(6)}, nmse ${r.nmse.toExponential(2)}, engaged ${engaged}/10`,
        );
        expect(r.cos).toBeGreaterThan(bits === 24 ? 0.975 : 0.99);
        expect(r.nmse).toBeLessThan(bits === 24 ? 0.05 : 0.02);
      }
    },
  );

  const params = () => ({ w: uniformF32(300, 1), b: uniformF32(17, 2) });
  const grads = (s: number) => ({ w: uniformF32(300, 10 + s, 0.5), b: uniformF32(17, 20 + s, 0.5) });

  it('above the threshold it engages (the states differ from unclipped ones); below it, every stored bit is unclipped', async () => {
    const g = grads(0);
    const norm = bf16Norm([g.w, g.b]);
    const plain = await createOptimizer(adamw(), params());
    await plain.step(g);
    for (const [c, engages] of [
      [norm / 4, true],
      [norm * 4, false],
    ] as const) {
      const opt = await createOptimizer(adamw(), params(), { clipGradNorm: c });
      await opt.step(g);
      expect(await opt.gradNorm()).toBeCloseTo(norm, 4);
      const [a, b] = [await stored(opt), await stored(plain)];
      const same = Object.keys(a).every((f) => Object.is(a[f]!.join(), b[f]!.join()));
      expect(same, `threshold ${c} vs norm ${norm}`).toBe(!engages);
    }
  });

  it('non-finite gradient elements are left out of the norm and counted', async () => {
    const g = grads(1);
    const norm = bf16Norm([g.w, g.b]);
    g.w[3] = NaN;
    g.b[5] = -Infinity;
    const opt = await createOptimizer(adamw(), params(), { clipGradNorm: 1 });
    await opt.step(g);
    expect(await opt.nonFinite()).toBe(2);
    const finite = bf16Norm([g.w, g.b]);
    expect(finite).toBeLessThan(norm);
    expect(await opt.gradNorm()).toBeCloseTo(finite, 4);
  });

  it('is the same bits on the JS engines and threads', async () => {
    const { JsThreadsBackend } = await import('./backends/js/threads.ts');
    const runs = [];
    for (const backend of [
      new JsBackend({ engine: 'js' }),
      new JsBackend({ engine: 'wasm' }),
      new JsThreadsBackend({ threads: 2, minGroupsPerThread: 1 }),
    ]) {
      const opt = await createOptimizer(lamb(), params(), { clipGradNorm: 1, backend });
      for (let s = 0; s < 3; s++) await opt.step(grads(s));
      runs.push({ fields: await stored(opt), norm: await opt.gradNorm() });
      await opt.dispose();
      backend.dispose();
    }
    for (const r of runs.slice(1)) {
      expect(r.norm).toBe(runs[0]!.norm);
      for (const f of Object.keys(r.fields)) expect([...r.fields[f]!], f).toEqual([...runs[0]!.fields[f]!]);
    }
  });

  it('stepSync (what the TF.js adapter calls) stores what step stores', async () => {
    const [a, b] = [
      await createOptimizer(lars(), params(), { clipGradNorm: 1 }),
      await createOptimizer(lars(), params(), { clipGradNorm: 1 }),
    ];
    for (let s = 0; s < 2; s++) {
      await a.step(grads(s));
      b.stepSync(grads(s));
    }
    const [x, y] = [await stored(a), await stored(b)];
    for (const f of Object.keys(x)) expect([...y[f]!], f).toEqual([...x[f]!]);
  });

  it('a checkpoint loads back with the same clipGradNorm (the reduction pass is part of the kernel)', async () => {
    const opt = await createOptimizer(lamb(), params(), { clipGradNorm: 1 });
    await opt.step(grads(0));
    const bytes = await opt.save();
    await expect(loadOptimizer(bytes)).rejects.toThrow(CheckpointError);
    const again = await loadOptimizer(bytes, { clipGradNorm: 1 });
    for (const o of [opt, again]) await o.step(grads(1));
    const [a, b] = [await stored(opt), await stored(again)];
    for (const f of Object.keys(a)) expect([...b[f]!], f).toEqual([...a[f]!]);
    expect(await again.gradNorm()).toBe(await opt.gradNorm());
  });

  it('is checked, and refused where it cannot run', async () => {
    for (const bad of [0, -1, NaN, Infinity, '1'])
      await expect(createOptimizer(adamw(), params(), { clipGradNorm: bad as never })).rejects.toThrow(
        `createOptimizer: clipGradNorm must be a finite number > 0, got ${typeof bad === 'string' ? '"1"' : bad}`,
      );
    await expect(createOptimizer(adamw(), params(), { clipGradNorm: 1, gradientRelease: true })).rejects.toThrow(
      'gradientRelease cannot run clipGradNorm',
    );
    const opt = await createOptimizer(adamw(), params(), { clipGradNorm: 1 });
    await expect(opt.stepTensor('w', grads(0).w)).rejects.toThrow('stepTensor: clipGradNorm needs every gradient');
    await expect((await createOptimizer(adamw(), params())).gradNorm()).rejects.toThrow('without clipGradNorm');
    // A backend whose buffers are not host memory has no combine yet: a BackendError, not a wrong step.
    class Device extends JsBackend {
      override readonly hostMemory = false;
    }
    for (const def of [adamw(), lamb()] as OptimizerDef[])
      await expect(
        createOptimizer(def, params(), { backend: new Device(), ...(def.name === 'adamw' ? { clipGradNorm: 1 } : {}) }),
      ).rejects.toThrow(BackendError);
    await expect(createOptimizer(lamb(), params(), { backend: new Device() })).rejects.toThrow(
      'optimizer lamb needs reductions (a per-tensor or global sum or max), which this backend cannot run yet',
    );
  });
});

describe('an arena in chunks', () => {
  it('lamb with clipGradNorm over 10 chunks stores the bits of one chunk (partials combined across chunks)', async () => {
    class Small extends JsBackend {
      readonly limits = { maxBufferBytes: 1 << 20, maxBindingBytes: 4096 };
    }
    const [params, grads] = [chunkedParams, chunkedGrads];
    const runs = [];
    for (const backend of [new JsBackend(), new Small()]) {
      const opt = await createOptimizer(lamb(), params(), { backend, clipGradNorm: 1 });
      for (let s = 0; s < 3; s++) await opt.step(grads(s));
      runs.push({ chunks: opt.chunks, norm: await opt.gradNorm(), fields: await stored(opt) });
    }
    expect(runs.map((r) => r.chunks)).toEqual([1, 10]);
    expect(runs[1]!.norm).toBe(runs[0]!.norm);
    for (const f of Object.keys(runs[0]!.fields)) expect([...runs[1]!.fields[f]!], f).toEqual([...runs[0]!.fields[f]!]);
  });
});

describe('launches per step', () => {
  it.each([
    ['adamw: 1', adamw(), undefined, 1],
    ['adamw + clipGradNorm: 2', adamw(), 1, 2],
    ['sgd + clipGradNorm: 2', sgd({ momentum: 0.9 }), 1, 2],
    ['lamb: 2', lamb(), undefined, 2],
    ['lars: 2', lars(), undefined, 2],
    ['lamb + clipGradNorm: 3 (‖u‖ reads the clipped gradient)', lamb(), 1, 3],
    ['lars + clipGradNorm: 3', lars(), 1, 3],
  ] as const)('%s', async (_l, def, clip, want) => {
    const backend = new JsBackend();
    const opt = await createOptimizer(
      def as OptimizerDef,
      { w: uniformF32(200, 1), b: uniformF32(9, 2) },
      {
        backend,
        ...(clip ? { clipGradNorm: clip } : {}),
      },
    );
    const before = backend.launches;
    await opt.step({ w: uniformF32(200, 3), b: uniformF32(9, 4) });
    expect(backend.launches - before).toBe(want);
  });
});

describe('a level in chunks where the launches combine (passOf)', () => {
  it('every launch carries the level and the step’s groups; only the last ends with the combine', () => {
    const program = { prepared: null, source: '' } as never;
    const launch = (groups: readonly [number, number]) => ({ program, launch: { groups } }) as unknown as Item;
    const copy = { copy: {}, length: 1 } as unknown as Item;
    const chunks = [launch([0, 10]), launch([0, 10]), copy, launch([0, 4])];
    const marked = passOf(chunks, 2, [5, 34]);
    expect(marked.map((it) => ('program' in it ? it.launch.pass : 'copy'))).toEqual([
      { level: 2, groups: [5, 34], last: false },
      { level: 2, groups: [5, 34], last: false },
      'copy',
      { level: 2, groups: [5, 34], last: true },
    ]);
    expect(marked.map((it) => ('program' in it ? it.launch.groups : null))).toEqual([[0, 10], [0, 10], null, [0, 4]]);
  });
});

describe('trust ratios, per tensor, against the float64 reference', () => {
  // Two tensors whose ratios differ tenfold and a zero tensor (ratio 1 by the guard): one shared
  // ratio, or none, would miss the reference by far more than f32 rounding.
  const w = uniformF32(64, 1, 2),
    b = uniformF32(40, 2, 0.05),
    z = new Float32Array(24);
  const gw = uniformF32(64, 3, 0.3),
    gb = uniformF32(40, 4, 3),
    gz = uniformF32(24, 5, 1);
  const f32 = { paramDtype: 'f32', quantize: false, gradDtype: 'f32' } as const;

  it.each([
    ['lamb', lamb({ lr: 0.01, weightDecay: 0.1 }), { lr: 0.01, weightDecay: 0.1 }],
    ['lars', lars({ lr: 1, trustCoeff: 0.01, weightDecay: 0.1 }), { lr: 1, trustCoeff: 0.01, weightDecay: 0.1 }],
  ] as const)('%s', async (name, def, h) => {
    const opt = await createOptimizer(def as OptimizerDef, { w, b, z }, f32);
    const refs = { w: new Reference(name, w, h), b: new Reference(name, b, h), z: new Reference(name, z, h) };
    const gs = { w: gw, b: gb, z: gz };
    for (let s = 0; s < 3; s++) {
      const before = await opt.exportFp32();
      const refBefore = Object.fromEntries(Object.entries(refs).map(([k, r]) => [k, Float64Array.from(r.p)]));
      await opt.step(gs);
      const after = await opt.exportFp32();
      const ratios: number[] = [];
      for (const k of ['w', 'b', 'z'] as const) {
        refs[k].step(gs[k]);
        const d = after[k]!.map((x, i) => x - before[k]![i]!),
          dr = refs[k].p.map((x, i) => x - refBefore[k]![i]!);
        // The step's size per tensor is lr·r·‖u‖ (LAMB) or lr·‖m‖ (LARS, m ∝ r): the ratio shows as the norm of the change.
        expect(Math.hypot(...d) / Math.hypot(...dr), `step ${s} tensor ${k}`).toBeCloseTo(1, 5);
        ratios.push(refs[k].trustRatio);
      }
      if (s === 0) expect(ratios[2]).toBe(1); // the zero tensor (it moves by lr·u, so only at first)
      expect(Math.max(ratios[0]!, ratios[1]!) / Math.min(ratios[0]!, ratios[1]!)).toBeGreaterThan(5);
    }
  });
});
