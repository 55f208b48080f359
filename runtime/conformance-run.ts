// The optimizer conformance check as a plain script (no vitest), for machines with only Node,
// such as the lent H200:  N=100000 node conformance-run.mjs  (bundled by ../shared/gpu/stage.sh).
// Exits non-zero if any configuration breaks the bounds of runtime/conformance.test.ts.

import { compareOptimizer, describeAgreement, optimizerConfigs } from './conformance-optimizers.ts';
import { WebGpuBackend } from './webgpu.ts';

const n = Number(process.env.N ?? 100_000);
const gpu = await WebGpuBackend.create();
console.log(`conformance on ${gpu.adapter}: ${optimizerConfigs.length} configurations × 20 steps × ${n} params, each step from the JS backend's state`);
let failed = 0;
for (const c of optimizerConfigs) {
  const a = await compareOptimizer(gpu, c, n, 20);
  const ok = a.codeWorst <= 1 && a.paramWorst <= 1;
  if (!ok) failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${describeAgreement('webgpu', a)}`);
}
console.log(`${optimizerConfigs.length - failed} passed, ${failed} failed`);
gpu.dispose();
process.exitCode = failed ? 1 : 0;
