// CPU step throughput: FlashAdamW on the JS backend (one fused kernel per step; its default
// WebAssembly SIMD engine and its generated-JavaScript engine) and on the threaded JS backend at
// 1 and 2 workers, against tf.train.adam on tfjs-backend-cpu, a plain fp32
// AdamW loop in JavaScript, and a memcpy of as many bytes as FlashAdamW's state. Mparam/s and
// bytes per parameter, as a markdown table and as JSON.
//
//   npm run bench                                   # 2^20 .. 2^24 params
//   npx tsx bench/cpu.ts --sizes 20,22 --json out.json --min-seconds 1

import * as tf from '@tensorflow/tfjs-core';
import '../tfjs/gradients.ts';
import '@tensorflow/tfjs-backend-cpu';
import { writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { JsThreadsBackend } from '../runtime/backends/js/threads.ts';
import { JsBackend } from '../runtime/backends/js/js.ts';
import type { GpujsMode } from '../runtime/backends/gpujs/device.ts';
import { GpujsBackend } from '../runtime/backends/gpujs/gpujs.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import type { Backend, DeviceBuffer } from '../runtime/backends/backend.ts';
import type { Kernel } from '../compiler/ir/kernel.ts';
import { fields } from '../compiler/ir/kernel.ts';
import { compile } from '../compiler/render/js/compile.ts';
import { adamw } from '../optim/index.ts';
import { fusedKernel } from '../optim/storage.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import { uniformF32 } from '../props/prng.ts';

export interface Row {
  readonly method: string;
  readonly log2n: number;
  readonly mparamPerS: number;
  readonly bytesPerParam: number;
  readonly msPerStep: number;
  readonly reps: number;
}

/** Run `step` until `minSeconds` have passed (at least 3 times) after 2 warm-up calls. */
async function time(step: () => unknown, minSeconds: number): Promise<{ ms: number; reps: number }> {
  for (let i = 0; i < 2; i++) await step();
  let reps = 0;
  const t0 = performance.now();
  while (reps < 3 || performance.now() - t0 < minSeconds * 1000) {
    await step();
    reps++;
  }
  return { ms: (performance.now() - t0) / reps, reps };
}

/** The fp32 AdamW every framework ships, written as one plain loop (no per-op allocation). */
function plainAdamW(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, t: number): void {
  const lr = 1e-3,
    b1 = 0.9,
    b2 = 0.999,
    eps = 1e-8,
    wd = 0.01;
  const bc1 = 1 - b1 ** t,
    bc2 = 1 - b2 ** t,
    decay = 1 - lr * wd;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]!;
    const mi = b1 * m[i]! + (1 - b1) * gi,
      vi = b2 * v[i]! + (1 - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i]! * decay - (lr * mi) / bc1 / (Math.sqrt(vi / bc2) + eps);
  }
}

const gradient = (n: number): Float32Array => uniformF32(n, 12345, 1e-2);

/** The gradient as bf16 words (what a bf16 training loop hands the optimizer). */
function bf16(g: Float32Array): Uint16Array {
  const u = new Uint32Array(g.buffer, g.byteOffset, g.length),
    out = new Uint16Array(g.length);
  for (let i = 0; i < g.length; i++) out[i] = (u[i]! + 0x7fff + ((u[i]! >>> 16) & 1)) >>> 16;
  return out;
}

/** Plausible values for a FlashAdamW kernel's uniforms, by name (speed does not depend on them). */
const UNIFORMS: Record<string, number> = {
  lr: 1e-3,
  betas0: 0.9,
  betas1: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
  stepSize: 1e-2,
  epsHat: 3e-10,
  decay: 1 - 1e-5,
  oneMinusBeta1: 0.1,
  oneMinusBeta2: 0.001,
  step: 10,
  active: 1,
};

/**
 * One bare kernel launch over n elements on `backend`: the fused step without the runtime around
 * it. Element fields start at 1.0 in bf16 words (0x3f80) or small codes; group fields at 0.01.
 */
async function kernelStep(k: Kernel, backend: Backend, n: number): Promise<() => Promise<number[]>> {
  const G = k.groupSize,
    nG = Math.ceil(n / G);
  const bind: Record<string, DeviceBuffer> = {};
  for (const f of fields(k)) {
    const len = f.axis === 'group' ? nG : n;
    const buf = backend.alloc(f.storage, len);
    if (f.storage === 'u16') await backend.write(buf, new Uint16Array(len).fill(f.field === 'g' ? 0x3c23 : 0x3f80));
    if (f.storage === 'f32') await backend.write(buf, new Float32Array(len).fill(0.01));
    bind[f.field] = buf;
  }
  const c = compile(k);
  const uniforms = c.uniformTable([Object.fromEntries(c.prepared.inputs.map((u) => [u, UNIFORMS[u] ?? 0.1]))]);
  const program = await backend.compile(k);
  return () => backend.run(program, { bindings: bind, uniforms, rowOf: null, groups: [0, nG], length: n });
}

export async function bench(o: {
  sizes: readonly number[];
  minSeconds: number;
  threads: readonly number[];
  gpujs?: readonly GpujsMode[];
  webgpu?: boolean;
  log?: (r: Row) => void;
}): Promise<Row[]> {
  await tf.setBackend('cpu');
  const rows: Row[] = [];
  const add = (r: Row) => {
    rows.push(r);
    o.log?.(r);
  };
  const row = (method: string, log2n: number, bytesPerParam: number, t: { ms: number; reps: number }): Row => ({
    method,
    log2n,
    bytesPerParam,
    msPerStep: t.ms,
    reps: t.reps,
    mparamPerS: 2 ** log2n / t.ms / 1e3,
  });
  for (const log2n of o.sizes) {
    const n = 2 ** log2n;
    const g = gradient(n),
      gb = bf16(g);
    const init = () => ({ w: { data: Float32Array.from(g, (x) => x * 10), shape: [n] } });

    // The bare fused FlashAdamW kernel (optim/storage.ts fusedKernel) on each backend.
    const fused = fusedKernel(adamw({ lr: 1e-3, weightDecay: 0.01 }));
    const engines = [() => new JsBackend() as Backend, () => new JsBackend({ engine: 'js' }) as Backend];
    for (const make of [...engines, ...o.threads.map((t) => () => new JsThreadsBackend({ threads: t }) as Backend)]) {
      const b = make();
      add(row(`kernel only, ${b.name}`, log2n, 7.125, await time(await kernelStep(fused, b, n), o.minSeconds)));
      b.dispose();
    }
    // FlashAdamW through the optimizer runtime (the arena, gradient upload, uniforms, one launch).
    let flashBytes = 7.125;
    {
      const opt = await createOptimizer(adamw({ lr: 1e-3, weightDecay: 0.01 }), init(), { backend: 'js' });
      flashBytes = opt.memory().bytesPerParam as number;
      add(row('FlashAdamW, js backend', log2n, flashBytes, await time(() => opt.step({ w: gb }), o.minSeconds)));
      // The same with gradient clipping by global norm: a reduction pass before the step (≤ 1.3× the time).
      const clipped = await createOptimizer(adamw({ lr: 1e-3, weightDecay: 0.01 }), init(), { clipGradNorm: 1 });
      add(
        row(
          'FlashAdamW + clipGradNorm, js backend',
          log2n,
          clipped.memory().bytesPerParam,
          await time(() => clipped.step({ w: gb }), o.minSeconds),
        ),
      );
      await clipped.dispose();
      // The same through generated JavaScript (engine 'js', what runs where WebAssembly SIMD does not).
      const viaJs = await createOptimizer(adamw({ lr: 1e-3, weightDecay: 0.01 }), init(), {
        backend: new JsBackend({ engine: 'js' }),
      });
      add(
        row(
          'FlashAdamW, js backend (engine js)',
          log2n,
          flashBytes,
          await time(() => viaJs.step({ w: gb }), o.minSeconds),
        ),
      );
      for (const threads of o.threads) {
        const backend = new JsThreadsBackend({ threads });
        const opt = await createOptimizer(adamw({ lr: 1e-3, weightDecay: 0.01 }), init(), { backend });
        add(
          row(
            `FlashAdamW, js-threads(${threads})`,
            log2n,
            flashBytes,
            await time(() => opt.step({ w: gb }), o.minSeconds),
          ),
        );
        backend.dispose();
      }
      // WebGPU (`--webgpu`): here lavapipe, Vulkan on the CPU; the H200 numbers come from bench/gpu.ts.
      if (o.webgpu) {
        const backend = await WebGpuBackend.create();
        const opt = await createOptimizer(adamw({ lr: 1e-3, weightDecay: 0.01 }), init(), { backend });
        add(row('FlashAdamW, webgpu', log2n, flashBytes, await time(() => opt.step({ w: gb }), o.minSeconds)));
        backend.dispose();
      }
      // gpu.js modes (`--gpujs cpu,webasm`), through the same runtime: same bench, same inputs.
      for (const mode of o.gpujs ?? []) {
        const backend = await GpujsBackend.create(mode);
        const opt = await createOptimizer(adamw({ lr: 1e-3, weightDecay: 0.01 }), init(), { backend });
        // gpu.js holds every field as an f32 array on its device (docs/gpujs.md), gradient included.
        const held = 4 + opt.fields.reduce((a, f) => a + (f.axis === 'group' ? 4 / opt.layout.groupSize : 4), 0);
        add(row(`FlashAdamW, gpujs-${mode}`, log2n, held, await time(() => opt.step({ w: gb }), o.minSeconds)));
        backend.dispose();
      }
    }
    {
      const p = Float32Array.from(g),
        m = new Float32Array(n),
        v = new Float32Array(n);
      let t = 0;
      add(row('plain fp32 AdamW loop (JS)', log2n, 16, await time(() => plainAdamW(p, g, m, v, ++t), o.minSeconds)));
    }
    {
      const src = new Uint8Array(Math.round(n * flashBytes)),
        dst = new Uint8Array(src.length);
      add(
        row(
          `memcpy of ${flashBytes.toFixed(3)} B/param`,
          log2n,
          flashBytes,
          await time(() => dst.set(src), o.minSeconds),
        ),
      );
    }
    {
      const w = tf.variable(tf.tensor1d(g), true, `bench${log2n}`);
      const gt = tf.tensor1d(g);
      const adam = tf.train.adam(1e-3);
      add(
        row(
          'tf.train.adam, tfjs-backend-cpu',
          log2n,
          16,
          await time(() => adam.applyGradients([{ name: w.name, tensor: gt }]), o.minSeconds),
        ),
      );
      adam.dispose();
      tf.dispose([w, gt]);
    }
  }
  return rows;
}

export function table(rows: readonly Row[]): string {
  const sizes = [...new Set(rows.map((r) => r.log2n))];
  const methods = [...new Set(rows.map((r) => r.method))];
  const cell = (m: string, s: number) => {
    const r = rows.find((x) => x.method === m && x.log2n === s);
    return r ? r.mparamPerS.toFixed(1) : '–';
  };
  const bytes = (m: string) => rows.find((x) => x.method === m)!.bytesPerParam.toFixed(3);
  return [
    `| method | B/param | ${sizes.map((s) => `2^${s} Mparam/s`).join(' | ')} |`,
    `|---|---|${sizes.map(() => '---').join('|')}|`,
    ...methods.map((m) => `| ${m} | ${bytes(m)} | ${sizes.map((s) => cell(m, s)).join(' | ')} |`),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (k: string) => {
    const i = process.argv.indexOf(k);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const sizes = (arg('--sizes') ?? '20,21,22,23,24').split(',').map(Number);
  const threads = (arg('--threads') ?? '1,2').split(',').map(Number);
  const minSeconds = Number(arg('--min-seconds') ?? 2);
  const gpujs = (arg('--gpujs')?.split(',') ?? []) as GpujsMode[];
  console.log(
    `# bench/cpu: node ${process.version}, ${availableParallelism()} cores, load average before ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  const rows = await bench({
    sizes,
    minSeconds,
    threads,
    gpujs,
    webgpu: process.argv.includes('--webgpu'),
    log: (r) =>
      console.log(
        `2^${r.log2n}  ${r.method.padEnd(36)} ${r.mparamPerS.toFixed(1).padStart(7)} Mparam/s  ${r.msPerStep.toFixed(2)} ms/step  (${r.reps} reps)`,
      ),
  });
  console.log(
    `\nload average after ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}\n`,
  );
  console.log(table(rows));
  const json = JSON.stringify(
    { node: process.version, cores: availableParallelism(), loadavg: loadavg(), rows },
    null,
    1,
  );
  const out = arg('--json');
  if (out) writeFileSync(out, json);
  else console.log('\n' + json);
}
