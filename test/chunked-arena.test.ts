// The arena at browser limits, on WebGPU (lavapipe in CI). A device asked for nothing gets
// WebGPU's defaults (8 storage buffers a shader stage, 128 MiB bindings, as most users' Chrome);
// every kernel must bind at most 8 storage buffers there, which the packed chunk buffer
// (runtime/chunks.ts) and shared binding slots (runtime/backends/webgpu/slots.ts) make possible.
// With a small maxBindingSize the arena splits into many chunks, tensors across their edges; every
// way of stepping (step, stepTensor, gradient release, device gradients), checkpoints and exports
// must give exactly the bits of the same optimizer in one chunk.

/// <reference types="@webgpu/types" />
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Hyper } from '../optim/define.ts';
import { uniformF32 } from '../props/prng.ts';
import { findAdapter } from '../runtime/backends/webgpu/device.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import type { OptimizerOptions } from '../runtime/options.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import type { Session } from '../runtime/session.ts';
import { conformanceConfigs, stored } from './problems.ts';

const adapter = await findAdapter();
// a spans several 4 KiB chunks; b and d are shorter than a group; c straddles a chunk edge.
const shapes = { a: 3001, b: 37, c: 700, d: 1 };
const params = () => Object.fromEntries(Object.entries(shapes).map(([k, n], i) => [k, uniformF32(n, 1 + i)]));
function grads(s: number): Record<string, Float32Array> {
  const g = Object.fromEntries(Object.entries(shapes).map(([k, n], i) => [k, uniformF32(n, 10 * s + i, 0.02)]));
  if (s === 1) {
    g.a![2999] = NaN;
    g.c![5] = Infinity;
  }
  return g;
}

async function expectSame(a: Session<Hyper>, b: Session<Hyper>, what: string, counts = true) {
  const [x, y] = [await stored(a), await stored(b)];
  for (const f of a.fields) expect([...x[f.name]!], `${what}: ${f.name}`).toEqual([...y[f.name]!]);
  // Non-finite counts are the session's history, not state: a checkpoint does not carry them.
  if (counts) expect(await a.nonFinite(), `${what}: non-finite count`).toBe(await b.nonFinite());
}

describe.runIf(adapter !== null)('the arena at default limits and in chunks (WebGPU)', () => {
  let whole: WebGpuBackend, small: WebGpuBackend;
  let device: GPUDevice;
  /** Storage bindings of every bind group layout made on the default-limits device. */
  const storageCounts: number[] = [];
  beforeAll(async () => {
    whole = await WebGpuBackend.create();
    device = await adapter!.requestDevice(); // WebGPU's default limits: nothing asked for
    const make = device.createBindGroupLayout.bind(device);
    device.createBindGroupLayout = (d: GPUBindGroupLayoutDescriptor) => {
      storageCounts.push([...d.entries].filter((e) => e.buffer?.type !== 'uniform').length);
      return make(d);
    };
    small = await WebGpuBackend.create({ device, maxBindingSize: 4096 });
  });
  afterAll(() => {
    whole?.dispose();
    small?.dispose();
    device?.destroy();
  });

  test('the device asked for nothing has 8 storage buffers a stage', () => {
    expect(device.limits.maxStorageBuffersPerShaderStage).toBe(8);
    expect(small.limits.maxBindingBytes).toBe(4096);
  });

  const pair = async (c: (typeof conformanceConfigs)[number], extra: OptimizerOptions<Hyper> = {}) => {
    const o = { scale: c.scale, masterWeightBits: c.bits, ...extra } as OptimizerOptions<Hyper>;
    const one = await createOptimizer(c.def, params(), { ...o, backend: whole });
    const many = await createOptimizer(c.def, params(), { ...o, backend: small });
    expect(one.chunks).toBe(1);
    expect(many.chunks).toBeGreaterThan(3);
    return { one, many };
  };

  test.each(conformanceConfigs)('$key: step() in chunks at default limits stores the bits of one chunk', async (c) => {
    const { one, many } = await pair(c);
    for (let s = 0; s < 3; s++) {
      await one.step(grads(s));
      await many.step(grads(s));
      await expectSame(many, one, `step ${s}`);
    }
    expect(await many.exportFp32()).toEqual(await one.exportFp32());
    // A checkpoint moves between the two layouts.
    const back = await createOptimizer(c.def, params(), {
      scale: c.scale,
      masterWeightBits: c.bits,
      backend: whole,
    } as OptimizerOptions<Hyper>);
    await back.load(await many.save());
    await expectSame(back, one, 'restored', false);
    expect(back.steps).toEqual(one.steps);
    expect(storageCounts.length).toBeGreaterThan(0);
    expect(Math.max(...storageCounts)).toBeLessThanOrEqual(8);
    for (const o of [one, many, back]) await o.dispose();
  });

  const adamw = conformanceConfigs.find((c) => c.key === 'adamw/bf16/24')!;

  test('stepTensor and gradient release in chunks store the bits of one chunk', async () => {
    for (const extra of [{}, { gradientRelease: true }] as OptimizerOptions<Hyper>[]) {
      const { one, many } = await pair(adamw, extra);
      for (let s = 0; s < 2; s++) {
        const g = grads(s);
        for (const k of ['c', 'a', 'd']) {
          await one.stepTensor(k, g[k]!);
          await many.stepTensor(k, g[k]!);
        }
        await expectSame(many, one, `${JSON.stringify(extra)} step ${s}`);
      }
      await one.dispose();
      await many.dispose();
    }
  });

  test('device gradients read across chunk edges store the bits of one chunk', async () => {
    const { one, many } = await pair(adamw);
    const made: GPUBuffer[] = [];
    const onDevice = (d: GPUDevice, g: Record<string, Float32Array>) =>
      Object.fromEntries(
        Object.entries(g).map(([k, v]) => {
          const b = d.createBuffer({ size: Math.ceil(v.byteLength / 4) * 4 + 4, usage: 0x80 | 0x4 | 0x8 });
          d.queue.writeBuffer(b, 0, v);
          made.push(b);
          return [k, { buffer: b, dtype: 'f32' as const }];
        }),
      );
    for (let s = 0; s < 2; s++) {
      await one.step(onDevice(whole.device, grads(s)));
      await many.step(onDevice(device, grads(s)));
      await expectSame(many, one, `step ${s}`);
    }
    for (const b of made) b.destroy();
    await one.dispose();
    await many.dispose();
  });

  test('deviceGradients() refuses a tensor split across chunks, naming it', async () => {
    const { one, many } = await pair(adamw);
    expect(() => many.deviceGradients()).toThrow(/tensor "a" spans \d+ chunks of the arena/);
    expect(Object.keys(one.deviceGradients()).sort()).toEqual(['a', 'b', 'c', 'd']);
    await one.dispose();
    await many.dispose();
  });
});
