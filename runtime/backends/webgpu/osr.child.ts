// Child process for runtime/backends/webgpu/webgpu.test.ts: create a WebGPU device, run a kernel, then spin the
// main thread for 500 ms in one hot loop (what V8 on-stack-replaces), run again, print "ok".
// Before the backend turned OSR off, this died about half the time (docs/webgpu.md).
import * as d from '../../../dsl/ops.ts';
import { kernel } from '../../../compiler/ir/kernel.ts';
import { uniformTable } from '../../../compiler/ir/pipeline.ts';
import { WebGpuBackend } from './webgpu.ts';

const gpu = await WebGpuBackend.create();
const k = kernel({
  name: 'osr',
  outputs: [{ field: 'x', storage: 'f32', axis: 'element', value: d.add(d.field('x', 'f32'), 1) }],
});
const x = gpu.alloc('f32', 1024);
const prog = await gpu.compile(k);
const launch = {
  bindings: { x },
  uniforms: uniformTable(prog.prepared, [{}]),
  rowOf: null,
  groups: [0, 32] as const,
  length: 1024,
};
await gpu.run(prog, launch);
let acc = 0;
const end = Date.now() + 500;
while (Date.now() < end) for (let i = 0; i < 1e5; i++) acc = (acc + i * 7) % 1000003;
await gpu.run(prog, launch);
const out = await gpu.read(x);
console.log(out[5] === 2 ? `ok ${acc}` : `wrong ${out[5]}`);
gpu.dispose();
