// The diagnostic builds bench/gpu.ts times are only worth keeping if they work: each ablation
// changes what it names in the rendered WGSL, and each diagnostic backend compiles and runs one
// AdamW step through createOptimizer, storing what it should (what the JS backend stores for the
// exact ones, within the codec bounds for the others, the same bytes back for loads+stores).
import { describe, expect, test } from 'vitest';
import type { FieldArray } from '../../../compiler/ir/kernel.ts';
import { prepare } from '../../../compiler/ir/pipeline.ts';
import type { Ablation } from '../../../compiler/render/wgsl/arith.ts';
import { ablations } from '../../../compiler/render/wgsl/arith.ts';
import { renderWgsl } from '../../../compiler/render/wgsl/render.ts';
import type { Hyper, OptimizerDef } from '../../../optim/define.ts';
import { adamw } from '../../../optim/index.ts';
import { fusedKernel } from '../../../optim/storage.ts';
import { uniformF32 } from '../../../props/prng.ts';
import { toBf16 } from '../../codecs.ts';
import { createOptimizer } from '../../optimizer.ts';
import type { Session } from '../../session.ts';
import { JsBackend } from '../js/js.ts';
import { findAdapter } from './device.ts';
import { createDiagnosticBackend, diagnostics, exactDiagnostics } from './diagnostics.ts';

const hasAdapter = (await findAdapter()) !== null;

describe('diagnostic ablations in the WGSL renderer (AdamW, fused fma)', () => {
  const p = prepare(fusedKernel(adamw()));
  const source = (off: Ablation[]) => renderWgsl(p, { subgroupMinSize: 32, fusedFma: true, diagnostics: off }).source;
  const body = (s: string) => s.slice(s.indexOf('@compute'));
  const count = (s: string, what: string) => body(s).split(what).length - 1;
  const base = source([]);
  const guards = (s: string) =>
    ['ord_', 'fmin_nan(', 'fmax_nan(', 'f32_to_', '> 0x7f800000u'].reduce((n, g) => n + count(s, g), 0);
  const checks: Record<Ablation, (s: string) => void> = {
    exactDiv: (s) => {
      expect(count(s, 'rcp_of(') + count(s, 'div_rcp(') + count(s, 'div_cr')).toBe(0);
      expect(count(base, 'rcp_of(')).toBeGreaterThan(0);
    },
    exactSqrt: (s) => {
      expect(count(s, 'sqrt_cr(')).toBe(0);
      expect(count(s, 'sqrt(')).toBe(count(base, 'sqrt_cr('));
    },
    fallbackBranches: (s) => {
      expect(s).not.toContain('return div_exact(a, b);');
      expect(base).toContain('return div_exact(a, b);');
      expect(body(s)).toBe(body(base));
    },
    contractionGuards: (s) => {
      expect(count(s, 'keep(')).toBe(0);
      expect(count(base, 'keep(')).toBeGreaterThan(0);
    },
    nanGuards: (s) => expect(guards(s)).toBeLessThan(guards(base)),
    rangeAnalysis: (s) => expect(guards(s)).toBeGreaterThan(guards(base)),
    tables: (s) => {
      expect(count(s, 'TB[')).toBe(0);
      expect(count(base, 'TB[')).toBeGreaterThan(0);
    },
    fastPath: (s) => {
      // Only exact: false renders the second body; exact mode is one body either way.
      const driver = (off: Ablation[]) =>
        renderWgsl(p, { subgroupMinSize: 32, fusedFma: true, exact: false, diagnostics: off }).source;
      expect(count(s, 'subgroupAll(fast)')).toBe(0);
      expect(count(driver([]), 'subgroupAll(fast)')).toBe(1);
      expect(count(driver(['fastPath']), 'subgroupAll(fast)')).toBe(0);
      expect(source(['fastPath'])).toBe(base);
      // Both bodies hold fewer guards than the general body twice: the fast one has fewer.
      expect(guards(driver([]))).toBeLessThan(2 * guards(driver(['fastPath'])));
    },
    exactOneBody: (s) => {
      expect(count(base, 'subgroupAll(fast)')).toBe(0);
      expect(count(s, 'subgroupAll(fast)')).toBe(1);
    },
    fastBodyOnly: (s) => {
      // The fast body's checks, and no general body to fall back on: fewer guards than the base.
      expect(count(s, 'fast = fast &&')).toBeGreaterThan(0);
      expect(count(s, 'subgroupAll(fast)')).toBe(0);
      expect(guards(s)).toBeLessThan(guards(base));
    },
  };
  test.each(ablations)('%s changes what it names', (a) => {
    const s = source([a]);
    // The fast path exists with exact: false only (its check compares those sources).
    if (a !== 'fastPath') expect(s).not.toBe(base);
    checks[a](s);
  });
});

const N = 4096;
const params = () => ({ w: uniformF32(N - 37, 1), b: uniformF32(37, 2) });
const grads = { w: toBf16(uniformF32(N - 37, 3, 0.02)), b: toBf16(uniformF32(37, 4, 0.02)) };
const stored = async (o: Session<Hyper>) =>
  Object.fromEntries(
    await Promise.all(o.fields.map(async (f) => [f.name, await o.readField(f.name)] as const)),
  ) as Record<string, FieldArray>;
const halfUlpBf16 = (x: number) => {
  const a = Math.abs(x);
  return a === 0 ? 2 ** -134 : 2 ** (Math.max(Math.floor(Math.log2(a)), -126) - 8);
};

describe.runIf(hasAdapter)('diagnostic backends run one AdamW step through createOptimizer', () => {
  test.each(diagnostics)('%s', async (x) => {
    const backend = await createDiagnosticBackend({}, [x]);
    try {
      const def = adamw({ lr: 1e-2, weightDecay: 0.01 }) as OptimizerDef;
      const dev = await createOptimizer(def, params(), { backend });
      const js = await createOptimizer(def, params(), { backend: new JsBackend() });
      const before = await stored(dev);
      const launches = backend.launches;
      await dev.step(grads);
      await js.step(grads);
      expect(backend.launches).toBe(launches + 1);
      const got = await stored(dev),
        want = await stored(js);
      if (x === 'arithmetic') {
        // Every field stored back unchanged, but p, which also takes the gradient's sign bit.
        const g = new Uint16Array(dev.layout.length);
        for (const [t, v] of Object.entries(grads)) g.set(v, dev.layout.byName.get(t)!.offset);
        for (const f of dev.fields) {
          if (f.name !== 'p') expect([...got[f.name]!], f.name).toEqual([...before[f.name]!]);
          else expect([...got.p!]).toEqual([...before.p!].map((v, i) => v ^ (g[i]! >> 15)));
        }
      } else if (exactDiagnostics.includes(x)) {
        for (const f of dev.fields) expect([...got[f.name]!], f.name).toEqual([...want[f.name]!]);
      } else {
        for (const f of dev.fields)
          if (f.owner !== 'p' && f.axis === 'element')
            got[f.name]!.forEach((v, i) =>
              expect(Math.abs(v - want[f.name]![i]!), `${f.name}[${i}]`).toBeLessThanOrEqual(1),
            );
        const [a, b] = [await dev.exportFp32(), await js.exportFp32()];
        for (const t of ['w', 'b'])
          a[t]!.forEach((v, i) => {
            const y = b[t]![i]!;
            expect(Math.abs(v - y), `${t}[${i}]`).toBeLessThanOrEqual((2 * halfUlpBf16(y)) / 127);
          });
      }
    } finally {
      backend.dispose();
    }
  });
});
