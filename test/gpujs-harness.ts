// Test support for the gpu.js backend: `both` runs a hand-written kernel on a gpu.js backend and on
// the oracle (compiler/ir/interpret.ts) from the same inputs; `testModes` says which modes run here.

import type { FieldArray, Kernel } from '../compiler/ir/kernel.ts';
import type { Uniforms } from '../compiler/ir/pipeline.ts';
import type { GpujsMode } from '../runtime/backends/gpujs/device.ts';
import { GpujsBackend } from '../runtime/backends/gpujs/gpujs.ts';
import { caseOf, onBackend, onOracle } from './harness.ts';

/** `k` on `b` and on the oracle: every array after the launch (`got`, `want`) and the counters. */
export async function both(
  b: GpujsBackend,
  k: Kernel,
  data: Record<string, FieldArray>,
  uniforms: Uniforms,
  n: number,
  groups?: [number, number],
) {
  const c = { ...caseOf(k, data, n, [uniforms]), ...(groups ? { range: groups } : {}) };
  const want = onOracle(c),
    got = await onBackend(b, c);
  return { want: want.arrays, wantCounts: want.counters, got: got.arrays, counts: got.counters, source: got.source };
}

/**
 * The gpu.js modes the tests run: cpu and webasm always; webgpu when GPUJS_WEBGPU=1 (then it must
 * work), or, when GPUJS_WEBGPU is unset, whenever an adapter answers (lavapipe on CI); GPUJS_WEBGPU=0
 * leaves it out.
 */
export async function testModes(): Promise<GpujsMode[]> {
  const flag = process.env.GPUJS_WEBGPU;
  if (flag === '0') return ['cpu', 'webasm'];
  if (flag === '1') return ['cpu', 'webasm', 'webgpu'];
  const ok = await GpujsBackend.create('webgpu').then(
    (b) => {
      b.dispose();
      return true;
    },
    () => false,
  );
  if (!ok)
    console.log(
      'gpu.js webgpu mode: no WebGPU adapter here, so its tests are not registered (GPUJS_WEBGPU=1 requires them)',
    );
  return ok ? ['cpu', 'webasm', 'webgpu'] : ['cpu', 'webasm'];
}
