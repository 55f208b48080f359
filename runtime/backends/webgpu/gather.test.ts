/// <reference types="@webgpu/types" />
// Gathered copies move exactly the words copyBufferToBuffer would: lengths around a workgroup's
// 1024 words, unaligned word offsets, more copies than one dispatch binds, a grid of several rows,
// and a copy that cannot be gathered (its source has no STORAGE usage) left as a copy.

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { findAdapter } from './device.ts';
import { Gatherer } from './gather.ts';
import type { PlannedCopy } from './gather.ts';
import { USAGE } from './memory.ts';
import { WebGpuBackend } from './webgpu.ts';

const hasAdapter = (await findAdapter()) !== null;

describe.runIf(hasAdapter)('Gatherer', () => {
  let gpu: WebGpuBackend;
  beforeAll(async () => {
    gpu = await WebGpuBackend.create();
  });
  afterAll(() => gpu?.dispose());

  const words = (n: number, seed: number) => Uint32Array.from({ length: n }, (_, i) => (i * 2654435761 + seed) >>> 0);
  const buffer = (data: Uint32Array, usage = USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST) => {
    const b = gpu.device.createBuffer({ size: Math.max(4, data.byteLength), usage: usage | USAGE.COPY_DST });
    gpu.device.queue.writeBuffer(b, 0, data);
    return b;
  };
  async function read(b: GPUBuffer): Promise<Uint32Array> {
    const staging = gpu.device.createBuffer({ size: b.size, usage: USAGE.MAP_READ | USAGE.COPY_DST });
    const enc = gpu.device.createCommandEncoder();
    enc.copyBufferToBuffer(b, 0, staging, 0, b.size);
    gpu.device.queue.submit([enc.finish()]);
    await staging.mapAsync(1);
    const out = new Uint32Array(staging.getMappedRange().slice(0));
    staging.destroy();
    return out;
  }

  test.each([65535, 3])('copies land word for word (grid width %i)', async (maxX) => {
    const g = new Gatherer(gpu.device, maxX);
    const lengths = [1, 5, 1023, 1024, 1025, 5000, 7, 2048, 3, 1, 999, 4097, 12, 64, 300, 1500, 2, 9];
    const dst = buffer(new Uint32Array(40000).fill(0xdeadbeef));
    const want = new Uint32Array(40000).fill(0xdeadbeef);
    const copies: PlannedCopy[] = [];
    let at = 3;
    lengths.forEach((n, k) => {
      const src = words(n + 70, k);
      const from = buffer(src);
      const skip = (k * 13) % 70; // source word offsets, most not binding-aligned
      copies.push({ from, fromByte: 4 * skip, to: dst, toByte: 4 * at, bytes: 4 * n });
      want.set(src.subarray(skip, skip + n), at);
      at += n + (k % 3); // gaps stay untouched
    });
    // A copy that stays copyBufferToBuffer: its source lacks STORAGE usage.
    const plain = buffer(words(10, 99), USAGE.COPY_SRC);
    copies.push({ from: plain, fromByte: 0, to: dst, toByte: 4 * at, bytes: 40 });
    want.set(words(10, 99), at);

    const { gathers, rest } = g.plan(copies);
    expect(rest.length).toBe(1);
    expect(gathers.length).toBe(Math.ceil(lengths.length / g.sources));
    if (maxX === 3) expect(gathers.some((x) => x.y > 1)).toBe(true);
    const enc = gpu.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    g.encode(pass, gathers);
    pass.end();
    for (const c of rest) enc.copyBufferToBuffer(c.from, c.fromByte, c.to, c.toByte, c.bytes);
    gpu.device.queue.submit([enc.finish()]);
    const got = await read(dst);
    let wrong = 0;
    for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) wrong++;
    expect(wrong).toBe(0);
    expect(g.gathered).toBe(lengths.length);
    // The same run again: the same gathers (planned once).
    expect(g.plan(copies).gathers).toBe(gathers);
    g.dispose();
  });
});
