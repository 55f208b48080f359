// ONE conformance suite for every backend this machine has (test/backends.ts), kernels half: random
// kernels and launches (test/kernels.ts) must store what the oracle (compiler/ir/interpret.ts, the
// IR's own semantics) stores, bit for bit, element by element, counters included; a backend that
// is not exact must reach its measured fraction. The optimizer half is conformance-optimizers.test.ts.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Backend } from '../runtime/backends/backend.ts';
import { availableBackends } from './backends.ts';
import { differences, onBackend, onOracle, show } from './harness.ts';
import type { Case } from './kernels.ts';
import { narrowCase, sumCase, wideCase } from './kernels.ts';
import { BackendError } from '../runtime/backends/backend.ts';

const backends = await availableBackends();
console.log(`conformance (kernels): ${backends.map((b) => b.name).join(', ')}`);
/** The kernel and its inputs, to reproduce a failure by hand. */
const explain = (c: Case) =>
  [
    ...c.k.outputs.map((o) => `${o.field} (${o.storage}/${o.axis}) = ${show(o.value)}`),
    ...c.k.counters.map((x) => `counter ${x.name} = ${show(x.value)}`),
    `inputs ${JSON.stringify(Object.fromEntries(Object.entries(c.arrays).map(([f, a]) => [f, [...a].map((v) => (Object.is(v, -0) ? '-0' : Number.isNaN(v) ? 'NaN' : String(v)))])))}`,
    `rows ${JSON.stringify(c.rows)}`,
  ].join('\n');
const scale = Number(process.env.FLASHOPTIM_CONFORMANCE_RUNS ?? 1);

describe.each(backends)('backend $name', (cb) => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await cb.create();
  });
  afterAll(() => backend?.dispose());
  const runs = Math.max(1, Math.round(cb.kernelRuns * scale));
  const opts = { exclude: cb.approximate };

  const check = (family: string, arb: fc.Arbitrary<Case>) => async () => {
    let same = 0,
      total = 0;
    await fc.assert(
      fc.asyncProperty(arb, async (c) => {
        const want = onOracle(c, cb.sumLanes?.(backend, c.k)),
          got = await onBackend(backend, c);
        const diff = differences(got, want);
        same += diff.total - diff.count;
        total += diff.total;
        const where = `kernel ${c.k.name}, groupSize ${c.k.groupSize}, n ${c.n}, groups [${c.range}], ${c.rows.length} rows`;
        if (cb.exact && diff.count)
          throw new Error(
            `${where}: ${diff.count} of ${diff.total} stored values differ: ${diff.first.join('; ')}\n${explain(c)}`,
          );
        expect(got.counters, `${where}: counters`).toEqual(
          want.counters.map((x, i) => (cb.exact ? x : (got.counters[i] ?? x))),
        );
      }),
      // FC_SEED replays a failing run (its "seed" line), e.g. -t "backend 'webgpu-driver' .*random kernels".
      { numRuns: runs, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}) },
    );
    console.log(
      `${cb.name} ${family}: ${same} of ${total} stored values bit-identical to the oracle (${((100 * same) / total).toFixed(3)}%) over ${runs} kernels`,
    );
    expect(same / total).toBeGreaterThanOrEqual(cb.exact ? 1 : cb.identicalAtLeast!);
  };

  test(
    `random kernels (outputs in place, two group-max levels, uniform rows, ranges) match the oracle${cb.exact ? ' bit for bit' : ''}`,
    check('wide', wideCase(opts)),
  );
  test(
    'narrow and integer storages, windowed fields, lengths: match the oracle and nothing outside the launch changes',
    check('narrow', narrowCase(opts)),
  );
  // Reduction passes (kernels with groupSum): where the renderer has groupSum, they match like any
  // kernel, the oracle adding in the renderer's order (WGSL: its threads' lanes, `sumLanes`); the
  // runtime's combine of their partials is a separate matter, checked by
  // conformance-optimizers.test.ts. A renderer without groupSum (noGroupSum) refuses the kernel by name
  // (docs/compiler.md, "Reductions"), never runs it as something else.
  test('group sums (reduction passes, one and two levels) match the oracle, or are refused', async () => {
    if (!cb.noGroupSum) return check('sums', sumCase(opts))();
    const c = fc.sample(sumCase(opts), 1)[0]!;
    await expect(backend.compile(c.k)).rejects.toThrow(BackendError);
    await expect(backend.compile(c.k)).rejects.toThrow(/sums over groups \(groupSum/);
  });
});
