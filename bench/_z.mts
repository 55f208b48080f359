import * as d from '../dsl/ops.ts';
import { kernel } from '../compiler/ir/kernel.ts';
import { onBackend, onOracle, differences, caseOf } from '../test/harness.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
const gpu = await WebGpuBackend.create();
const b = d.field('b', 'f32');
const tries: [string, any, number][] = [
  ['-0 * x (x=0)', d.mul(d.constant('f32', -0), b), 0],
  ['-0 * x (x=1)', d.mul(d.constant('f32', -0), b), 1],
  ['-1 * x (x=0)', d.mul(d.constant('f32', -1), b), 0],
  ['x * y (x=-0 loaded, y=0)', d.mul(d.field('a', 'f32'), b), 0],
  ['-0 + x (x=-0?)', d.add(d.constant('f32', -0), d.field('a', 'f32')), 0],
];
for (const [name, v, bv] of tries) {
  const k = kernel({ name: 't', groupSize: 1, outputs: [{ field: 'n', storage: 'f32', axis: 'element', value: v }] });
  const c = caseOf(k, { n: new Float32Array(4), b: new Float32Array(4).fill(bv), a: new Float32Array(4).fill(-0) }, 4);
  const got = await onBackend(gpu, c), want = onOracle(c);
  console.log(name, differences(got, want).count, got.arrays.n[0], want.arrays.n[0], got.source.split('\n').filter((l) => l.includes('let t')).join(' | '));
}
gpu.dispose();
