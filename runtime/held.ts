// What a bound optimizer holds, as the pieces of work around it (gradients.ts, release.ts,
// values.ts, checkpoint.ts) see it: runtime/state.ts implements it. An interface of its own so
// those files need not import the State class that imports them.

import type { FieldArray } from '../compiler/ir/kernel.ts';
import type { Hyper, OptimizerDef } from '../optim/define.ts';
import type { Codecs } from '../optim/storage.ts';
import type { FieldSlot, Layout, TensorSlot } from './arena.ts';
import type { Backend, DeviceBuffer, Item, Program } from './backends/backend.ts';
import type { Chunk, Piece } from './chunks.ts';
import type { Work } from './io.ts';
import type { Resolved } from './options.ts';
import type { InPlace } from './params.ts';
import type { Kept } from './kept.ts';
import type { Hypers } from './hypers.ts';
import type { ReductionHost, Reductions } from './reductions.ts';

/** What a bound optimizer is made of (createOptimizer builds it; runtime/state.ts holds it). */
export interface StateParts<H extends Hyper> {
  readonly def: OptimizerDef<H>;
  readonly backend: Backend;
  readonly layout: Layout;
  readonly options: Resolved;
  readonly codecs: Codecs;
  readonly slots: readonly FieldSlot[];
  readonly gradSlots: readonly FieldSlot[];
  readonly chunks: readonly Chunk[];
  readonly counters: DeviceBuffer;
  readonly program: Program;
  readonly release: Program | null;
  readonly hypers: Hypers<H>;
  readonly schedule: ((step: number) => Partial<H>) | undefined;
  /** The optimizer's lr at creation (decoupleLr scales decay by lr / initialLr). */
  readonly initialLr: number;
  /** Identifies the fused kernel (what a checkpoint must have been saved with). */
  readonly kernelKey: string;
  /** Device parameters updated where the caller keeps them (params.ts); null when the arena holds them. */
  readonly inPlace: InPlace | null;
  /** The reduction passes of a step with reductions (runtime/reductions.ts); null without. */
  readonly reductions: Reductions | null;
}

export interface Held<H extends Hyper>
  // launches (a launch of a program per chunk over its share of groups) comes from ReductionHost.
  extends
    ReductionHost,
    Pick<
      StateParts<H>,
      | 'def'
      | 'backend'
      | 'layout'
      | 'options'
      | 'codecs'
      | 'slots'
      | 'gradSlots'
      | 'chunks'
      | 'inPlace'
      | 'counters'
      | 'program'
      | 'release'
      | 'reductions'
    > {
  /** Objects kept from step to step, so a backend sees the same launches again (kept.ts). */
  readonly kept: Kept<unknown>;
  /** Steps taken by each tensor. */
  readonly steps: Int32Array;
  /** Where tensor `t`'s elements (or, for a group field, its groups) are, chunk by chunk. */
  piecesOf(t: TensorSlot, axis?: 'element' | 'group'): Piece[];
  /** `length` values of `view` from its value `from` (the view itself when that is all of it). */
  sub(view: DeviceBuffer, from: number, length: number): DeviceBuffer;
  /** The uniform table of a launch of `program` (the numerics check first, when asked). */
  uniformsOf(
    program: Program,
    active: (t: TensorSlot) => boolean,
    sched: Partial<H>,
    check?: boolean,
  ): Work<Float32Array>;
  /** Send items (one submission where the backend has them), then count the active tensors' steps. */
  send(items: readonly Item[], active: (t: TensorSlot) => boolean): Work<void>;
  /** `length` values of a field from `start` (elements, or groups for a group field), across chunks. */
  readRange(field: string, start: number, length: number): Work<FieldArray>;
  /** `data` into a field from `start` (elements, or groups for a group field), across chunks. */
  writeRange(field: string, start: number, data: FieldArray): Work<void>;
}
