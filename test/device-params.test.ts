// Parameters updated where the caller keeps them (runtime/params.ts), on WebGPU (lavapipe in CI):
// with paramDtype 'f32' a framework's own f32 weights are the master copy. For every built-in,
// an optimizer over GPUBuffers stores exactly what the same optimizer over host arrays stores, in
// its states and in the caller's buffers, whether it steps, steps tensor by tensor, releases
// gradients, or runs in chunks at default limits (the reference's five built-ins, LAMB, LARS and
// AdamW with clipGradNorm, see below): steps with reductions combine them on the device, the same
// way however the arena is chunked;
// checkpoints and imports land in the buffers; the arena holds no parameter; bad input is refused
// by name.

/// <reference types="@webgpu/types" />
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { FieldArray } from '../compiler/ir/kernel.ts';
import type { Hyper } from '../optim/define.ts';
import { adamw } from '../optim/index.ts';
import { uniformF32 } from '../props/prng.ts';
import { findAdapter } from '../runtime/backends/webgpu/device.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import type { OptimizerOptions } from '../runtime/options.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import type { Session } from '../runtime/session.ts';
import { builtins, stored } from './problems.ts';
import { hasReductions } from '../compiler/ir/phases.ts';
import { fusedKernel } from '../optim/storage.ts';

const adapter = await findAdapter();
const shapes = { a: [50, 61], b: [37], c: [700], d: [1] } as const;
const size = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);
const params = () =>
  Object.fromEntries(Object.entries(shapes).map(([k, s], i) => [k, uniformF32(size(s), 1 + i)])) as Record<
    string,
    Float32Array
  >;
function grads(s: number): Record<string, Float32Array> {
  const g = Object.fromEntries(Object.entries(shapes).map(([k, sh], i) => [k, uniformF32(size(sh), 10 * s + i, 0.02)]));
  if (s === 1) g.a![7] = NaN;
  return g;
}

describe.runIf(adapter !== null)('device parameters updated in place (WebGPU)', () => {
  let gpu: WebGpuBackend, small: WebGpuBackend, device: GPUDevice;
  const made: GPUBuffer[] = [];
  beforeAll(async () => {
    gpu = await WebGpuBackend.create();
    device = await adapter!.requestDevice();
    small = await WebGpuBackend.create({ device, maxBindingSize: 4096 });
  });
  afterAll(() => {
    for (const b of made) b.destroy();
    gpu?.dispose();
    small?.dispose();
    device?.destroy();
  });

  const buffer = (d: GPUDevice, v: Float32Array, offset = 0) => {
    const b = d.createBuffer({ size: offset + v.byteLength + 12, usage: 0x80 | 0x4 | 0x8 });
    d.queue.writeBuffer(b, offset, v);
    made.push(b);
    return b;
  };
  /** The caller's buffers holding `p`, the first at a word offset that is not binding-aligned. */
  const onDevice = (d: GPUDevice, p: Record<string, Float32Array>) =>
    Object.fromEntries(
      Object.entries(p).map(([k, v], i) => {
        const offset = i === 0 ? 20 : 0;
        return [k, { buffer: buffer(d, v, offset), offset, dtype: 'f32' as const, shape: shapes[k as 'a'] }];
      }),
    );
  const readBack = async (b: WebGpuBackend, p: ReturnType<typeof onDevice>) => {
    const out: Record<string, number[]> = {};
    for (const [k, v] of Object.entries(p))
      out[k] = [...((await b.read(b.wrap(v.buffer, 'f32', size(v.shape), v.offset))) as Float32Array)];
    return out;
  };
  async function states(opt: Session<Hyper>): Promise<Record<string, FieldArray>> {
    const { param: _, ...rest } = await stored(opt); // the parameters are compared in the caller's buffers
    return rest;
  }
  async function expectAgree(dev: Session<Hyper>, host: Session<Hyper>, what: string) {
    const [x, y] = [await states(dev), await states(host)];
    expect(Object.keys(x).length).toBeGreaterThan(0);
    for (const k of Object.keys(y)) expect([...x[k]!], `${what}: ${k}`).toEqual([...y[k]!]);
    const [pd, ph] = [await dev.readParams(), await host.readParams()];
    for (const k of Object.keys(shapes)) expect([...pd[k]!], `${what}: param ${k}`).toEqual([...ph[k]!]);
  }

  // Chunked at default limits, the later built-ins' kernels take minutes each to compile with a
  // cold shader cache on lavapipe (as on CI; measured: AdEMAMix 217 s, centered RMSprop 137 s,
  // AdaBelief 80 s, against Adam's 20 s). Chunking is the same machinery whatever the optimizer,
  // so that case keeps the reference's five and the steps with reductions (their partials span
  // chunks): LAMB, LARS and AdamW with clipGradNorm. The other cases run every built-in.
  const reference = builtins.filter(([n]) => ['sgd', 'sgdw', 'adam', 'adamw', 'lion', 'lamb', 'lars'].includes(n));
  type Entry = readonly [string, (typeof builtins)[number][1], (typeof builtins)[number][2]];
  const clipped: Entry[] = builtins
    .filter(([n]) => n === 'adamw')
    .map(([, make, h]) => ['adamw + clipGradNorm', make, h]);
  const clip = { clipGradNorm: 0.05 }; // the gradients' global norm is about 0.36: the clip engages
  const cases: [string, (b: WebGpuBackend) => WebGpuBackend, OptimizerOptions<Hyper>, readonly Entry[]][] = [
    ['one chunk', () => gpu, {}, builtins],
    ['one chunk, clipGradNorm', () => gpu, clip, clipped],
    ['chunks at default limits', () => small, {}, reference],
    ['chunks at default limits, clipGradNorm', () => small, clip, clipped],
    ['gradient release', () => gpu, { gradientRelease: true }, builtins],
  ];

  describe.each(cases)('%s', (_, backendOf, extra, optimizers) => {
    test.each(optimizers)(
      '%s: the caller’s buffers hold what host params hold, and the states agree',
      async (_n, make, h) => {
        const b = backendOf(gpu);
        const o = { paramDtype: 'f32', backend: b, ...extra } as OptimizerOptions<Hyper>;
        if (extra.gradientRelease && hasReductions(fusedKernel(make(h)))) {
          // LAMB, LARS: gradient release cannot run a reduction (a launch per tensor never sees
          // every gradient of a step): refused, by name.
          await expect(createOptimizer(make(h), params(), o)).rejects.toThrow(
            /gradientRelease cannot run .*reductions/,
          );
          return;
        }
        const host = await createOptimizer(make(h), params(), o);
        const bufs = onDevice(b.device, params());
        const dev = await createOptimizer(make(h), bufs, o);
        if (b === small) expect(dev.chunks).toBeGreaterThan(2);
        // Without the parameters the arena chunks elsewhere: reductions must not depend on chunks.
        if (b === small) expect(host.chunks).not.toBe(dev.chunks);
        expect(dev.memory().fields['param']).toBeUndefined();
        for (let s = 0; s < 3; s++) {
          const g = grads(s);
          if (extra.gradientRelease)
            for (const k of ['c', 'a', 'b', 'd']) {
              await host.stepTensor(k, g[k]!);
              await dev.stepTensor(k, g[k]!);
            }
          else {
            await host.step(g);
            await dev.step(g);
          }
          await expectAgree(dev, host, `step ${s}`);
          if (extra.clipGradNorm) expect(await dev.gradNorm(), `step ${s}: gradNorm`).toBe(await host.gradNorm());
        }
        // The caller's own buffers hold the new weights (the optimizer kept no copy).
        const mine = await readBack(b, bufs);
        const theirs = await host.readParams();
        for (const k of Object.keys(shapes)) expect(mine[k]).toEqual([...theirs[k]!]);
        await host.dispose();
        await dev.dispose();
      },
    );
  });

  test('checkpoints, importFp32 and exportFp32 go through the caller’s buffers; memory holds no parameter', async () => {
    const o = { paramDtype: 'f32', backend: small } as OptimizerOptions<Hyper>;
    const bufs = onDevice(device, params());
    const dev = await createOptimizer(adamw({ lr: 1e-2 }), bufs, o);
    await dev.step(grads(0));
    const saved = await dev.save();
    const before = await dev.exportFp32();
    await dev.step(grads(1));
    await dev.load(saved);
    expect(await dev.exportFp32()).toEqual(before);
    expect((await readBack(small, bufs))['a']).toEqual([...before['a']!]);
    const fresh = params();
    fresh['c']![3] = 42;
    await dev.importFp32({ c: fresh['c']! });
    expect((await readBack(small, bufs))['c']![3]).toBe(42);
    // A host-param optimizer restores the same checkpoint to the same weights.
    const shaped = Object.fromEntries(
      Object.entries(params()).map(([k, v]) => [k, { data: v, shape: shapes[k as 'a'] }]),
    );
    const host = await createOptimizer(adamw({ lr: 1e-2 }), shaped, { paramDtype: 'f32' });
    await host.load(saved);
    expect(await host.exportFp32()).toEqual(before);
    // AdamW keeps 8-bit m and v and their scales (about 2 bytes a parameter) and no weights; the
    // arena's gradient goes too with gradient release.
    const m = dev.memory();
    expect(Object.keys(m.perParam).sort()).toEqual(['g', 'm', 'm_scale', 'v', 'v_scale']);
    const states = m.bytesPerParam - m.perParam['g']!;
    expect(states).toBeGreaterThan(2);
    expect(states).toBeLessThan(2.5);
    const released = await createOptimizer(adamw(), onDevice(device, params()), { ...o, gradientRelease: true });
    expect(released.memory().bytesPerParam).toBeCloseTo(states, 10);
    await released.dispose();
    await dev.dispose();
    await host.dispose();
  });

  test('bad device parameters are refused, naming the param and what is wrong', async () => {
    const p = params();
    const bufs = onDevice(gpu.device, p);
    const o = { paramDtype: 'f32', backend: gpu } as OptimizerOptions<Hyper>;
    await expect(createOptimizer(adamw(), bufs, { backend: gpu })).rejects.toThrow(
      /device parameters are the master weights, updated in place as f32: pass paramDtype: 'f32'/,
    );
    await expect(createOptimizer(adamw(), { ...bufs, d: p['d']! }, o)).rejects.toThrow(
      /3 of 4 params are device parameters; give every param on the device or none \("d" is a host array\)/,
    );
    await expect(createOptimizer(adamw(), bufs, { paramDtype: 'f32' })).rejects.toThrow(
      /device parameters need a backend with device buffers \(WebGpuBackend\); this optimizer runs on js/,
    );
    await expect(createOptimizer(adamw(), { ...bufs, b: { ...bufs['b']!, shape: [4000] } }, o)).rejects.toThrow(
      /param "b": webgpu.wrap: 4000 f32 values from byte 0 need 16000 bytes/,
    );
    await expect(
      createOptimizer(adamw(), { ...bufs, b: { ...bufs['b']!, dtype: 'bf16' as never } }, o),
    ).rejects.toThrow(/param "b": a device parameter's dtype must be 'f32', got "bf16"/);
  });
});
