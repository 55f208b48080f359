/// <reference types="@webgpu/types" />
// The group flags of split kernels (compiler/render/wgsl/render.ts): the fast kernel sets or clears
// a bit a group of its launch (1 where its subgroup's checks failed), the fallback kernel
// dispatched right after it reads them. Every launch writes all of its groups' bits before its
// fallback reads any, so one buffer serves every launch in turn and is never cleared. A bit a
// group of 32 elements: 1 MiB for a launch of 2^28 elements.

import { USAGE } from './memory.ts';

export class GroupFlags {
  private buffer: GPUBuffer | null = null;
  /** Buffers outgrown while a submission may still bind them: destroyed with the backend. */
  private readonly old: GPUBuffer[] = [];

  constructor(private readonly device: GPUDevice) {}

  /** A buffer of at least `words` u32s. */
  get(words: number): GPUBuffer {
    const bytes = Math.max(16, words * 4);
    if (!this.buffer || this.buffer.size < bytes) {
      if (this.buffer) this.old.push(this.buffer);
      // Grown to a power of two, so a run of growing launches reallocates a few times at most.
      const size = 2 ** Math.ceil(Math.log2(bytes));
      // COPY_SRC: tests and diagnostics read them back (split.test.ts).
      this.buffer = this.device.createBuffer({ size, usage: USAGE.STORAGE | USAGE.COPY_SRC, label: 'group flags' });
    }
    return this.buffer;
  }

  dispose(): void {
    for (const b of [...this.old, this.buffer]) b?.destroy();
    this.old.length = 0;
    this.buffer = null;
  }
}
