import * as d from '../dsl/ops.ts';
import { kernel } from '../compiler/ir/kernel.ts';
import { onBackend, onOracle, differences, caseOf } from '../test/harness.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
const gpu = await WebGpuBackend.create();
const tries: [string, any][] = [
  ['-0 const', d.constant('f32', -0)],
  ['roundEven(-0)', d.roundEven(d.constant('f32', -0))],
  ['-0 * x', d.mul(d.constant('f32', -0), d.field('b', 'f32'))],
  ['neg(x)', d.neg(d.field('b', 'f32'))],
];
for (const [name, v] of tries) {
  for (const gs of [1, 32]) {
    const k = kernel({ name: 't', groupSize: gs, outputs: [{ field: 'n', storage: 'f32', axis: 'element', value: v }] });
    const c = caseOf(k, { n: new Float32Array(64), b: new Float32Array(64) }, 64);
    const got = await onBackend(gpu, c), want = onOracle(c);
    console.log(name, gs, differences(got, want).count, Object.is(got.arrays.n[0], -0), got.source.split('\n').filter((l) => l.includes('F') && l.includes('=') && !l.includes('let old')).slice(-2).join(' | '));
  }
}
gpu.dispose();
