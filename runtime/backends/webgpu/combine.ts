/// <reference types="@webgpu/types" />
// The combine of a step's reductions on WebGPU (Backend.combiner, runtime/reductions.ts): it runs
// in the kernels themselves (blocks.ts has the buffer and the orders, compiler/render/wgsl/blocked.ts
// the code), so this only holds the RED buffer: the block tables, written once, and the blocks'
// sums, which each level's pass writes and the next level's kernels read. A step is then a launch
// per level and chunk plus the update's, in one submission that reads nothing back; gradNorm()
// reads the blocks' sums (a few KiB) and adds them on the host in the kernels' order.

import type { Combine, CombinedReduction, CombinePlan } from '../backend.ts';
import { BackendError } from '../backend.ts';
import type { BlockLayout, RedLayout } from './blocks.ts';
import { blockGroupsFor, blockLayout, blocksIn, blockValue, redLayout, UNCUT } from './blocks.ts';
import type { GpuBuffer } from './memory.ts';

/** What the backend lends the combine (WebGpuBackend has all of it). */
export interface CombineHost {
  readonly device: GPUDevice;
  /** Groups a block holds at most (WebGpuOptions.reductionBlockGroups), or undefined: blockGroupsFor the arena. */
  readonly blockGroups: number | undefined;
  alloc(storage: 'u32', length: number): GpuBuffer;
  view(buf: GpuBuffer, storage: 'f32', byteOffset: number, length: number): GpuBuffer;
  free(buf: GpuBuffer): void;
}

/** The combine of one optimizer's reductions (made by WebGpuBackend.combiner). */
export class BlockCombine implements Combine<GpuBuffer> {
  /** The blocks' sums (blocks × reductions f32), a view of `red`. */
  readonly values: GpuBuffer;
  readonly reductions: readonly CombinedReduction[];
  readonly owned: GpuBuffer[] = [];
  /** Tables and sums, bound to every kernel of the step (binding BIND.reductions). */
  readonly red: GpuBuffer;
  readonly layout: BlockLayout;
  readonly words: RedLayout;
  readonly inKernels: Combine['inKernels'];

  constructor(
    /** The backend that made it (its launches are refused elsewhere). */
    readonly host: CombineHost,
    plan: CombinePlan<GpuBuffer>,
  ) {
    if (plan.partials.length)
      throw new BackendError('webgpu.combiner: the kernels combine here, so a plan has no partials buffers');
    this.reductions = plan.reductions;
    const groups = Math.max(0, ...plan.tensors.map((t) => t.groups[1]));
    this.layout = blockLayout(plan.tensors, plan.rows, plan.cuts, host.blockGroups ?? blockGroupsFor(groups));
    this.words = redLayout(this.layout, plan.reductions, plan.rows);
    const R = plan.reductions.length,
      nb = this.layout.blocks.length / 4;
    this.red = host.alloc('u32', Math.max(1, this.words.words));
    this.owned.push(this.red);
    if (this.words.tables.length) host.device.queue.writeBuffer(this.red.buffer, this.red.offset, this.words.tables);
    this.values = host.view(this.red, 'f32', this.words.bs * 4, Math.max(1, nb * R));
    const { layout, reductions } = this;
    this.inKernels = {
      count: nb,
      value: (sums, i, row) => blockValue(layout, sums, reductions, i, row),
    };
  }

  /**
   * The blocks of a launch over arena groups [a, z): [first, count]. A block a launch covers in
   * part must have its place in the slot store: a chunk begins inside it.
   */
  launchBlocks(a: number, z: number, op: string): [number, number] {
    const [first, n] = blocksIn(this.layout, a, z);
    const B = this.layout.blocks;
    for (const b of n > 0 ? [first, first + n - 1] : [])
      if ((B[4 * b]! < a || B[4 * b]! + B[4 * b + 1]! > z) && B[4 * b + 3] === UNCUT)
        throw new BackendError(
          `webgpu.${op}: groups [${a}, ${z}) cut reduction block ${b}, inside which no chunk begins`,
        );
    return [first, n];
  }

  free(): void {
    for (const b of this.owned) this.host.free(b);
    this.owned.length = 0;
  }
}
