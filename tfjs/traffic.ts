/// <reference types="@webgpu/types" />
// Host ↔ GPU traffic, counted where it happens: Dawn's GPUQueue.writeBuffer, buffers created mapped
// (TF.js uploads through them), GPUBuffer.mapAsync (every read back to the host goes through
// one), and TF.js's own reads (read, readSync, readToGPU) with the size of the tensor read. Tests
// use it to show that a step moves no gradient and no weight across; anyone can use it to see
// where a training loop copies.

import type { DataId } from '@tensorflow/tfjs-core';
import type { TfWebGpu } from './webgpu.ts';

export class Traffic {
  /** Counting only while true. */
  on = false;
  /** Bytes of each host → GPU transfer: writeBuffer calls and buffers created mapped. */
  readonly uploads: number[] = [];
  /** Bytes of each buffer mapped for reading (GPU → host). */
  readonly readbacks: number[] = [];
  /** Elements of each tensor TF.js read to the host (read, readSync). */
  readonly tensorReads: number[] = [];
  /** TF.js readToGPU calls (dataToGPU: a copy on the GPU). */
  gpuCopies = 0;
  private readonly undo: (() => void)[] = [];

  /** Patch Dawn's classes (globals) and TF.js's backend `tfb`; `restore()` undoes it. */
  constructor(tfb: TfWebGpu) {
    const g = globalThis as unknown as Record<string, { prototype: Record<string, unknown> } | undefined>;
    const missing = ['GPUQueue', 'GPUDevice', 'GPUBuffer'].filter((k) => !g[k]);
    if (missing.length)
      throw new TypeError(
        `Traffic: no ${missing.join(', ')} among the globals (in Node, call useTfWebGpu() first: it installs Dawn's classes)`,
      );
    const t = this;
    this.patch(
      g['GPUQueue']!.prototype,
      'writeBuffer',
      (orig) =>
        function (this: GPUQueue, ...a: unknown[]) {
          if (t.on) {
            const data = a[2] as ArrayBufferView | ArrayBuffer;
            const unit = ArrayBuffer.isView(data)
              ? ((data as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1)
              : 1;
            const size = a[4] as number | undefined,
              from = (a[3] as number | undefined) ?? 0;
            t.uploads.push(size !== undefined ? size * unit : data.byteLength - from * unit);
          }
          return orig.apply(this, a);
        },
    );
    this.patch(
      g['GPUDevice']!.prototype,
      'createBuffer',
      (orig) =>
        function (this: GPUDevice, ...a: unknown[]) {
          const d = a[0] as GPUBufferDescriptor;
          if (t.on && d.mappedAtCreation) t.uploads.push(d.size);
          return orig.apply(this, a);
        },
    );
    this.patch(
      g['GPUBuffer']!.prototype,
      'mapAsync',
      (orig) =>
        function (this: GPUBuffer, ...a: unknown[]) {
          if (t.on && ((a[0] as number) & 1) !== 0) t.readbacks.push((a[2] as number | undefined) ?? this.size);
          return orig.apply(this, a);
        },
    );
    const size = (id: DataId) => (tfb.tensorMap.get(id)?.shape ?? []).reduce((x, y) => x * y, 1);
    const b = tfb as unknown as Record<string, unknown>;
    for (const name of ['read', 'readSync'])
      this.patch(
        b,
        name,
        (orig) =>
          function (this: unknown, ...a: unknown[]) {
            if (t.on) t.tensorReads.push(size(a[0] as DataId));
            return orig.apply(this, a);
          },
      );
    this.patch(
      b,
      'readToGPU',
      (orig) =>
        function (this: unknown, ...a: unknown[]) {
          if (t.on) t.gpuCopies++;
          return orig.apply(this, a);
        },
    );
  }

  private patch(
    o: Record<string, unknown>,
    name: string,
    wrap: (orig: (...a: unknown[]) => unknown) => (...a: unknown[]) => unknown,
  ): void {
    const own = Object.prototype.hasOwnProperty.call(o, name),
      orig = o[name] as (...a: unknown[]) => unknown;
    o[name] = wrap(orig);
    this.undo.push(() => {
      if (own) o[name] = orig;
      else delete o[name];
    });
  }

  restore(): void {
    for (const u of this.undo.splice(0).reverse()) u();
  }
}
