// A user's first script, run by plain `node` in a project that installed only the packed tarball
// (test/packaging.test.ts): AdamW on the default JS backend, one step, a checkpoint file written
// and read back two ways, and the GPU backends asked for without their optional packages.
import { readFile } from 'node:fs/promises';
import {
  GpujsBackend,
  WebGpuBackend,
  adamw,
  createOptimizer,
  loadCheckpointFile,
  loadOptimizer,
  saveCheckpointFile,
} from 'flashoptim';

const params = { w: { data: new Float32Array(96).map((_, i) => Math.sin(i)), shape: [8, 12] }, b: new Float32Array(8) };
const opt = await createOptimizer(adamw({ lr: 1e-2 }), params);
await opt.step({ w: new Float32Array(96).fill(0.5), b: new Float32Array(8).fill(-1) });
await saveCheckpointFile(opt, 'adamw.safetensors');

const same = await createOptimizer(adamw({ lr: 1e-2 }), params);
await loadCheckpointFile(same, 'adamw.safetensors');
const loaded = await loadOptimizer(new Uint8Array(await readFile('adamw.safetensors')));

const [a, b, c] = [await opt.exportFp32(), await same.exportFp32(), await loaded.exportFp32()];
const equal = (x, y) => x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
const refusal = (create) =>
  create().then(
    () => 'created',
    (e) => e.message,
  );
console.log(
  JSON.stringify({
    engine: opt.source.startsWith(';;') ? 'wasm' : 'js',
    b0: a.b[0],
    restored: equal(a.w, b.w) && equal(a.b, b.b),
    loaded: equal(a.w, c.w) && equal(a.b, c.b) && loaded.stepCount === 1,
    shape: loaded.layout.tensors.find((t) => t.name === 'w').shape,
    webgpu: await refusal(() => WebGpuBackend.create()),
    gpujs: await refusal(() => GpujsBackend.create('cpu')),
  }),
);
