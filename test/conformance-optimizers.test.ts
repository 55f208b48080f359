// ONE conformance suite for every backend this machine has (test/backends.ts), optimizer half:
// 1. every built-in × scale storage × master bits (the later built-ins: each scale and each width
//    once, test/problems.ts), created with createOptimizer on the backend and on the oracle
//    backend (test/oracle.ts: the IR's own semantics). Before each step the backend loads the
//    oracle's checkpoint, both take the same gradients (a few of them NaN or ±Inf), then
//    every stored field must be bit-identical to the oracle's and the non-finite counts equal (a
//    backend that is not exact: codes within ±1, master weights within two correction quanta). A
//    backend that adds reductions in an order of its own (WebGPU, gpu.js in webgpu mode: on the
//    device, in a tree) is compared with an oracle that adds in that order (test/device-oracle.ts);
// 2. ten steps on a least-squares problem agree with the float64 reference (optim/reference.ts).

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { FieldArray } from '../compiler/ir/kernel.ts';
import { agreement, Reference } from '../optim/reference.ts';
import { uniformF32 } from '../props/prng.ts';
import type { Backend } from '../runtime/backends/backend.ts';
import type { OptimizerOptions } from '../runtime/options.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import { availableBackends } from './backends.ts';
import { OracleBackend } from './oracle.ts';
import {
  builtins,
  conformanceConfigs,
  halfUlpBf16,
  laterConformanceConfigs,
  leastSquares,
  reduces,
  stepOptions,
  stored,
  variantName,
} from './problems.ts';

const backends = await availableBackends();
console.log(`conformance (optimizers): ${backends.map((b) => b.name).join(', ')}`);
const STEPS = Number(process.env.FLASHOPTIM_CONFORMANCE_STEPS ?? 3);
const N = 4096;

const configs = [...conformanceConfigs, ...laterConformanceConfigs];
type Config = (typeof configs)[number];

const params = () => ({ w: uniformF32(N - 37, 1), b: uniformF32(37, 2) });
/** Step s's gradients; step 1 (the second) carries NaN and ±Inf elements, which must be skipped alike. */
function grads(s: number): Record<string, Float32Array> {
  const g = { w: uniformF32(N - 37, 10 + s, 0.02), b: uniformF32(37, 20 + s, 0.02) };
  if (s === 1) {
    g.w[3] = NaN;
    g.w[100] = Infinity;
    g.b[5] = -Infinity;
  }
  return g;
}

/** The oracle's trajectory of one config: the checkpoint before each step, what it stored after, its counts. */
interface Trajectory {
  readonly before: Uint8Array[];
  readonly after: Record<string, FieldArray>[];
  readonly fp32: Record<string, Float32Array>[];
  readonly nonFinite: number[];
}
const trajectories = new Map<string, Promise<Trajectory>>();
/** `order`: the oracle of a backend's own order of reductions (cached under the backend's name). */
function trajectory(c: Config, order?: { readonly name: string; make(): Backend }): Promise<Trajectory> {
  const key = order ? `${c.key} in ${order.name}'s order` : c.key;
  let t = trajectories.get(key);
  if (!t) {
    t = (async () => {
      const opt = await createOptimizer(c.def, params(), {
        scale: c.scale,
        masterWeightBits: c.bits,
        backend: order ? order.make() : new OracleBackend(),
        ...stepOptions[c.name],
      });
      const out: Trajectory = { before: [], after: [], fp32: [], nonFinite: [] };
      for (let s = 0; s < STEPS; s++) {
        out.before.push(await opt.save());
        const seen = await opt.nonFinite();
        await opt.step(grads(s));
        out.nonFinite.push((await opt.nonFinite()) - seen);
        out.after.push(await stored(opt));
        out.fp32.push(await opt.exportFp32());
      }
      return out;
    })();
    trajectories.set(key, t);
  }
  return t;
}

describe.each(backends)('backend $name through createOptimizer', (cb) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await cb.create();
  });
  afterAll(() => backend?.dispose());

  test.each(configs)(
    `$name scale $scale master $bits: each step stores what the oracle stores${cb.exact ? ', bit for bit' : ''}`,
    async (c) => {
      const options = { scale: c.scale, masterWeightBits: c.bits, backend, ...stepOptions[c.name] };
      // WebGPU and gpu.js in webgpu mode add a reduction's partials on the device in a tree, not
      // in group order: their oracle adds in that order too.
      const order = reduces(c.name) && cb.reductionOrder ? cb.reductionOrder : undefined;
      const want = await trajectory(c, order && { name: cb.name, make: () => order(backend) });
      const dev = await createOptimizer(c.def, params(), options);
      let same = 0,
        total = 0,
        codeWorst = 0,
        paramWorst = 0;
      for (let s = 0; s < STEPS; s++) {
        await dev.load(want.before[s]!);
        const seen = await dev.nonFinite();
        await dev.step(grads(s));
        expect((await dev.nonFinite()) - seen, `step ${s}: non-finite count`).toBe(want.nonFinite[s]);
        const got = await stored(dev);
        for (const f of dev.fields) {
          const a = got[f.name]!,
            b = want.after[s]![f.name]!;
          for (let i = 0; i < b.length; i++) {
            total++;
            if (Object.is(a[i], b[i])) same++;
            else if (cb.exact)
              throw new Error(`step ${s}: ${f.name}[${i}] is ${a[i]} on ${cb.name}, ${b[i]} on the oracle`);
            else if (f.owner !== 'p' && f.axis === 'element') codeWorst = Math.max(codeWorst, Math.abs(a[i]! - b[i]!));
          }
        }
        const pa = await dev.exportFp32();
        for (const k of Object.keys(pa))
          pa[k]!.forEach((x, i) => {
            const y = want.fp32[s]![k]![i]!;
            const quantum = c.bits === null ? 2 * halfUlpBf16(y) : (2 * halfUlpBf16(y)) / (c.bits === 24 ? 127 : 32767);
            paramWorst = Math.max(paramWorst, Math.abs(x - y) / quantum);
          });
      }
      console.log(
        `${cb.name} ${c.key}: ${((100 * same) / total).toFixed(3)}% of stored values bit-identical to the oracle; codes worst ±${codeWorst}, params worst ${paramWorst.toFixed(3)} of the bound`,
      );
      expect(codeWorst).toBeLessThanOrEqual(1);
      expect(paramWorst).toBeLessThanOrEqual(1);
    },
  );

  // Gradient release: stepping every tensor with stepTensor (its gradient in a buffer of its own,
  // a windowed field of the kernel), or all of them with step() (one launch per tensor, one
  // submission), stores exactly what one step() stores.
  const release = configs.flatMap((c) =>
    c.scale === 'bf16' && c.bits === 24 && !reduces(c.name)
      ? (['stepTensor on every tensor', 'step()'] as const).map((how) => ({ ...c, how }))
      : [],
  );
  test.each(release)('$name, gradient release: $how stores what step() stores on the oracle', async (c) => {
    const want = await trajectory(c);
    const dev = await createOptimizer(c.def, params(), {
      scale: c.scale,
      masterWeightBits: c.bits,
      backend,
      gradientRelease: true,
    });
    for (let s = 0; s < STEPS; s++) {
      await dev.load(want.before[s]!);
      const seen = await dev.nonFinite();
      if (c.how === 'step()') await dev.step(grads(s));
      else for (const [name, g] of Object.entries(grads(s))) await dev.stepTensor(name, g);
      expect((await dev.nonFinite()) - seen, `step ${s}: non-finite count`).toBe(want.nonFinite[s]);
      const got = await stored(dev);
      for (const f of dev.fields) {
        const a = got[f.name]!,
          b = want.after[s]![f.name]!;
        let same = 0;
        for (let i = 0; i < b.length; i++) if (Object.is(a[i], b[i])) same++;
        if (cb.exact) expect(same, `step ${s}: ${f.name}`).toBe(b.length);
        else expect(same / b.length, `step ${s}: ${f.name}`).toBeGreaterThanOrEqual(cb.identicalAtLeast!);
      }
    }
  });

  // Agreement with the float64 reference (spec §5 tolerances): 10 steps from the same start.
  const storages: [string, OptimizerOptions, (r: { cos: number; nmse: number; rel: number }) => void][] = [
    [
      'bf16 + 24-bit master, 8-bit states (cos > 0.975, NMSE < 0.05)',
      {},
      (r) => {
        expect(r.cos).toBeGreaterThan(0.975);
        expect(r.nmse).toBeLessThan(0.05);
      },
    ],
    [
      'bf16 + 32-bit master, 8-bit states (cos > 0.99, NMSE < 0.02)',
      { masterWeightBits: 32 },
      (r) => {
        expect(r.cos).toBeGreaterThan(0.99);
        expect(r.nmse).toBeLessThan(0.02);
      },
    ],
    [
      'f32 params and states (within 1e-6 relative)',
      { paramDtype: 'f32', quantize: false, gradDtype: 'f32' },
      (r) => expect(r.rel).toBeLessThan(1e-6),
    ],
  ];
  const cases = builtins.flatMap(([name, make, h]) =>
    storages.map(([label, opts, check]) => ({ name, variant: variantName(name, h), make, h, label, opts, check })),
  );
  test.each(cases)(
    '$variant, $label: 10 least-squares steps agree with the float64 reference (3 seeds)',
    async ({ name, variant, make, h, opts, check }) => {
      for (const seed of [1, 2, 3]) {
        const pr = leastSquares(seed);
        const opt = await createOptimizer(make(h), { w: pr.w0 }, { ...opts, backend });
        const ref = new Reference(name, pr.w0, h);
        const start = (await opt.exportFp32()).w!;
        for (let s = 0; s < 10; s++) {
          await opt.step({ w: Float32Array.from(pr.grad((await opt.exportFp32()).w!)) });
          ref.step(pr.grad(ref.p));
        }
        const end = (await opt.exportFp32()).w!;
        const scale = Math.max(...ref.p.map(Math.abs));
        const rel = Math.max(...end.map((x, i) => Math.abs(x - ref.p[i]!))) / scale;
        const r = {
          ...agreement(
            ref.p.map((x, i) => x - pr.w0[i]!),
            end.map((x, i) => x - start[i]!),
          ),
          rel,
        };
        console.log(
          `${cb.name} ${variant} ${JSON.stringify(opts)} seed ${seed}: cos ${r.cos.toFixed(5)}, nmse ${r.nmse.toExponential(2)}, max rel ${r.rel.toExponential(2)}`,
        );
        check(r);
      }
    },
  );
});
