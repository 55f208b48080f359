// Gradients already on the GPU (runtime/gradients.ts), on WebGPU (lavapipe in CI): for every
// built-in, a step whose gradients are GPUBuffers stores exactly what the same step from host
// arrays stores, whichever way they enter the arena: f32 buffers (converted on the device), bf16
// buffers (copied; an odd-length tensor is converted), the arena's own gradient storage (nothing
// moves), and gradient release (the caller's buffer bound where it is). A device step is one
// writeBuffer and one submit and reads nothing back; errors the device reports later surface at
// the next call; the 'error' policy names the tensor and changes nothing.

/// <reference types="@webgpu/types" />
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Hyper } from '../optim/define.ts';
import { adamw } from '../optim/index.ts';
import { uniformF32 } from '../props/prng.ts';
import { toBf16 } from '../runtime/codecs.ts';
import { findAdapter } from '../runtime/backends/webgpu/device.ts';
import { WebGpuBackend } from '../runtime/backends/webgpu/webgpu.ts';
import type { DeviceGradient } from '../runtime/on-device.ts';
import { NonFiniteError } from '../runtime/numerics.ts';
import type { OptimizerOptions } from '../runtime/options.ts';
import { createOptimizer } from '../runtime/optimizer.ts';
import type { Session } from '../runtime/session.ts';
import { conformanceConfigs, stored } from './problems.ts';

const hasAdapter = (await findAdapter()) !== null;
const N = 4096;
const STORAGE = 0x80,
  COPY_SRC = 0x4,
  COPY_DST = 0x8,
  MAP_READ = 0x1;

// w has an even length (bf16 moves by copyBufferToBuffer), b an odd one (its last word is half
// padding: converted), e is long enough to be copied by a kernel (gradientIn, ≥ 2^16 values).
const E = (1 << 16) + 64;
const params = () => ({ w: uniformF32(N - 38, 1), b: uniformF32(37, 2), e: uniformF32(E, 3) });
function grads(s: number): { w: Float32Array; b: Float32Array; e: Float32Array } {
  const g = { w: uniformF32(N - 38, 10 + s, 0.02), b: uniformF32(37, 20 + s, 0.02), e: uniformF32(E, 30 + s, 0.02) };
  if (s === 1) {
    g.w[3] = NaN;
    g.w[100] = Infinity;
    g.b[5] = -Infinity;
  }
  return g;
}

const configs = conformanceConfigs.filter((c) => c.scale === 'bf16' && c.bits === 24);

describe.runIf(hasAdapter)('device-resident gradients (WebGPU)', () => {
  let gpu: WebGpuBackend;
  const made: GPUBuffer[] = [];
  beforeAll(async () => {
    gpu = await WebGpuBackend.create();
  });
  afterAll(() => {
    for (const b of made) b.destroy();
    gpu?.dispose();
  });

  /** copyBufferToBuffer calls so far, on any encoder of this device. */
  let copies = 0;
  const countCopies = () => copies;
  beforeAll(() => {
    const proto = Object.getPrototypeOf(gpu.device.createCommandEncoder());
    const copy = proto.copyBufferToBuffer;
    proto.copyBufferToBuffer = function (this: GPUCommandEncoder, ...a: unknown[]) {
      copies++;
      return copy.apply(this, a);
    };
  });

  /** A GPUBuffer of the caller's holding `data` from byte `offset`. */
  const upload = (data: Float32Array | Uint16Array, offset = 0, usage = STORAGE | COPY_SRC | COPY_DST) => {
    const size = Math.ceil((offset + data.byteLength) / 4) * 4 + 4;
    const b = gpu.device.createBuffer({ size, usage: usage | COPY_DST });
    const bytes = new Uint8Array(Math.ceil(data.byteLength / 4) * 4);
    bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    gpu.device.queue.writeBuffer(b, offset, bytes);
    made.push(b);
    return b;
  };
  const asDevice = (g: Record<string, Float32Array>, dtype: 'f32' | 'bf16'): Record<string, DeviceGradient> =>
    Object.fromEntries(
      Object.entries(g).map(([k, v]) => [k, { buffer: upload(dtype === 'f32' ? v : toBf16(v)), dtype }]),
    );

  /** Steps `host` with host arrays and `dev` with `through(grads)`; both must store the same bits and counts. */
  async function agree(
    c: (typeof configs)[number],
    through: (g: Record<string, Float32Array>, opt: Session<Hyper>) => Promise<void>,
    opts: OptimizerOptions<Hyper> = {},
  ) {
    const o = { scale: c.scale, masterWeightBits: c.bits, backend: gpu, ...opts } as OptimizerOptions<Hyper>;
    const host = await createOptimizer(c.def, params(), o);
    const dev = await createOptimizer(c.def, params(), o);
    for (let s = 0; s < 3; s++) {
      const g = grads(s);
      if (opts.gradientRelease) for (const [k, v] of Object.entries(g)) await host.stepTensor(k, v);
      else await host.step(g);
      await through(g, dev);
      const [a, b] = [await stored(dev), await stored(host)];
      for (const f of dev.fields) expect([...a[f.name]!], `step ${s}: ${f.name}`).toEqual([...b[f.name]!]);
      expect(await dev.nonFinite(), `step ${s}: non-finite count`).toBe(await host.nonFinite());
    }
    expect(await host.nonFinite()).toBe(3);
    await host.dispose();
    await dev.dispose();
  }

  // A framework hands over the same buffers every step, refilled: the runtime keeps their intake
  // items and the backend its plan of them (runtime/gradients.ts, webgpu.ts), which must still read
  // each step's values.
  test.each(configs)('$name: the same GPUBuffers refilled every step store the same', async (c) => {
    let kept: Record<string, DeviceGradient> | null = null;
    const gathered = gpu.gatherer.gathered;
    await agree(c, (g, opt) => {
      kept ??= asDevice(g, 'bf16');
      for (const [k, v] of Object.entries(g)) {
        const bits = toBf16(v),
          bytes = new Uint8Array(Math.ceil(bits.byteLength / 4) * 4);
        bytes.set(new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength));
        gpu.device.queue.writeBuffer(kept[k]!.buffer as GPUBuffer, 0, bytes);
      }
      return opt.step(kept);
    });
    // w and e gathered by one dispatch, planned at the first step and kept for the next two.
    expect(gpu.gatherer.gathered - gathered).toBe(2);
  });

  // A binding starts at a multiple of minStorageBufferOffsetAlignment (256): a gradient at any word
  // offset is bound from the aligned byte below it and read at its own base (slots.ts).
  test.each(configs)('$name: gradients at word offsets that are not binding-aligned store the same', (c) =>
    agree(c, (g, opt) =>
      opt.step(
        Object.fromEntries(
          Object.entries(g).map(([k, v], i) => [
            k,
            { buffer: upload(v, 4 + 12 * i), offset: 4 + 12 * i, dtype: 'f32' },
          ]),
        ),
      ),
    ),
  );

  test.each(configs)('$name: f32 GPUBuffers (converted to bf16 on the device) store what host arrays store', (c) =>
    agree(c, (g, opt) => opt.step(asDevice(g, 'f32'))),
  );

  test.each(configs)(
    '$name: bf16 GPUBuffers (w and e gathered in one dispatch, b of odd length converted) store the same',
    (c) =>
      agree(c, async (g, opt) => {
        const dg = asDevice(g, 'bf16');
        const [launches, copies, gathered] = [gpu.launches, countCopies(), gpu.gatherer.gathered];
        await opt.step(dg);
        // New buffers each step: a new gather, planned now, moving both.
        expect(countCopies() - copies).toBe(0);
        expect(gpu.gatherer.gathered - gathered).toBe(2);
        expect(gpu.launches - launches).toBe(2); // b converted, the step
      }),
  );

  test.each(configs)(
    '$name: bf16 GPUBuffers without STORAGE usage are copied by the copy engine instead, and store the same',
    (c) =>
      agree(c, async (g, opt) => {
        const dg = Object.fromEntries(
          Object.entries(g).map(([k, v]) => [k, { buffer: upload(toBf16(v), 0, COPY_SRC), dtype: 'bf16' as const }]),
        );
        // b (odd length) must be converted by a kernel, which binds it as storage: give it one that can be.
        dg['b'] = { buffer: upload(toBf16(g['b']!)), dtype: 'bf16' };
        const [copies, gathered] = [countCopies(), gpu.gatherer.gathered];
        await opt.step(dg);
        expect(countCopies() - copies).toBe(2); // w and e
        expect(gpu.gatherer.gathered - gathered).toBe(0);
      }),
  );

  test.each(configs)('$name: gradients written into the arena (deviceGradients) store the same, nothing moved', (c) =>
    agree(c, async (g, opt) => {
      const at = opt.deviceGradients();
      for (const [k, v] of Object.entries(g)) {
        const bits = toBf16(v),
          bytes = new Uint8Array(Math.ceil(bits.byteLength / 4) * 4);
        bytes.set(new Uint8Array(bits.buffer)); // an odd length's last word: the padding stays zero
        gpu.device.queue.writeBuffer(at[k]!.buffer as GPUBuffer, at[k]!.offset!, bytes);
      }
      const before = gpu.launches;
      await opt.step(at);
      expect(gpu.launches - before).toBe(1);
    }),
  );

  test.each(configs)('$name, gradient release: stepTensor binds a bf16 GPUBuffer where it is; same bits', (c) =>
    agree(
      c,
      async (g, opt) => {
        for (const [k, v] of Object.entries(asDevice(g, 'bf16'))) await opt.stepTensor(k, v);
      },
      { gradientRelease: true },
    ),
  );

  test.each(configs)('$name, gradient release: step() of bf16 GPUBuffers is one submission, no copy; same bits', (c) =>
    agree(
      c,
      async (g, opt) => {
        const dg = asDevice(g, 'bf16');
        const [launches, copies] = [gpu.launches, countCopies()];
        await opt.step(dg);
        expect(gpu.launches - launches).toBe(3); // one per tensor
        expect(countCopies() - copies).toBe(0);
      },
      { gradientRelease: true },
    ),
  );

  test('a device step is one writeBuffer and one submit, and reads nothing back', async () => {
    const opt = await createOptimizer(adamw(), params(), { backend: gpu });
    const dg = asDevice(grads(0), 'f32');
    await opt.step(dg); // compiles the conversion kernel
    const d = gpu.device,
      q = d.queue;
    const calls = { writeBuffer: 0, submit: 0, mapped: 0 };
    const { writeBuffer, submit } = q;
    const createBuffer = d.createBuffer;
    q.writeBuffer = function (this: GPUQueue, ...a: Parameters<GPUQueue['writeBuffer']>) {
      calls.writeBuffer++;
      return writeBuffer.apply(this, a);
    };
    q.submit = function (this: GPUQueue, ...a: Parameters<GPUQueue['submit']>) {
      calls.submit++;
      return submit.apply(this, a);
    };
    d.createBuffer = function (this: GPUDevice, desc: GPUBufferDescriptor) {
      if (desc.usage & MAP_READ) calls.mapped++;
      return createBuffer.call(this, desc);
    };
    try {
      for (let s = 0; s < 5; s++) await opt.step(dg);
    } finally {
      q.writeBuffer = writeBuffer;
      q.submit = submit;
      d.createBuffer = createBuffer;
    }
    expect(calls).toEqual({ writeBuffer: 5, submit: 5, mapped: 0 });
    expect(opt.stepCount).toBe(6);
    await opt.dispose();
  });

  test("onNonFinite 'error' counts device gradients on the device and refuses the step, naming the tensor", async () => {
    const opt = await createOptimizer(adamw(), params(), { backend: gpu, onNonFinite: 'error' });
    const before = await stored(opt);
    const err = await opt.step(asDevice(grads(1), 'f32')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonFiniteError);
    expect((err as NonFiniteError).counts).toEqual({ w: 2, b: 1 });
    expect(await stored(opt)).toEqual(before);
    expect(opt.stepCount).toBe(0);
    await opt.step(asDevice(grads(0), 'bf16'));
    expect(opt.stepCount).toBe(1);
    await opt.dispose();
  });

  test('clear errors, before anything changes: wrong backend, dtype, offset, size, usage, alignment', async () => {
    const opt = await createOptimizer(adamw(), params(), { backend: gpu });
    const js = await createOptimizer(adamw(), params());
    const g = grads(0),
      w = upload(g.w);
    const before = await stored(opt);
    await expect(js.step({ w: { buffer: w, dtype: 'f32' } })).rejects.toThrow(
      /gradient "w": a device gradient .* needs a backend with device buffers \(WebGpuBackend\); this optimizer runs on js/,
    );
    await expect(opt.step({ w: { buffer: w, dtype: 'f16' as never } })).rejects.toThrow(
      /gradient "w": dtype must be 'f32' or 'bf16', got "f16"/,
    );
    await expect(opt.step({ w: { buffer: w, dtype: 'f32', offset: 2 } })).rejects.toThrow(
      /gradient "w": .*byte offset must be a non-negative multiple of 4, got 2/,
    );
    await expect(opt.step({ w: { buffer: w, dtype: 'f32', offset: 64 } })).rejects.toThrow(
      /gradient "w": .*4058 f32 values from byte 64 need 16296 bytes; the buffer has 16236/,
    );
    // bf16 of an even length is copied (COPY_SRC), f32 converted by a kernel that binds it (STORAGE).
    await expect(opt.step({ w: { buffer: upload(toBf16(g.w), 0, STORAGE), dtype: 'bf16' } })).rejects.toThrow(
      /the source buffer lacks GPUBufferUsage.COPY_SRC/,
    );
    await expect(opt.step({ w: { buffer: upload(g.w, 0, COPY_SRC), dtype: 'f32' } })).rejects.toThrow(
      /field x is bound as storage, but its buffer lacks GPUBufferUsage.STORAGE/,
    );
    expect(await stored(opt)).toEqual(before);
    expect(opt.stepCount).toBe(0);
    await opt.dispose();
    await js.dispose();
  });

  test('an error the device reports after step() returned surfaces at the next call, naming the submission', async () => {
    const opt = await createOptimizer(adamw(), params(), { backend: gpu });
    const w = upload(grads(0).w);
    w.destroy();
    await opt.step({ w: { buffer: w, dtype: 'f32' } }); // submitted; the device has not answered yet
    await expect(opt.nonFinite()).rejects.toThrow(
      /webgpu\.submit \(gradient-in-f32, adamw\): \[Buffer[\s\S]*destroyed[\s\S]*reported by the device after the call/,
    );
    await opt.step(grads(0)); // and the backend goes on
    expect(await opt.nonFinite()).toBe(0);
    await opt.dispose();
  });

  test('create({ device }) works on the caller’s device and dispose() leaves it alive', async () => {
    const mine = await WebGpuBackend.create();
    const shared = await WebGpuBackend.create({ device: mine.device });
    expect(shared.device).toBe(mine.device);
    const a = await createOptimizer(adamw(), params(), { backend: shared });
    const b = await createOptimizer(adamw(), params(), { backend: mine });
    const g = grads(0);
    const w = mine.device.createBuffer({ size: g.w.byteLength, usage: STORAGE | COPY_SRC | COPY_DST });
    mine.device.queue.writeBuffer(w, 0, g.w);
    await a.step({ w: { buffer: w, dtype: 'f32' }, b: g.b, e: g.e });
    await b.step(g);
    expect(await a.readParams()).toEqual(await b.readParams());
    await a.dispose();
    shared.dispose();
    // The device outlives the backend that borrowed it.
    await b.step(g);
    expect(b.stepCount).toBe(2);
    await b.dispose();
    w.destroy();
    mine.dispose();
    await expect(WebGpuBackend.create({ device: {} as GPUDevice })).rejects.toThrow(/device must be a GPUDevice/);
  });
});
