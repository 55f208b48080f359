import * as d from '../dsl/ops.ts';
import { kernel } from '../compiler/ir/kernel.ts';
import { onBackend, onOracle, differences } from '../test/harness.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
const gpu = await WebGpuBackend.create();
const z = d.constant('f32', 0);
const k1 = kernel({ name: 'random', groupSize: 1, outputs: [
  { field: 'a', storage: 'f32', axis: 'element', value: z },
  { field: 'n', storage: 'f32', axis: 'element', value: d.roundEven(d.constant('f32', -0)) },
  { field: 'c', storage: 'i8', axis: 'element', value: d.constant('i32', 0) },
  { field: 'h', storage: 'u16', axis: 'element', value: d.constant('u32', 0) },
  { field: 's', storage: 'f32', axis: 'group', value: d.add(d.groupMax(d.abs(z)), d.field('s', 'f32', 'group')) },
], counters: [{ name: 'count', value: d.constant('bool', 0) }, { name: 'ints', value: d.and(d.constant('u32', 0), d.constant('u32', 3)) }] });
const arrays = { a: new Float32Array(2), b: new Float32Array(2), c: new Int8Array(2), h: new Uint16Array(2), i: new Int32Array(2), u: new Uint32Array(2), s: new Float32Array(2), n: new Float32Array(2) };
const c1 = { k: k1, n: 2, arrays, rows: [{ x: 0, y: 0 }, { x: 0, y: 0 }], rowOf: Uint32Array.from([0, 0]), range: [0, 1] as [number, number] };
const got = await onBackend(gpu, c1 as never), want = onOracle(c1 as never);
console.log(differences(got, want), got.arrays.n, want.arrays.n, Object.is(got.arrays.n[0], -0), Object.is(want.arrays.n[0], -0));
console.log(got.source.split('\n').filter((l) => l.includes('t') && l.includes('let') ).slice(-20).join('\n'));
gpu.dispose();
