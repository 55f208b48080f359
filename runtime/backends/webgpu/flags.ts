/// <reference types="@webgpu/types" />
// The flags buffer of split kernels (compiler/render/wgsl/header.ts fail_groups): a region a split
// launch of a submission, cleared at its start; the fast kernel writes the groups and workgroups
// that failed its checks there, and the fallback kernel dispatched right after it is dispatched
// indirectly from it, over the failed workgroups. Per launch of 2^28 AdamW elements: 2 MiB.

import { USAGE } from './memory.ts';

export class GroupFlags {
  private buffer: GPUBuffer | null = null;
  /** Buffers outgrown while a submission may still bind them: destroyed with the backend. */
  private readonly old: GPUBuffer[] = [];

  constructor(private readonly device: GPUDevice) {}

  /** A buffer of at least `bytes` bytes. */
  get(atLeast: number): GPUBuffer {
    const bytes = Math.max(16, atLeast);
    if (!this.buffer || this.buffer.size < bytes) {
      if (this.buffer) this.old.push(this.buffer);
      // Grown to a power of two, so a run of growing launches reallocates a few times at most.
      const size = 2 ** Math.ceil(Math.log2(bytes));
      // INDIRECT: the fallback's dispatch size; COPY_DST: cleared; COPY_SRC: split.test.ts reads it.
      this.buffer = this.device.createBuffer({
        size,
        usage: USAGE.STORAGE | USAGE.INDIRECT | USAGE.COPY_DST | USAGE.COPY_SRC,
        label: 'split kernel flags',
      });
    }
    return this.buffer;
  }

  dispose(): void {
    for (const b of [...this.old, this.buffer]) b?.destroy();
    this.old.length = 0;
    this.buffer = null;
  }
}
